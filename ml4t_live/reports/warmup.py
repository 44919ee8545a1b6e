"""Warm-up in the backtest re-run: the bars a calendar session saw before the open never trade.

A calendar session (``run --calendar``) warms up on the bars before the session's open: they are
catch-up bars by design, the strategy sees them and every order it makes on them is refused
(code ``catch_up``) before it leaves. The re-run does the same, so the two runs start the traded
session from the same state: :class:`WarmupGate` gives the re-run's one ``Broker`` instance its
own ``submit_order`` / ``submit_bracket`` (as :mod:`ml4t_live.shadow_rails` does) and the
strategy instance its own ``on_data`` (to know the bar), and refuses what is made on a bar
labelled before the open. The open comes from ``command.json`` (``session_plan.open``).

Catch-up bars that are not warm-up (a backfill after an outage, a bar the strategy was late for,
a restart's replay) are not by design: the re-run trades them, and parity names what live missed
there (cause ``catch_up``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ml4t.backtest import Broker, Order, OrderSide, OrderType

from .session_files import SessionData

REFUSAL = "catch-up bar {}: warm-up before the session's open, its orders do not leave"


def warmup_end(session: SessionData) -> datetime | None:
    """The session's open (bars labelled before it are warm-up); None without a calendar plan."""
    plan = session.command.get("session_plan") or {}
    opened = plan.get("open") if isinstance(plan, dict) else None
    if not opened:
        return None
    return datetime.fromisoformat(str(opened))


def is_warmup(timestamp: Any, end: datetime | None) -> bool:
    return end is not None and timestamp is not None and timestamp < end


class WarmupGate:
    """Refuses the re-run's orders on warm-up bars, as the live run refused them."""

    def __init__(self, broker: Broker, strategy: Any, end: datetime) -> None:
        self.end = end
        self.broker = broker
        self.refused: list[Order] = []
        self._bar: Any = None
        self._submit = broker.submit_order
        self._submit_bracket = broker.submit_bracket
        self._on_data = strategy.on_data
        broker.submit_order = self.submit_order  # type: ignore[method-assign]
        broker.submit_bracket = self.submit_bracket  # type: ignore[method-assign]
        strategy.on_data = self.on_data

    def on_data(self, timestamp: Any, *args: Any, **kwargs: Any) -> Any:
        self._bar = timestamp
        try:
            return self._on_data(timestamp, *args, **kwargs)
        finally:
            self._bar = None

    @property
    def warming_up(self) -> bool:
        return is_warmup(self._bar, self.end)

    def submit_order(self, asset: str, quantity: float, side: OrderSide | None = None,
                     order_type: OrderType = OrderType.MARKET, limit_price: float | None = None,
                     stop_price: float | None = None, trail_amount: float | None = None,
                     _options: Any = None) -> Order | None:  # fmt: skip
        args = (asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
        if not self.warming_up or isinstance(quantity, bool) or not isinstance(quantity, int | float) \
                or not abs(quantity) > 1e-9:  # fmt: skip
            return self._submit(*args)  # the backtest's own answer (also to a malformed order)
        if side is None:
            side = OrderSide.BUY if quantity >= 0 else OrderSide.SELL
        return self._refuse(asset, side, abs(float(quantity)), order_type, limit_price, stop_price, trail_amount)

    def submit_bracket(self, asset: str, quantity: float, take_profit: float, stop_loss: float,
                       entry_type: OrderType = OrderType.MARKET, entry_limit: float | None = None,
                       validate_prices: bool = True) -> Any:  # fmt: skip
        if not self.warming_up:
            return self._submit_bracket(asset, quantity, take_profit, stop_loss, entry_type, entry_limit,
                                        validate_prices)  # fmt: skip
        # as a venue broker does on a catch-up bar: the entry and both exits, each refused
        side = OrderSide.BUY if quantity >= 0 else OrderSide.SELL
        exit_side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
        size = abs(float(quantity))
        entry = self._refuse(asset, side, size, entry_type, entry_limit, None, None)
        take = self._refuse(asset, exit_side, size, OrderType.LIMIT, take_profit, None, None)
        stop = self._refuse(asset, exit_side, size, OrderType.STOP, None, stop_loss, None)
        return entry, take, stop

    def _refuse(self, asset: str, side: OrderSide, size: float, order_type: OrderType,
                limit_price: float | None, stop_price: float | None, trail_amount: float | None) -> Order:  # fmt: skip
        order = Order(asset=asset, side=side, quantity=size, order_type=order_type, limit_price=limit_price,
                      stop_price=stop_price, trail_amount=trail_amount,
                      order_id=f"WARMUP-{len(self.refused) + 1}", created_at=self._bar)  # fmt: skip
        order.reject(REFUSAL.format(self._bar), "catch_up")
        self.refused.append(order)
        return order
