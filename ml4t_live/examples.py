"""The bundled demo strategy: an ordinary ml4t.backtest ``Strategy``, nothing live-specific.

``DemoMomentum`` holds an equal weight in every asset whose short moving average of the close is
above its long one, and rebalances through ``TargetWeightExecutor`` whenever that set changes.
It runs unchanged in ``ml4t.backtest.Engine`` and in ``ml4t_live.LiveEngine``; ``ml4t-live demo``
trades it on the bundled minute bars (:func:`demo_bars_path`).
"""

from __future__ import annotations

from collections import deque
from importlib import resources
from pathlib import Path

from ml4t.backtest import RebalanceConfig, Strategy, TargetWeightExecutor

__all__ = ["DemoMomentum", "demo_bars_path"]


def demo_bars_path() -> Path:
    """Path of the bundled recorded bars (AAPL, MSFT, SPY; two sessions of 1-minute bars)."""
    return Path(str(resources.files("ml4t_live") / "data" / "demo_bars.parquet"))


class DemoMomentum(Strategy):
    """Equal weight across assets whose ``fast``-bar mean close is above the ``slow``-bar mean.

    ``invested`` is the fraction of equity to hold (a little cash absorbs next-bar-open gaps
    in a cash account). Rebalances only when the set of assets in an uptrend changes.
    """

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
