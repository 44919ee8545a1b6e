"""The risk steps of a venue broker: the pre-trade check, the trading state, the operator's flatten.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker` (needs the attributes listed below).
The gate (:class:`~ml4t_live.risk.RiskGate`) is built at ``connect`` from the ``[risk]`` table,
with its state restored from the journal (:mod:`ml4t_live.rails`). Per live bar:

    begin_bar: gate.open_bar -> check_trading_state (the operator's halt / resume / flatten)
    each submit: risk_clock (journaled with the intent) -> catch-up refusal -> risk_refusal
                 (HALTED, REDUCING, every limit) -> the venue
    each fill:  risk_position(asset)
    mark:       equity -> loss limits (persisted at once) -> risk_usage for ``status``
    on_data:    strategy_outcome(ok) -> repeated errors -> HALTED
"""

from __future__ import annotations

import math
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderSide, OrderStatus, OrderType

from .book import Book
from .ownership import Ownership
from .rails import JournaledRails
from .risk import HALTED, RiskGate
from .risk.gate import unfilled_entry

_log = logger.bind(component="risk")

#: seconds the operator's flatten waits for the venue to answer its cancels
FLATTEN_WAIT = 5.0
#: the reasons HALTED's and the operator's cancel-all cancels carry (a resume withdraws their follow-up)
HALT_CANCEL, CANCEL_ALL = "trading halted", "cancel-all by the operator"
#: the reasons of the runtime's cancels that a resume withdraws (a restart while HALTED keeps following them)
HALT_REASONS = (HALT_CANCEL, CANCEL_ALL)


class RailSteps:
    book: Book
    own: Ownership
    rails: JournaledRails | None
    _runtime_exit: bool
    _bracket_entry: bool  # submit_bracket is placing its entry
    _catch_up: bool
    cancel_open_orders: Any
    _cancel_and_wait: Any  # BarSteps
    _keep_follow_up: Any  # CancelResending
    cancel_resends: Any  # CancelResends
    submit_order: Any
    link: Any

    def _working_orders(self) -> int:
        """The orders ``max_open_orders`` counts: open ones, and cancelling ones whose cancel has
        gone unanswered past its first check (:meth:`CancelResends.overdue`)."""
        return len(self.book.open) + self.cancel_resends.overdue(self.book.cancelling)

    @property
    def gate(self) -> RiskGate:
        if self.rails is None:
            raise RuntimeError("VenueBroker.connect() has not been called")
        return self.rails.gate

    # ------------------------------------------------------------------ positions
    def risk_positions(self) -> None:
        """Every position and working order of the strategy into the gate (connect, after a
        warm restart: the replay re-made them without sending anything)."""
        if self.rails is None:
            return
        positions = {a: (p.quantity, p.multiplier) for a, p in self.book.positions.items()}
        self.gate.exposure.rebuild(positions, dict(self.book.last_prices))
        self.gate.equity = self.book.equity()
        for order in self.book.open.values():
            self.gate.track(order, contingent=order.parent_id is not None)

    def risk_position(self, asset: str) -> None:
        if self.rails is None:
            return
        position = self.book.positions.get(asset)
        if position is None:
            self.gate.position(asset, 0.0)
        else:
            self.gate.position(asset, position.quantity, position.multiplier)

    # ------------------------------------------------------------------ orders
    def risk_clock(self, change: bool = False) -> tuple[float | None, float | None]:
        """(the market clock the rails judge an order or change at, the time the order-rate limit
        records it at if it passes), read before it is journaled: the journal keeps the second
        with the command, so a restart's rate window holds it. (None, None): the rails will not
        judge it (no rails, the runtime's own exit, a new order on a catch-up bar; a change is
        judged on a catch-up bar too)."""
        if self.rails is None or self._runtime_exit or (self._catch_up and not change):
            return None, None
        now = self.gate.now()
        return now, self.gate.limits.rate.stamp(now)

    def risk_refusal(self, order: Order, now: float | None = None) -> tuple[str, str] | None:
        """(code, reason) when the rails refuse ``order`` (it is in the book already)."""
        if self._runtime_exit:
            return None  # the operator's flatten: closes what the strategy owns, even HALTED
        parent = self.book.get(order.parent_id) if order.parent_id is not None else None
        if parent is not None and parent.status is OrderStatus.REJECTED:
            self.gate.refused["bracket_entry_refused"] += 1
            self.gate.log_refusal("bracket_entry_refused", "order {} refused: its bracket entry {} was refused",
                                  order.order_id, parent.order_id)  # fmt: skip
            return "bracket_entry_refused", (f"risk: its bracket entry {parent.order_id} was refused "
                                             f"({parent.rejection_reason})")  # fmt: skip
        if self.rails is not None:
            self.rails.sync()  # an operator's halt from another process counts from the next order
        if self._bracket_entry and not self.gate.halted and (room := self.gate.bracket_room(order.asset, order.side, order.quantity, now)) is not None:
            self.gate.log_refusal(room.code, "bracket entry {} refused: {}", order.order_id, room.reason)
            return room.code, f"risk: {room.reason}"
        open_orders = self._working_orders() - (order.order_id in self.book.open)
        refusal = self.gate.check(order.asset, order.side, order.quantity, order.order_type, order.limit_price,
                                  order.stop_price, open_orders=open_orders,
                                  parent_quantity=unfilled_entry(parent), at=now)  # fmt: skip
        if refusal is None:
            return None
        self.gate.log_refusal(refusal.code, "order {} ({} {:g} {}) refused: {}", order.order_id, order.side.value,
                              order.quantity, order.asset, refusal.reason)  # fmt: skip
        return refusal.code, f"risk: {refusal.reason}"

    def risk_change_refusal(self, order: Order, changes: dict[str, Any], now: float | None = None) -> str | None:
        """Why a change of a working order is refused (the reason), else None."""
        if self.rails is not None:
            self.rails.sync()  # an operator's halt from another process counts from the next change too
        refusal = self.gate.check_change(order, changes, open_orders=self._working_orders(),
                                         entry=self.book.get(order.parent_id or ""), at=now)  # fmt: skip
        if refusal is None:
            return None
        self.gate.log_refusal(refusal.code, "change of {} refused: {}", order.order_id, refusal.reason)
        return f"risk: {refusal.reason}"

    def risk_sent(self, order: Order) -> None:
        self.gate.track(order, contingent=order.parent_id is not None)

    def risk_changed(self, order: Order) -> None:
        if self.rails is not None:
            self.gate.changed(order)

    # ------------------------------------------------------------------ the trading state
    def check_trading_state(self) -> None:
        """Before each live bar's ``on_data`` (after the fill barrier): an operator's halt,
        resume, flatten or cancel-all from another process, a reconciliation's halt, or a limit.
        HALTED cancels the strategy's working orders at every bar (a refused or failed cancel is
        tried again), not the runtime's own (the operator's flatten) unless the operator asked
        ``cancel-all``; new orders are refused."""
        self.own.refresh()
        rails = self.rails
        if rails is None:
            return
        rails.sync()
        if not self.gate.halted:  # a resume withdraws the halt's refused cancels still followed
            withdrawn = self.cancel_resends.withdraw_refused(set(HALT_REASONS))
            for cid in withdrawn:
                _log.info("order {}: trading resumed, its refused cancel is no longer followed; it works on "
                          "for the strategy", cid)  # fmt: skip
            if withdrawn:
                self._keep_follow_up()
        else:  # HALTED, each bar: what a refused or failed cancel left, what a resume let out
            everything = bool(rails.cancel_all_requested)  # else not the runtime's own (the operator's flatten)
            self.cancel_open_orders(CANCEL_ALL if everything else HALT_CANCEL, strategy_only=not everything)
            if everything and not any(self.ids.is_runtime(cid) for cid in self.book.open):
                rails.cancel_all_done()  # (a runtime order left working: tried again at the next bar)
        if rails.flatten_requested:
            self.flatten_owned(rails.flatten_requested)

    def flatten_owned(self, reason: str, wait: float = FLATTEN_WAIT) -> list[Order]:
        """Close every position the strategy owns with MARKET orders; they leave whatever the
        trading state. Working orders are cancelled first and their answers awaited (bounded),
        so a fill that races a cancel is in the position before it is closed. An earlier
        flatten's closing order whose cancel the venue refused, failed or left unanswered may
        still fill: only what it does not close is sent (a second flatten never closes twice;
        the strategy's own stuck orders are not counted, HALTED cancels them at every bar). The operator's
        request is cleared only when every closing order went out; otherwise it is tried again
        at the next bar (ERROR)."""
        self._cancel_and_wait(f"flatten: {reason}", wait)
        closing: dict[str, list[Order]] = {}  # an earlier flatten's MARKET orders whose cancel failed or is unanswered
        for order in (*self.book.open.values(), *self.book.cancelling.values()):
            if self.ids.is_runtime(order.order_id):
                closing.setdefault(order.asset, []).append(order)
        orders = []
        self._runtime_exit = self.link.runtime = True
        try:
            for asset, position in list(self.book.positions.items()):
                held = position.quantity
                covered = sum(o.quantity - o.filled_quantity for o in closing.get(asset, ())
                              if (o.side is OrderSide.SELL) == (held > 0))  # (on the side that closes)
                if covered > 1e-9:  # they may still fill: only the rest is sent (never a second close)
                    rest = max(abs(held) - covered, 0.0)
                    _log.warning("flatten ({}): an earlier flatten's {:g} {} may still fill: {:g} more sent", reason,
                                 covered, asset, rest)  # fmt: skip
                    held = math.copysign(rest, held)
                if abs(held) <= 1e-9:
                    continue
                side = OrderSide.SELL if held > 0 else OrderSide.BUY
                order = self.submit_order(asset, abs(held), side, OrderType.MARKET)
                if order is not None:
                    orders.append(order)
        finally:
            self._runtime_exit = self.link.runtime = False
        _log.warning("flatten ({}): {} closing order(s): {}", reason, len(orders),
                     ", ".join(f"{o.side.value} {o.quantity:g} {o.asset}" for o in orders) or "none to send")  # fmt: skip
        failed = [o for o in orders if o.status is OrderStatus.REJECTED]
        if failed:
            _log.error("flatten ({}): {} closing order(s) did not go out ({}); the strategy is NOT flat, "
                       "trying again at the next bar", reason, len(failed), failed[0].rejection_reason)  # fmt: skip
        elif self.rails is not None and self.rails.flatten_requested:
            self.rails.flatten_done()
        return orders

    def strategy_outcome(self, ok: bool) -> None:
        """After each live ``on_data``: a run of errors halts the strategy."""
        if self.rails is None or self.link.replaying:
            return
        transition = self.gate.strategy_outcome(ok)
        if transition is not None:
            self.rails.moved(transition)
            if transition.new == HALTED:
                self.cancel_open_orders("trading halted", strategy_only=True)  # what is left: at the next bar

    def risk_summary(self) -> dict[str, Any]:
        return self.gate.summary() if self.rails is not None else {}

