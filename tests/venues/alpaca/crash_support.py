"""Strategies of the warm-restart tests that kill run 1 right after Alpaca took a change or a cancel
(``after_change`` / ``after_cancel``): each makes its decision at the first bar that shows a fill,
which the replay of run 2 reaches on the bar the kill interrupted."""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN
from ml4t.backtest import OrderType, Strategy


class ResizeOnceThenReprice(Strategy):
    """20 AAPL limit 150 (the market is near 100) at 14:31; at the first bar with a fill,
    ``update_order(quantity=new_qty)`` once (its answer noted, not acted on, as a backtest strategy
    does); at ``reprice_min`` minutes after the open, re-priced to 149. ``resized``: the resize is
    taken as made already (a run 2 whose replay does not make it again)."""

    def __init__(self, new_qty: float, reprice_min: int = 8, *, resized: bool = False) -> None:
        self.new_qty, self.reprice_min, self.resized = new_qty, reprice_min, resized
        self.order = None
        self.answers: list[tuple[str, bool]] = []

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.LIMIT, limit_price=150.0)
        elif self.order is not None and self.order.filled_quantity > 0 and not self.resized:
            self.resized = True
            self.answers.append(("resize", broker.update_order(self.order.order_id, quantity=self.new_qty)))
        elif self.order is not None and timestamp == SESSION_OPEN + timedelta(minutes=self.reprice_min):
            self.answers.append(("reprice", broker.update_order(self.order.order_id, limit_price=149.0)))


class CancelAtFirstFill(Strategy):
    """20 AAPL limit 150 at 14:31, cancelled at the first bar with a fill (the answers in ``answers``)."""

    def __init__(self) -> None:
        self.order = None
        self.answers: list[bool] = []

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.LIMIT, limit_price=150.0)
        elif self.order is not None and self.order.filled_quantity > 0 and not self.answers:
            self.answers.append(broker.cancel_order(self.order.order_id))


class TrailBuyThenChange(Strategy):
    """20 AAPL buy trailing stop (trail 1) at 14:31; its trail changed to 0.5 at the first bar with a
    fill (the answer in ``answers``)."""

    def __init__(self) -> None:
        self.order = None
        self.answers: list[bool] = []

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.TRAILING_STOP, trail_amount=1.0)
        elif self.order is not None and self.order.filled_quantity > 0 and not self.answers:
            self.answers.append(broker.update_order(self.order.order_id, trail_amount=0.5))
