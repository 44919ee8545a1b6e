"""Alpaca's account and order book on top of the shared matching core.

Threading rule: not thread-safe; created and used on the simulated Alpaca's loop only.

:class:`AlpacaVenue` owns a :class:`~ml4t_live.sim.matching.SimExchange` (ml4t.backtest's Broker,
so fills match the backtest) and adds what is Alpaca's: UUID order ids, ``client_order_id``
uniqueness over the account's whole history, order classes (bracket / oco / oto legs) and the
``trade_updates`` messages each change causes. Replace ("new order that ``replaces`` the old one")
and cancel, now or late (faults), are :class:`~.order_changes.OrderChanges`, which the venue holds
(``changes``). Every mutating method returns the trade-update messages (already encoded) to publish.
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
from ..matching import OrderRejected, SimExchange, SimOrderSpec
from . import payloads
from .order_changes import OrderChanges
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
        #: replace and cancel of working orders, now or late (the ``slow_replace`` / ``lose_cancel`` faults)
        self.changes = OrderChanges(exchange=self.exchange, updates=self.updates, orders=self.orders,
                                    by_client=self._by_client, by_exchange=self._by_exchange, now=now,
                                    get=self.get, register=self._register, price=self.price,
                                    mark_trailing=self._mark_trailing)  # fmt: skip

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

    # ------------------------------------------------------------------ replace / cancel (OrderChanges)
    @property
    def replaces_received(self) -> list[tuple[str, Any]]:
        """(order id, ReplaceForm) per PATCH that reached the order's checks (tests)."""
        return self.changes.replaces_received

    @property
    def stale_old(self) -> set[str]:
        """``slow_replace`` ``stale_old``: old orders a GET shows as before the PATCH."""
        return self.changes.stale_old

    def replace(self, order_id: str, form: ReplaceForm, *, after_bars: int | None = None,
                fail: bool = False, stale_old: bool = False) -> tuple[AlpacaOrder, Messages]:  # fmt: skip
        return self.changes.replace(order_id, form, after_bars=after_bars, fail=fail, stale_old=stale_old)

    def replaceable(self, order_id: str) -> bool:
        return self.changes.replaceable(order_id)

    def cancelable(self, order_id: str) -> bool:
        return self.changes.cancelable(order_id)

    def cancel(self, order_id: str, *, lose: bool = False, carry_out_after: int | None = None) -> Messages:
        return self.changes.cancel(order_id, lose=lose, carry_out_after=carry_out_after)


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
        messages = self.changes.carry_out_late_cancels() + self.changes.carry_out_late_replaces()
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
