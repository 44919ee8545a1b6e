"""The local book of a venue broker: orders, fills, positions and cash as the strategy sees them.

Pure bookkeeping on the engine thread: it applies venue events (already translated into
:mod:`ml4t_live.events`) to ml4t.backtest ``Order`` / ``Position`` / ``Fill`` objects. It never
talks to a venue. Duplicate executions (same ``exec_id``) are applied once; a reconstructed
execution (a REST view of the order) counts only what goes beyond the order's applied fills; an
order the runtime's own made-up fill ended (:func:`made_up_fill_id`: the venue said it filled N,
its executions out of reach) ignores every real execution that comes after it, with a WARNING.
Finished orders are packed once taken for the session files (:mod:`ml4t_live.order_history`):
every order stays answerable, in less memory.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loguru import logger
from ml4t.backtest import ExitReason, Fill, Order, OrderSide, OrderStatus, Position

from .events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderLost,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
)
from .order_history import OrderHistory
from .quantities import EPS as _EPS

_log = logger.bind(component="book")
_MADE_UP = ":filled-while-away"


def made_up_fill_id(cid: str) -> str:
    """The execution id of the runtime's own made-up fill of order ``cid``: the venue said the
    order filled N, its executions out of reach (a warm restart's look-up, owed executions that
    never came). The book knows such a fill by this id, and ignores real executions after it."""
    return f"{cid}{_MADE_UP}"


class Book:
    """Orders by client order id, positions by asset, cash; the strategy's view of the account."""

    def __init__(self) -> None:
        self.cash = 0.0
        self.orders = OrderHistory()  # every order, by submission; get(order_id)
        self.fills: list[Fill] = []
        self.positions: dict[str, Position] = {}
        self.last_prices: dict[str, float] = {}
        self.open: dict[str, Order] = {}  # pending orders, by client order id
        self.acknowledged: set[str] = set()  # working orders the venue has taken
        self._exec_ids: set[str] = set()
        self._made_up: set[str] = set()  # orders the runtime's made-up OrderFilled ended (made_up_fill_id)
        # cancelled here, the venue has not confirmed: a fill that races the cancel must find them
        self.cancelling: dict[str, Order] = {}
        self._finished: list[Order] = []
        self._new_fills: list[Fill] = []

    # ------------------------------------------------------------------ seeding
    def seed(self, cash: float) -> None:
        """Start from the strategy's starting cash (its positions come from its own fills)."""
        self.cash = cash

    def adopt(self, asset: str, quantity: float, price: float) -> None:
        """A position the strategy took over from the account (explicit opt-in), bought at
        ``price``: it is the strategy's own from now on."""
        self.positions[asset] = Position(asset, quantity, price, None, current_price=price)
        self.last_prices.setdefault(asset, price)
        self.cash -= quantity * price

    def seen(self, exec_id: str) -> bool:
        return exec_id in self._exec_ids

    def add(self, order: Order) -> None:
        self.orders.append(order)
        self.open[order.order_id] = order

    def get(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def knows(self, order_id: str) -> bool:
        return self.orders.has(order_id)

    # ------------------------------------------------------------------ events
    def apply(self, event: Any) -> Order | None:
        """Apply one order event; returns the order it touched (None for unknown ids)."""
        order = self.orders.get(getattr(event, "client_order_id", ""))
        match event:
            case OrderAccepted(client_order_id=cid):  # its venue id: in the journal
                if cid in self.open or cid in self.cancelling:
                    self.acknowledged.add(cid)
            case OrderPartiallyFilled() | OrderFilled():
                if event.exec_id in self._exec_ids:
                    _log.debug("duplicate execution {} ignored", event.exec_id)
                    return order
                if order is None:
                    _log.warning("execution {} of order {} is not this strategy's: left to its "
                                 "owner (external)", event.exec_id, event.client_order_id)  # fmt: skip
                    return None
                self._exec_ids.add(event.exec_id)
                event = self._new_part(event, order) if event.reconstructed else self._new_real_part(event, order)
                if event is not None:
                    order = self.orders.live(order.order_id)  # a finished one changes again
                    self._execute(event, order)
            case OrderCancelled(reason=reason) if order is not None:
                if order.status is OrderStatus.PENDING:
                    order.status = OrderStatus.CANCELLED
                    order.cancellation_reason = reason
                self.close(order)
            case OrderRejected(reason=reason, code=code) if order is not None:
                if order.status is OrderStatus.PENDING or (
                    order.order_id in self.cancelling and order.status is OrderStatus.CANCELLED
                ):  # (a lost order being cancelled stays lost)
                    order.reject(reason, code or "venue_rejected")
                self.close(order)
            case OrderLost(reason=reason) if order is not None:
                if order.status is OrderStatus.PENDING:
                    order.reject(f"lost: {reason}", "lost")
                self.close(order)
            case OrderReplaced() if order is not None:
                order = self.orders.live(order.order_id)
                for name in ("quantity", "limit_price", "stop_price"):
                    value = getattr(event, name)
                    if value is not None:
                        setattr(order, name, value)
        if order is None and hasattr(event, "client_order_id"):
            _log.info("event for an order that is not ours ({}): {!r}", event.client_order_id, event)
        return order

    def _new_part(self, ex: Any, order: Order) -> Any:
        """What of a *reconstructed* execution is new (a REST view of the order, named by its
        cumulative quantity, or a fill made up at the order's price, when the venue's execution
        ids were out of reach). It may re-report fills the stream reported under their real ids:
        only what goes beyond the order's applied fills counts. The runtime's own made-up
        ``OrderFilled`` (:func:`made_up_fill_id`) that counts ends the order at what the venue said
        it filled (:meth:`_new_real_part`); a venue's REST view does not (a replaced order's late
        real execution still counts)."""
        cumulative = ex.cumulative_quantity
        new = cumulative - order.filled_quantity if cumulative > _EPS else ex.quantity
        if new <= _EPS:
            _log.info("execution {} of {} re-reports {:g} already applied: ignored", ex.exec_id,
                      order.order_id, ex.quantity)  # fmt: skip
            return None
        if isinstance(ex, OrderFilled) and ex.exec_id == made_up_fill_id(order.order_id):
            self._made_up.add(order.order_id)
        if new < ex.quantity - _EPS:
            _log.info("execution {} of {}: {:g} of its {:g} are new", ex.exec_id, order.order_id,
                      new, ex.quantity)  # fmt: skip
            return replace(ex, quantity=new)
        return ex

    def _new_real_part(self, ex: Any, order: Order) -> Any:
        """What of a real execution is new. Kept as it is (its cumulative quantity may arrive out
        of order, e.g. IB's late commission reports), unless the runtime's made-up ``OrderFilled``
        (:func:`made_up_fill_id`) ended its order: the venue said the order filled N, its executions out of reach, and the order's
        fills were brought to N. Real executions that come after it (IB's after a reconnect, a
        slow stream) bring again what that fill made up: none can take the order beyond N (the
        venue's cumulative quantity never exceeds what it said the order filled), so they are
        ignored, with a WARNING. O(1): one look-up in the set of orders with a made-up end."""
        if order.order_id not in self._made_up:
            return ex
        _log.warning("execution {} of {} ({:g} at {}) comes after a made-up fill ended the order at the {:g} "
                     "the venue said it filled: ignored (the made-up fill's price stands)", ex.exec_id,
                     order.order_id, ex.quantity, ex.price, order.filled_quantity)  # fmt: skip
        return None

    def _execute(self, ex: OrderFilled | OrderPartiallyFilled, order: Order) -> None:
        fill = Fill(
            order_id=order.order_id,  # == ex.client_order_id: one string for both
            asset=ex.asset,
            side=ex.side,
            quantity=ex.quantity,
            price=ex.price,
            timestamp=ex.timestamp,
            rebalance_id=order.rebalance_id,
            commission=ex.commission,
            order_type=order.order_type.value,
            price_source="venue",
            exit_reason=self._exit_reason(ex, order),
            exit_reason_detail=order._risk_exit_reason,
        )
        self.fills.append(fill)
        self._new_fills.append(fill)
        self._move_position(fill)
        done = order.filled_quantity + ex.quantity
        order.filled_price = (
            ex.price
            if not order.filled_quantity
            else ((order.filled_price or 0.0) * order.filled_quantity + ex.price * ex.quantity) / done
        )
        order.filled_quantity = done
        order.commission_paid += ex.commission
        # already recorded as finished (cancel confirmed, declared lost): recorded again on a fill,
        # the final state last
        recorded = order.order_id not in self.open and order.order_id not in self.cancelling
        if isinstance(ex, OrderFilled) or done >= order.quantity - _EPS:
            if order.status is not OrderStatus.PENDING:
                _log.warning("order {} filled after it was {} locally (the fill wins)",
                             order.order_id, order.status.value)  # fmt: skip
            order.status = OrderStatus.FILLED
            order.filled_at = ex.timestamp
            order.cancellation_reason = None
            order.rejection_reason = None
            if not recorded:
                self.close(order)
                return
        if recorded:
            self._finished.append(order)

    def _exit_reason(self, ex: OrderFilled | OrderPartiallyFilled, order: Order) -> str:
        """As the backtest's fills: an exit (a fill against the position) says why - the
        position rule's reason, else ``signal``; an entry says nothing."""
        held = self.positions.get(ex.asset)
        signed = ex.quantity if ex.side is OrderSide.BUY else -ex.quantity
        if held is None or held.quantity * signed >= 0:
            return ""
        return order._exit_reason.value if order._exit_reason is not None else ExitReason.SIGNAL.value

    def _move_position(self, fill: Fill) -> None:
        signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
        self.cash -= signed * fill.price + fill.commission
        self.last_prices.setdefault(fill.asset, fill.price)
        position = self.positions.get(fill.asset)
        if position is None:
            self.positions[fill.asset] = Position(
                fill.asset, signed, fill.price, fill.timestamp, current_price=fill.price,
                entry_commission=fill.commission,
            )  # fmt: skip
            return
        new_qty = position.quantity + signed
        if abs(new_qty) <= _EPS:
            del self.positions[fill.asset]
            return
        if position.quantity * signed > 0:  # adding to the position: weighted average cost
            position.entry_price = (
                position.entry_price * position.quantity + fill.price * signed
            ) / new_qty
        elif position.quantity * new_qty < 0:  # flipped through zero: a new basis
            position.entry_price = fill.price
            position.entry_time = fill.timestamp
        position.quantity = new_qty

    def close(self, order: Order) -> None:
        cid = order.order_id
        self.acknowledged.discard(cid)
        if self.open.pop(cid, None) is not None or self.cancelling.pop(cid, None) is not None:
            self._finished.append(order)

    # ------------------------------------------------------------------ views
    def mark(self, prices: dict[str, float]) -> None:
        self.last_prices.update(prices)
        for asset, position in self.positions.items():
            price = prices.get(asset)
            if price is not None:
                position.current_price = price
                position.bars_held += 1

    def equity(self) -> float:
        value = self.cash
        for asset, position in self.positions.items():
            price = self.last_prices.get(asset, position.entry_price)
            value += position.quantity * price * position.multiplier
        return value

    def take_new_records(self) -> tuple[list[Order], list[Fill]]:
        """The orders finished and the fills made since the last call (for the session files);
        the finished orders are packed in the history from now on."""
        finished, self._finished = self._finished, []
        fills, self._new_fills = self._new_fills, []
        for order in finished:
            if order.order_id not in self.open and order.order_id not in self.cancelling:
                self.orders.pack(order)
        return finished, fills

    def cancel_sent(self, order: Order) -> None:
        """The strategy cancelled ``order`` (already marked CANCELLED); until the venue confirms,
        a fill that races the cancel must still find it, and its record waits: the session files
        say what the venue decided (cancelled, or filled)."""
        if self.open.pop(order.order_id, None) is not None:
            self.cancelling[order.order_id] = order

    def cancel_unconfirmed(self, order_id: str) -> bool:
        """A warm restart: the replay closed ``order_id`` with the cancel the runtime sent (its
        own journaled ``OrderCancelled``) but the venue never confirmed it: it is cancelling
        again, as before the restart (still CANCELLED for the strategy). True when it was."""
        order = self.orders.get(order_id)
        if order is None or order.status is not OrderStatus.CANCELLED or order_id in self.open \
                or order_id in self.cancelling:  # fmt: skip
            return False
        self.cancelling[order_id] = self.orders.live(order_id)
        return True

    def follow_cancel(self, order_id: str) -> None:
        """The runtime sent a cancel for a finished order the venue still works (one declared
        lost): followed in ``cancelling`` until the venue confirms, its status unchanged."""
        if order_id not in self.open and self.orders.has(order_id):
            self.cancelling[order_id] = self.orders.live(order_id)

    def forget(self, keep_fills: int) -> None:
        """Drop finished orders and old fills (already written to the session files); orders a
        venue may still fill (pending, cancelled but not yet confirmed, declared lost) are kept."""
        self.orders.keep_only(
            lambda o: o.status is OrderStatus.PENDING or o.order_id in self.cancelling
            or o.rejection_code == "lost"
        )
        if len(self.fills) > keep_fills:
            del self.fills[: len(self.fills) - keep_fills]

    def pending(self, asset: str | None = None) -> list[Order]:
        return [o for o in self.open.values() if asset is None or o.asset == asset]

    def rejected(self) -> list[Order]:
        return self.orders.select(OrderStatus.REJECTED)
