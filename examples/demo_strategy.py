"""The demo strategy as a file you can copy: an ordinary ml4t.backtest Strategy, nothing live.

Run it in shadow mode on the bundled bars (or your own, parquet or CSV in long format):

    ml4t-live run examples/demo_strategy.py:DemoMomentum --data ml4t_live/data/demo_bars.parquet
    ml4t-live run examples/demo_strategy.py:DemoMomentum --data bars.csv -p fast=5 -p slow=20

The same class runs unchanged in a backtest: Engine(DataFeed(prices_df=bars), DemoMomentum()).run().
(It is the same code as ``ml4t_live.examples.DemoMomentum``, which ``ml4t-live demo`` runs.)
"""

from __future__ import annotations

from collections import deque

from ml4t.backtest import RebalanceConfig, Strategy, TargetWeightExecutor


class DemoMomentum(Strategy):
    """Equal weight across assets whose ``fast``-bar mean close is above the ``slow``-bar mean;
    rebalance through TargetWeightExecutor whenever that set changes."""

    def __init__(self, fast: int = 10, slow: int = 30, invested: float = 0.95) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got fast={fast}, slow={slow}")
        if not 0 < invested <= 1:
            raise ValueError(f"invested must be in (0, 1], got {invested}")
        self.fast, self.slow, self.invested = int(fast), int(slow), float(invested)
        self.executor = TargetWeightExecutor(RebalanceConfig(min_weight_change=0.02))
        self.history: dict[str, deque[float]] = {}
        self.holding: frozenset[str] | None = None
        self.rebalances = 0

    def on_start(self, broker) -> None:
        self.history = {}
        self.holding = None
        self.rebalances = 0

    def on_data(self, timestamp, data, context, broker) -> None:
        trending = set()
        ready = True
        for asset, bar in data.items():
            closes = self.history.setdefault(asset, deque(maxlen=self.slow))
            closes.append(bar["close"])
            if len(closes) < self.slow:
                ready = False
                continue
            fast_mean = sum(list(closes)[-self.fast :]) / self.fast
            if fast_mean > sum(closes) / self.slow:
                trending.add(asset)
        if not ready:
            return  # warm-up
        target = frozenset(trending)
        if target == self.holding:
            return
        self.holding = target
        self.rebalances += 1
        weights = {asset: self.invested / len(target) for asset in sorted(target)} if target else {}
        self.executor.execute(weights, data, broker, timestamp=timestamp)
