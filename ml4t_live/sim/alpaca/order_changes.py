"""Replace and cancel of a working order on the simulated Alpaca: carried out now, or late.

Threading rule: as :class:`~ml4t_live.sim.alpaca.venue.AlpacaVenue` (the simulated Alpaca's loop
only), which holds one :class:`OrderChanges` and hands it its order book. A replace is Alpaca's
"new order that ``replaces`` the old one"; a cancel shows ``pending_cancel``, then ``canceled``.
The ``slow_replace`` and ``lose_cancel`` faults (faults.py) leave a replace or cancel pending for
a number of bars: :meth:`OrderChanges.carry_out_late_cancels` and
:meth:`OrderChanges.carry_out_late_replaces` carry them out as each bar opens. Every mutating
method returns the trade-update messages (already encoded) to publish.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..matching import (
    OrderNotCancelable,
    OrderNotReplaceable,
    RemainderExecuting,
    SimExchange,
    UnknownOrder,
)
from .order_forms import AlpacaError, ReplaceForm, not_found, unprocessable
from .records import AlpacaOrder, new_order_id
from .trade_updates import Messages, TradeUpdates


class OrderChanges:
    """Replaces and cancels of the venue's orders (see the module docstring). ``orders``,
    ``by_client`` (client order id -> id) and ``by_exchange`` (the core's order id -> id) are the
    venue's own dicts; ``get`` (the order, or 404), ``register`` (a new order into the book),
    ``price`` (a symbol's last price) and ``mark_trailing`` (a trailing stop's ``hwm`` and
    ``stop_price``) are the venue's."""

    def __init__(self, *, exchange: SimExchange, updates: TradeUpdates, orders: dict[str, AlpacaOrder],
                 by_client: dict[str, str], by_exchange: dict[int, str], now: Callable[[], datetime],
                 get: Callable[[str], AlpacaOrder], register: Callable[[AlpacaOrder], None],
                 price: Callable[[str], float | None],
                 mark_trailing: Callable[[AlpacaOrder, float | None], None]) -> None:  # fmt: skip
        self.exchange, self.updates, self.orders = exchange, updates, orders
        self._by_client, self._by_exchange, self._now = by_client, by_exchange, now
        self.get, self._register, self.price, self._mark_trailing = get, register, price, mark_trailing
        self.replaces_received: list[tuple[str, Any]] = []  # (order id, ReplaceForm) per PATCH (tests)
        self._late_cancels: dict[str, int] = {}  # faults.py ``lose_cancel`` with ``bars``: bars left
        #: faults.py ``slow_replace``: replacement id -> (the order it replaces, the PATCH, bars left)
        self._late_replaces: dict[str, tuple[str, ReplaceForm, int, bool]] = {}
        self.stale_old: set[str] = set()  # ``slow_replace`` ``stale_old``: old orders a GET shows as before the PATCH

    def replace(self, order_id: str, form: ReplaceForm, *, after_bars: int | None = None,
                fail: bool = False, stale_old: bool = False) -> tuple[AlpacaOrder, Messages]:  # fmt: skip
        """Alpaca's replace: a NEW order (new id) that ``replaces`` the old one. ``after_bars``
        (the ``slow_replace`` fault): the new order is answered ``pending_new`` and the old one
        stays ``pending_replace`` (working: it can fill) until that many more bars have opened;
        ``fail``: the replace is then not carried out (the old order works on unchanged);
        ``stale_old``: meanwhile a GET of the old order shows its status as before the PATCH."""
        self.replaces_received.append((order_id, form))  # refused below too (not parse_replace's)
        old = self.get(order_id)
        if not self.replaceable(order_id):  # (a replace during pending_cancel fails: AL-14)
            raise unprocessable(f'order is already in "{old.status}" state; it cannot be replaced')
        client_id = form.client_order_id or str(uuid.uuid4())
        if client_id in self._by_client:
            raise AlpacaError(422, 40010001, "client_order_id must be unique")
        if form.time_in_force is not None and form.time_in_force != old.time_in_force:
            raise unprocessable("time_in_force cannot be changed by the simulated venue; cancel and resubmit")
        if after_bars is None:
            return self._carry_out_replace(old, form, client_id)
        now = self._now()
        new = AlpacaOrder(**{**old.__dict__, "id": new_order_id(), "client_order_id": client_id,
                             "created_at": now, "updated_at": now, "replaces": old.id, "leg_ids": [],
                             "filled_qty": 0.0, "filled_avg_price": None, "exchange_id": None,
                             "status": "pending_new"})  # fmt: skip
        new.qty = form.qty if form.qty is not None else old.qty
        new.limit_price = form.limit_price if form.limit_price is not None else old.limit_price
        new.stop_price = form.stop_price if form.stop_price is not None else old.stop_price
        old.status, old.updated_at = "pending_replace", now
        self._register(new)
        self._late_replaces[new.id] = (old.id, form, after_bars, fail)
        if stale_old:
            self.stale_old.add(old.id)
        return new, [self.updates.update("pending_replace", old), self.updates.update("pending_new", new)]

    def replaceable(self, order_id: str) -> bool:
        """Whether a PATCH of this order is taken (open, working, no cancel or replace pending)."""
        order = self.orders.get(order_id)
        return (order is not None and order.exchange_id is not None and order.is_open
                and order.status not in ("pending_cancel", "pending_replace"))  # fmt: skip

    def _carry_out_replace(self, old: AlpacaOrder, form: ReplaceForm, client_id: str,
                           pending: AlpacaOrder | None = None) -> tuple[AlpacaOrder, Messages]:  # fmt: skip
        """The replace of ``old`` carried out now (``pending``: the replacement a slow replace answered)."""
        trail = form.trail if old.type == "trailing_stop" else None
        if old.type == "trailing_stop" and form.trail is not None and old.trail_percent is not None:
            price = self.price(old.symbol) or 0.0
            trail = price * form.trail / 100.0
        assert old.exchange_id is not None
        # the core's order carries on: its quantity is what the chain filled plus the new order's
        core_filled = self.exchange.orders[old.exchange_id].filled_quantity
        qty = form.qty if form.qty is not None else old.qty
        total = core_filled + qty if qty is not None and (form.qty is not None or core_filled > 0) else None
        try:
            _, events = self.exchange.replace(old.exchange_id, quantity=total, limit_price=form.limit_price,
                                              stop_price=form.stop_price, trail_amount=trail)
        except OrderNotReplaceable as exc:
            if old.filled_qty > 0:  # a split fill's remainder (the partial_fill fault) is executing
                raise unprocessable("order is partially filled and its remainder is already executing; "
                                    "it fills at the next bar") from None
            raise unprocessable(str(exc)) from None
        now = self._now()
        fields = {**old.__dict__, "id": new_order_id(), "client_order_id": client_id, "created_at": now}
        if pending is not None:
            fields.update(id=pending.id, created_at=pending.created_at)
        new = AlpacaOrder(**{**fields, "updated_at": now, "replaces": old.id, "leg_ids": list(old.leg_ids),
                             "filled_qty": 0.0, "filled_avg_price": None, "core_filled": core_filled})
        new.status = "held" if old.status == "held" else "new"  # a held bracket leg stays held
        new.qty = qty
        new.limit_price = form.limit_price if form.limit_price is not None else old.limit_price
        new.stop_price = form.stop_price if form.stop_price is not None else old.stop_price
        if form.trail is not None:
            if old.trail_percent is not None:
                new.trail_percent = form.trail
            else:
                new.trail_price = form.trail
        old.status, old.replaced_by, old.replaced_at, old.updated_at = "replaced", new.id, now, now
        if pending is None:
            self._register(new)
        else:
            new.seq, self.orders[new.id] = pending.seq, new
        self._by_exchange[old.exchange_id] = new.id
        self._mark_trailing(new, self.price(new.symbol))
        for leg in self.updates.legs_of(old):
            leg.parent_id = new.id
        if old.parent_id is not None:  # a leg: its parent now lists the replacement
            parent = self.orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
        messages = [self.updates.update("replaced", old)]
        if new.status != "held":
            messages.append(self.updates.update("new", new))
        return new, messages + self.updates.translate([e for e in events if not _is_replaced(e)])

    def carry_out_late_replaces(self) -> Messages:
        """``slow_replace``: a pending replace whose bars are up is carried out now; one whose old
        order ended meanwhile (filled), or that fails (``fail``, or the core cannot take it), leaves
        its replacement ``canceled``."""
        messages: Messages = []
        for new_id, (old_id, form, left, fail) in list(self._late_replaces.items()):
            old, new = self.orders[old_id], self.orders[new_id]
            if left > 1 and old.status == "pending_replace":
                self._late_replaces[new_id] = (old_id, form, left - 1, fail)
                continue
            del self._late_replaces[new_id]
            self.stale_old.discard(old_id)
            if old.status == "pending_replace":
                old.status = "partially_filled" if old.filled_qty > 0 else "new"
                try:
                    if fail:
                        raise unprocessable("the replace failed (slow_replace fail)")
                    messages += self._carry_out_replace(old, form, new.client_order_id, new)[1]
                    continue
                except AlpacaError:
                    pass  # (the core cannot take it: the old order works on unchanged)
            self.updates.close(new, "canceled")
            messages.append(self.updates.update("canceled", new))
        return messages

    def cancelable(self, order_id: str) -> bool:
        """Whether a DELETE of this order is taken (open, working, no cancel pending already)."""
        order = self.get(order_id)
        return (order.exchange_id is not None and order.is_open
                and order.status not in ("pending_cancel", "pending_replace"))  # fmt: skip

    def cancel(self, order_id: str, *, lose: bool = False, carry_out_after: int | None = None) -> Messages:
        """Alpaca's cancel: the order shows ``pending_cancel`` (status and trade update), then
        ``canceled``. ``lose`` (the ``lose_cancel`` fault): it stays ``pending_cancel``, working (it
        can still fill), for good or until ``carry_out_after`` more bars have opened. A DELETE of an order already ``pending_cancel`` is refused 422 (the
        reference is silent on it; a refusal is the conservative answer: nothing carried out). An
        order whose split fill's remainder is already executing (the ``partial_fill`` fault) is
        left ``pending_cancel``: the remainder fills when its bar opens and the order ends
        ``filled`` (the fill wins the race with the cancel, as on Alpaca)."""
        order = self.get(order_id)
        if not self.cancelable(order_id):
            raise unprocessable(f'order is already in "{order.status}" state')
        prior = order.status
        order.status, order.updated_at = "pending_cancel", self._now()
        pending = self.updates.update("pending_cancel", order)
        if lose:
            if carry_out_after is not None:
                self._late_cancels[order_id] = carry_out_after
            return [pending]
        try:
            _, events = self.exchange.cancel(order.exchange_id)
        except RemainderExecuting:
            return [pending]
        except OrderNotCancelable as exc:
            order.status = prior
            raise unprocessable(str(exc)) from None
        except UnknownOrder:
            order.status = prior
            raise not_found() from None
        messages = [pending, *self.updates.translate(events)]
        for leg in self.updates.legs_of(order):  # legs of an OCO / live bracket legs are canceled with it
            if leg.is_open:
                messages += self._cancel_in_core(leg)
        return messages

    def _cancel_in_core(self, order: AlpacaOrder) -> Messages:
        """The matching core cancels ``order`` now (its messages); nothing when it cannot (done)."""
        if order.exchange_id is None:
            return []
        try:
            return self.updates.translate(self.exchange.cancel(order.exchange_id)[1])
        except (OrderNotCancelable, UnknownOrder):
            return []

    def carry_out_late_cancels(self) -> Messages:
        """``lose_cancel`` with ``bars``: a pending cancel whose bars are up is carried out now."""
        messages: Messages = []
        for order_id, left in list(self._late_cancels.items()):
            order = self.orders[order_id]
            if left > 1 and order.status == "pending_cancel":
                self._late_cancels[order_id] = left - 1
                continue
            del self._late_cancels[order_id]
            if order.status == "pending_cancel":
                messages += self._cancel_in_core(order)
        return messages


def _is_replaced(event: Any) -> bool:
    return type(event).__name__ == "OrderReplaced"
