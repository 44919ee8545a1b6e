"""Alpaca's account and order book on top of the shared matching core.

Threading rule: not thread-safe; created and used on the simulated Alpaca's loop only.

:class:`AlpacaVenue` owns a :class:`~ml4t_live.sim.matching.SimExchange` (ml4t.backtest's Broker,
so fills match the backtest) and adds what is Alpaca's: UUID order ids, ``client_order_id``
uniqueness over the account's whole history, order classes (bracket / oco / oto legs), replace as
"new order that ``replaces`` the old one", and the ``trade_updates`` messages each change causes.
Every mutating method returns the trade-update messages (already encoded) to publish.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ml4t.backtest import BacktestConfig, OrderSide, OrderType
from ml4t.backtest.config import ShareType

from ..bars import SimBar
from ..matching import (
    OrderNotCancelable,
    OrderNotReplaceable,
    OrderRejected,
    SimExchange,
    SimOrderSpec,
    UnknownOrder,
)
from . import payloads
from .order_forms import (
    AlpacaError,
    OrderForm,
    ReplaceForm,
    forbidden,
    not_found,
    unprocessable,
)
from .records import AlpacaOrder, FillRecord, new_order_id
from .trade_updates import Messages, TradeUpdates

_TYPES = {
    "market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT, "trailing_stop": OrderType.TRAILING_STOP,
}


class AlpacaVenue:
    """One simulated Alpaca paper account (see the module docstring)."""

    def __init__(self, config: BacktestConfig | None, symbols: set[str], now: Callable[[], datetime],
                 execution_limits: Any = None) -> None:  # fmt: skip
        # An Alpaca account trades fractional shares unless the caller's backtest config says not.
        config = config if config is not None else BacktestConfig(calendar=None, share_type=ShareType.FRACTIONAL)
        self.fractional = config.share_type is ShareType.FRACTIONAL
        self.exchange = SimExchange(config, known_assets=set(symbols), execution_limits=execution_limits)
        self.symbols = frozenset(symbols)
        self._now = now
        self.orders: dict[str, AlpacaOrder] = {}
        self._by_client: dict[str, str] = {}
        self._by_exchange: dict[int, str] = {}
        #: the matching core's events as trade updates (it also keeps the fills)
        self.updates = TradeUpdates(self.orders, self._by_exchange, now)
        self.fills: list[FillRecord] = self.updates.fills
        self.activity_errors: list[int] = []  # statuses the next activity listings answer (tests)
        self.replaces_received: list[tuple[str, Any]] = []  # (order id, ReplaceForm) per PATCH (tests)
        self.last_close: dict[str, float] = {}
        self.prev_session_close: dict[str, float] = {}
        self.first_price: dict[str, float] = {}
        self.initial_equity = self.exchange.equity
        # account-standing fields GET /v2/account reports (payloads.ACCOUNT_STATE_FIELDS); reported
        # only, never enforced, so a test sees whether the client refuses to trade on its own
        self.standing: dict[str, Any] = {}
        self.last_equity = self.initial_equity
        self.created_at = now()
        self.wash_trade_check = False  # faults.py ``wash_trade_check``: refuse AL-10 wash trades
        self.refusals: list[str] = []  # faults.py ``refuse_next``: 403 messages for the next submits
        self._late_cancels: dict[str, int] = {}  # faults.py ``lose_cancel`` with ``bars``: bars left
        #: faults.py ``slow_replace``: replacement id -> (the order it replaces, the PATCH, bars left)
        self._late_replaces: dict[str, tuple[str, ReplaceForm, int, bool]] = {}
        self.stale_old: set[str] = set()  # ``slow_replace`` ``stale_old``: old orders a GET shows as before the PATCH

    # ------------------------------------------------------------------ lookups
    def get(self, order_id: str) -> AlpacaOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found()
        return order

    def by_client_id(self, client_order_id: str) -> AlpacaOrder:
        order_id = self._by_client.get(client_order_id)
        if order_id is None:
            raise not_found()
        return self.orders[order_id]

    def legs_of(self, order: AlpacaOrder) -> list[AlpacaOrder]:
        return self.updates.legs_of(order)

    def price(self, symbol: str) -> float | None:
        return self.last_close.get(symbol) or self.first_price.get(symbol)

    def positions(self) -> dict[str, tuple[float, float]]:
        return self.exchange.positions

    # ------------------------------------------------------------------ submit
    def submit(self, form: OrderForm, received_ns: int | None = None) -> tuple[AlpacaOrder, Messages]:
        """Accept an order (and its legs); business rejections come back as a ``rejected`` update."""
        if form.symbol not in self.symbols:
            raise unprocessable(f"asset {form.symbol} not found", symbol=form.symbol)
        client_id = form.client_order_id or str(uuid.uuid4())
        if client_id in self._by_client:
            raise AlpacaError(422, 40010001, "client_order_id must be unique")
        if self.refusals:
            raise forbidden(self.refusals.pop(0))
        if self.wash_trade_check and form.order_class in ("", "simple") and any(
            o.is_open and o.symbol == form.symbol and o.side != form.side for o in self.orders.values()
        ):
            raise forbidden("potential wash trade detected. use complex orders", reject_reason="wash_trade")
        if form.fractional and not self.fractional:
            raise forbidden("fractional trading is not enabled for this account (the venue's BacktestConfig "
                            "uses whole shares)")
        received = received_ns if received_ns is not None else time.perf_counter_ns()
        now = self._now()
        qty = form.qty if form.qty is not None else self._notional_qty(form)
        trail = self._trail_amount(form)  # may refuse (422): before anything is registered
        parent_type, parent_limit = form.type, form.limit_price
        if form.order_class == "oco":  # the top-level order of an OCO is its take-profit limit
            parent_type, parent_limit = "limit", form.take_profit.limit_price  # type: ignore[union-attr]
        parent = AlpacaOrder(
            id=new_order_id(), client_order_id=client_id, symbol=form.symbol, side=form.side,
            type=parent_type, time_in_force=form.time_in_force, created_at=now, updated_at=now,
            qty=None if form.notional is not None else qty, notional=form.notional,
            limit_price=parent_limit, stop_price=form.stop_price, trail_price=form.trail_price,
            trail_percent=form.trail_percent, order_class=form.order_class,
            extended_hours=form.extended_hours, position_intent=form.position_intent,
            received_ns=received,
        )
        legs = self._legs(form, parent, qty, now)
        self._register(parent)
        for leg in legs:
            self._register(leg)
        oca = parent.id if form.order_class in ("bracket", "oco") else None
        messages: Messages = []
        parent_oca = oca if form.order_class == "oco" else None
        messages += self._submit_one(parent, qty, trail, parent_oca, None, announce=True)
        for leg in legs:
            leg_oca = oca if form.order_class in ("bracket", "oco") else None
            parent_xid = parent.exchange_id if form.order_class in ("bracket", "oto") else None
            messages += self._submit_one(leg, qty, None, leg_oca, parent_xid,
                                         announce=form.order_class == "oco")
        self._mark_trailing(parent, self.price(parent.symbol))
        return parent, messages

    def _mark_trailing(self, order: AlpacaOrder, price: float | None) -> None:
        """A working trailing stop's ``hwm`` (highest price seen for a sell, lowest for a buy) and
        ``stop_price``. At submission both come from the last price; once the matching core has
        evaluated the order on a bar, ``stop_price`` is the core's level (ml4t.backtest ratchets it
        from each bar's high / low) and ``hwm`` is that level plus / minus the trail."""
        if order.type != "trailing_stop" or order.exchange_id is None or not order.is_open:
            return
        trail = self.exchange.orders[order.exchange_id].spec.trail_amount or 0.0
        sign = 1.0 if order.side == "sell" else -1.0
        stop = self.exchange.trailing_stop_price(order.exchange_id)
        if stop is None and price:
            stop = price - sign * trail
        if stop is not None:
            order.stop_price, order.hwm = stop, stop + sign * trail

    def _mark_all_trailing(self) -> None:
        for order in self.orders.values():
            if order.type == "trailing_stop" and order.is_open:
                self._mark_trailing(order, self.price(order.symbol))

    def _legs(self, form: OrderForm, parent: AlpacaOrder, qty: float, now: datetime) -> list[AlpacaOrder]:
        exit_side = "sell" if form.side == "buy" else "buy"
        legs: list[AlpacaOrder] = []
        if form.take_profit is not None and form.order_class in ("bracket", "oto"):
            legs.append(self._leg(parent, exit_side, "limit", qty, now, limit=form.take_profit.limit_price))
        if form.stop_loss is not None:
            stop_type = "stop_limit" if form.stop_loss.limit_price is not None else "stop"
            legs.append(self._leg(parent, exit_side if form.order_class != "oco" else form.side, stop_type,
                                  qty, now, limit=form.stop_loss.limit_price, stop=form.stop_loss.stop_price))
        parent.leg_ids = [leg.id for leg in legs]
        return legs

    @staticmethod
    def _leg(parent: AlpacaOrder, side: str, kind: str, qty: float, now: datetime, *,
             limit: float | None = None, stop: float | None = None) -> AlpacaOrder:
        held = parent.order_class in ("bracket", "oto")
        return AlpacaOrder(
            id=new_order_id(), client_order_id=str(uuid.uuid4()), symbol=parent.symbol, side=side,
            type=kind, time_in_force=parent.time_in_force, created_at=now, updated_at=now, qty=qty,
            limit_price=limit, stop_price=stop, order_class=parent.order_class,
            status="held" if held else "new", parent_id=parent.id,
        )

    def _register(self, order: AlpacaOrder) -> None:
        order.seq = len(self.orders)
        self.orders[order.id] = order
        self._by_client[order.client_order_id] = order.id

    def _submit_one(self, order: AlpacaOrder, qty: float, trail: float | None, oca: str | None,
                    parent_xid: int | None, *, announce: bool) -> Messages:
        spec = SimOrderSpec(
            asset=order.symbol, side=OrderSide.BUY if order.side == "buy" else OrderSide.SELL,
            quantity=qty, order_type=_TYPES[order.type], limit_price=order.limit_price,
            stop_price=order.stop_price, trail_amount=trail, time_in_force=order.time_in_force,
            client_order_id=order.client_order_id, oca_group=oca, parent_id=parent_xid,
        )
        sim_order, events = self.exchange.submit(spec)
        order.exchange_id = sim_order.order_id
        self._by_exchange[sim_order.order_id] = order.id
        rejected = any(isinstance(e, OrderRejected) for e in events)
        messages: Messages = []
        if announce and not rejected and sim_order.status != "held":
            messages.append(self.updates.update("new", order))
        return messages + self.updates.translate(events)

    def _notional_qty(self, form: OrderForm) -> float:
        price = self.price(form.symbol)
        if not price:
            raise unprocessable(f"no price yet for {form.symbol}; notional orders need a last trade")
        return round(float(form.notional) / price, 9)  # type: ignore[arg-type]

    def _trail_amount(self, form: OrderForm) -> float | None:
        if form.trail_price is not None:
            return form.trail_price
        if form.trail_percent is not None:
            price = self.price(form.symbol)
            if not price:
                raise unprocessable(f"no price yet for {form.symbol}; trail_percent needs a last trade")
            return price * form.trail_percent / 100.0
        return None

    # ------------------------------------------------------------------ replace / cancel
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
                                    "cancel it and submit a new one") from None
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
        for leg in self.legs_of(old):
            leg.parent_id = new.id
        if old.parent_id is not None:  # a leg: its parent now lists the replacement
            parent = self.orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
        messages = [self.updates.update("replaced", old)]
        if new.status != "held":
            messages.append(self.updates.update("new", new))
        return new, messages + self.updates.translate([e for e in events if not _is_replaced(e)])

    def _carry_out_late_replaces(self) -> Messages:
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
        reference is silent on it; a refusal is the conservative answer: nothing carried out)."""
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
        except OrderNotCancelable as exc:
            order.status = prior
            raise unprocessable(str(exc)) from None
        except UnknownOrder:
            order.status = prior
            raise not_found() from None
        messages = [pending, *self.updates.translate(events)]
        for leg in self.legs_of(order):  # legs of an OCO / live bracket legs are canceled with it
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

    def _carry_out_late_cancels(self) -> Messages:
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

    def cancel_all(self) -> tuple[list[dict[str, Any]], Messages]:
        """DELETE /v2/orders: every open order (legs of a live bracket too); 207 ``{id, status, body}``."""
        results: list[dict[str, Any]] = []
        messages: Messages = []
        def parent_open(order: AlpacaOrder) -> bool:  # its parent's cancel takes it along
            return order.parent_id is not None and self.orders[order.parent_id].is_open

        for order in [o for o in self.orders.values() if o.is_open and not parent_open(o)]:
            if not order.is_open:  # canceled meanwhile as an OCO sibling
                continue
            try:
                messages += self.cancel(order.id)
                results.append({"id": order.id, "status": 200, "body": payloads.order_json(order)})
            except AlpacaError as exc:
                results.append({"id": order.id, "status": exc.status, "body": exc.body()})
        return results, messages

    # ------------------------------------------------------------------ bars
    def open_bar(self, timestamp: datetime, bars: dict[str, SimBar]) -> Messages:
        for symbol, bar in bars.items():
            self.first_price.setdefault(symbol, bar.open)
        messages = self._carry_out_late_cancels() + self._carry_out_late_replaces()
        messages += self.updates.translate(self.exchange.open_bar(timestamp, bars))
        self._mark_all_trailing()
        return messages

    def bar_closed(self, bars: dict[str, SimBar]) -> None:
        for symbol, bar in bars.items():
            self.last_close[symbol] = bar.close

    def close_bar(self) -> Messages:
        messages = self.updates.translate(self.exchange.close_bar())
        self._mark_all_trailing()
        return messages

    def end_session(self) -> Messages:
        messages = self.updates.translate(self.exchange.end_session())
        self.prev_session_close = dict(self.last_close)
        self.last_equity = self.exchange.equity
        return messages


def _is_replaced(event: Any) -> bool:
    return type(event).__name__ == "OrderReplaced"
