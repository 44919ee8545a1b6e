"""Ordinary ml4t.backtest strategies used by the parity tests (nothing live-specific in them)."""

from __future__ import annotations

from collections import deque

from ml4t.backtest import (
    OrderSide,
    OrderType,
    RebalanceConfig,
    RuleChain,
    StopLoss,
    Strategy,
    TargetWeightExecutor,
    TrailingStop,
)
from ml4t.backtest.strategies.templates import (
    LongShortStrategy,
    MeanReversionStrategy,
    MomentumStrategy,
    SignalFollowingStrategy,
)


class Signals(SignalFollowingStrategy):
    position_size = 0.2

    def should_enter_long(self, signal):
        return signal > 0.3

    def should_exit(self, signal):
        return signal < -0.1


class Momentum(MomentumStrategy):
    lookback = 10
    entry_threshold = 0.005
    exit_threshold = -0.002
    position_size = 0.2


class MeanReversion(MeanReversionStrategy):
    lookback = 15
    entry_zscore = -1.2
    exit_zscore = 0.2
    position_size = 0.2


class LongShort(LongShortStrategy):
    long_count = 2
    short_count = 2
    position_size = 0.15
    rebalance_frequency = 15


class MACrossover(Strategy):
    """Equal weight in assets whose fast MA is above the slow MA, via TargetWeightExecutor."""

    def __init__(self, fast: int = 5, slow: int = 20) -> None:
        self.fast, self.slow = fast, slow
        self.history: dict[str, deque[float]] = {}
        self.current: frozenset[str] | None = None
        self.executor = TargetWeightExecutor(RebalanceConfig(min_weight_change=0.02))

    def on_data(self, timestamp, data, context, broker):
        longs = set()
        for asset, bar in data.items():
            hist = self.history.setdefault(asset, deque(maxlen=self.slow))
            hist.append(bar["close"])
            if len(hist) == self.slow and sum(list(hist)[-self.fast :]) / self.fast > sum(hist) / self.slow:
                longs.add(asset)
        if len(next(iter(self.history.values()), ())) < self.slow:
            return
        longs = frozenset(longs)
        if longs != self.current:
            self.current = longs
            self.executor.execute({a: 0.95 / len(longs) for a in longs} if longs else {}, data, broker)


class Brackets(Strategy):
    """Every 7 bars, when flat, enter with a bracket (take profit + stop loss) on the first asset."""

    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        asset = sorted(data)[0]
        if self.n % 7 or broker.get_position(asset) or broker.get_pending_orders(asset):
            return
        price = data[asset]["close"]
        broker.submit_bracket(asset, 50, take_profit=price * 1.006, stop_loss=price * 0.994)


class RiskRules(Strategy):
    """Buys when flat every 5 bars; exits come only from StopLoss + TrailingStop rules."""

    def __init__(self) -> None:
        self.n = 0

    def on_start(self, broker):
        broker.set_position_rules(RuleChain([StopLoss(0.01), TrailingStop(0.008)]))

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n % 5:
            return
        for asset in data:
            if broker.get_position(asset) is None and not broker.get_pending_orders(asset):
                broker.submit_order(asset, 40)


class Requote(Strategy):
    """Each bar, per asset: cancel the working limit order, then quote again near the close."""

    def on_data(self, timestamp, data, context, broker):
        for asset in sorted(data):
            for order in broker.get_pending_orders(asset):
                broker.cancel_order(order.order_id)
            position = broker.get_position(asset)
            close = data[asset]["close"]
            if position is None or position.quantity <= 0:
                broker.submit_order(asset, 10, OrderSide.BUY, OrderType.LIMIT, limit_price=round(close * 0.999, 2))
            else:
                broker.submit_order(
                    asset, position.quantity, OrderSide.SELL, OrderType.LIMIT, limit_price=round(close * 1.001, 2)
                )


def fill_key(fill):
    return (fill.timestamp, fill.asset, fill.side.value, float(fill.quantity), round(fill.price, 9))


def order_key(order):
    return (order.created_at, order.asset, order.side.value, float(order.quantity), order.limit_price,
            order.status.value, float(order.filled_quantity))  # fmt: skip
