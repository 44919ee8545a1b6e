"""How the exchange's open orders end, and the linked orders that end along with them.

An order ends filled, canceled, rejected or expired: it leaves the open orders and its OCA group,
and a live one is canceled in the backtest broker when the exchange (not the broker) ends it. The
links are kept here: OCA groups (a complete fill cancels the rest of the group) and the bracket
children held until their parent fills (canceled, with theirs, when it never will; activating them
after the fill is :class:`~.matching.SimExchange`'s, which hands them to the broker).

Internal to :mod:`.matching`. :class:`OrderEndings` shares the exchange's records of its open
orders (tracks by order id, order ids by backtest id): the exchange adds to them, this removes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ml4t.backtest import Broker

from . import backtest_steps
from .orders import OrderCanceled, OrderExpired, OrderRejected, SimEvent, SimOrder
from .tracking import Track, snapshot


class OrderEndings:
    """Ends the exchange's open orders; ``clock`` gives the current bar's timestamp."""

    def __init__(
        self,
        broker: Broker,
        open_tracks: dict[int, Track],
        by_bt_id: dict[str, int],
        clock: Callable[[], datetime | None],
    ) -> None:
        self._broker = broker
        self._open = open_tracks
        self._by_bt_id = by_bt_id
        self._clock = clock
        self._held_children: dict[int, list[int]] = {}
        self._oca: dict[str, set[int]] = {}

    # ------------------------------------------------------------------ links
    def join_oca(self, group: str, order_id: int) -> None:
        self._oca.setdefault(group, set()).add(order_id)

    def hold(self, child_id: int, parent_id: int) -> None:
        """Hold a bracket child until its parent fills."""
        self._held_children.setdefault(parent_id, []).append(child_id)

    def release_children(self, parent_id: int) -> list[int]:
        """The children held for a parent that filled, no longer held (the exchange activates them)."""
        return self._held_children.pop(parent_id, [])

    # ------------------------------------------------------------------ endings
    def cancel(self, track: Track, reason: str) -> list[SimEvent]:
        """Cancel an open order (in the broker too, when live) and the children held for it."""
        if track.bt is not None:
            backtest_steps.cancel(self._broker, track.bt.order_id, self._clock(), reason)
        events: list[SimEvent] = [self.finish(track.order, "canceled", reason)]
        events.extend(self.cancel_held_children(track.order.order_id))
        return events

    def expire(self, track: Track) -> list[SimEvent]:
        """Expire an open order (in the broker too, when live) and cancel the children held for it."""
        if track.bt is not None:
            backtest_steps.cancel(self._broker, track.bt.order_id, self._clock(), "expired")
        events = [self.finish(track.order, "expired", None)]
        events.extend(self.cancel_held_children(track.order.order_id))
        return events

    def cancel_oca_siblings(self, order: SimOrder) -> list[SimEvent]:
        """A complete fill: cancel the rest of its OCA group still open (in the broker too, when
        live)."""
        events: list[SimEvent] = []
        group = order.spec.oca_group
        for sibling in sorted(self._oca.get(group, ())) if group else ():
            other = self._open.get(sibling)
            if other is not None:
                if other.bt is not None:
                    backtest_steps.cancel(self._broker, other.bt.order_id, self._clock(), "oca")
                events.append(self.finish(other.order, "canceled", "oca"))
        return events

    def cancel_held_children(self, order_id: int) -> list[SimEvent]:
        """The parent will never fill: cancel its held children."""
        events: list[SimEvent] = []
        for child_id in self._held_children.pop(order_id, []):
            if child_id in self._open:
                events.append(self.finish(self._open[child_id].order, "canceled", "parent canceled"))
                events.extend(self.cancel_held_children(child_id))
        return events

    def finish(self, order: SimOrder, status: str, reason: str | None) -> SimEvent:
        """Close an order as rejected / canceled / expired and return its event."""
        self.close(order, status)
        if status == "rejected":
            order.reject_reason = reason
            return OrderRejected(snapshot(order), reason or "")
        if status == "canceled":
            return OrderCanceled(snapshot(order), reason or "")
        return OrderExpired(snapshot(order))

    def close(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.updated_at = self._clock()
        track = self._open.pop(order.order_id, None)
        if track is not None and track.bt is not None:
            self._by_bt_id.pop(track.bt.order_id, None)
        if order.spec.oca_group:
            group = self._oca.get(order.spec.oca_group)
            if group is not None:
                group.discard(order.order_id)
                if not group:
                    del self._oca[order.spec.oca_group]
