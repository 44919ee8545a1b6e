"""HeldOrders: combined orders the gateway cannot send yet (pure bookkeeping, engine thread).

* OCA members: the first order of an ``oca_group`` waits for its pair; the two then go out as one
  Alpaca ``oco`` order. A member still alone at the end of the bar is an ordinary order.
* Bracket exits (``parent_client_order_id``): Alpaca takes bracket legs only inside the entry's
  own request, and the entry has already gone out; the exits wait until the entry has filled (as
  the backtest activates them) and then go out without the parent (as one OCO when they share a
  group). If the entry ends unfilled, its exits are cancelled without ever being sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ...protocols import OrderRequest


class HeldOrders:
    def __init__(self) -> None:
        self._oca: dict[str, OrderRequest] = {}  # group -> first member
        self._children: dict[str, list[OrderRequest]] = {}  # entry id -> its exits

    def hold_exit(self, request: OrderRequest) -> None:
        assert request.parent_client_order_id is not None
        self._children.setdefault(request.parent_client_order_id, []).append(request)

    def pair(self, request: OrderRequest) -> OrderRequest | None:
        """The OCA member waiting for ``request`` (now taken), or None (``request`` now waits)."""
        assert request.oca_group is not None
        first = self._oca.pop(request.oca_group, None)
        if first is None:
            self._oca[request.oca_group] = request
        return first

    def drop(self, client_order_id: str) -> bool:
        """Forget a held order (cancelled before it was sent); True if it was held."""
        for parent, exits in self._children.items():
            kept = [r for r in exits if r.client_order_id != client_order_id]
            if len(kept) != len(exits):
                self._children[parent] = kept
                return True
        for group, member in list(self._oca.items()):
            if member.client_order_id == client_order_id:
                del self._oca[group]
                return True
        return False

    def update(self, request: OrderRequest) -> bool:
        """Replace a held order's terms (a modify before it was sent); True if it was held."""
        cid = request.client_order_id
        for parent, exits in self._children.items():
            for i, held in enumerate(exits):
                if held.client_order_id == cid:
                    exits[i] = replace(
                        request, parent_client_order_id=parent, oca_group=held.oca_group
                    )
                    return True
        for group, member in self._oca.items():
            if member.client_order_id == cid:
                self._oca[group] = replace(request, oca_group=group)
                return True
        return False

    def lone_members(self) -> list[OrderRequest]:
        """OCA members still without a pair, as ordinary orders (taken)."""
        alone = [replace(r, oca_group=None) for r in self._oca.values()]
        self._oca.clear()
        return alone

    def release_exits(
        self, outcome: Callable[[str], str]
    ) -> tuple[list[OrderRequest], list[OrderRequest]]:
        """(exits whose entry filled, now without a parent; exits whose entry ended unfilled).

        ``outcome(entry id)`` is ``filled`` | ``closed`` | ``open`` | ``unknown``.
        """
        ready: list[OrderRequest] = []
        dead: list[OrderRequest] = []
        for parent, exits in list(self._children.items()):
            state = outcome(parent)
            if state == "filled":
                ready += [replace(r, parent_client_order_id=None) for r in exits]
            elif state == "closed":
                dead += exits
            else:
                continue
            del self._children[parent]
        return ready, dead
