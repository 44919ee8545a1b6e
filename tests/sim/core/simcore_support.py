"""Shared helpers for the sim core tests: synthetic bars and a bar-by-bar exchange driver."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import polars as pl

from ml4t_live.sim.bars import bar_groups, load_bars
from ml4t_live.sim.matching import SimEvent, SimExchange, SimOrderSpec


def make_bars(n_bars: int = 8, assets: tuple[str, ...] = ("AAA", "BBB"), seed: int = 1) -> pl.DataFrame:
    """Deterministic daily OHLCV bars with gaps large enough to exercise gap-through fills."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 2)
    rows = []
    for k, asset in enumerate(assets):
        close = 100.0 / (k + 1)
        for i in range(n_bars):
            open_ = round(close * (1 + rng.uniform(-0.03, 0.03)), 2)
            close = round(open_ * (1 + rng.uniform(-0.04, 0.04)), 2)
            high = round(max(open_, close) * (1 + rng.uniform(0, 0.02)), 2)
            low = round(min(open_, close) * (1 - rng.uniform(0, 0.02)), 2)
            rows.append(
                {
                    "timestamp": start + timedelta(days=i),
                    "asset": asset,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": float(rng.randint(1_000, 10_000)),
                }
            )
    return load_bars(pl.DataFrame(rows))


def drive(
    exchange: SimExchange,
    bars: pl.DataFrame,
    script: dict[int, list[SimOrderSpec]],
) -> list[SimEvent]:
    """Run the exchange over every bar; ``script[i]`` is submitted while bar i is current.

    ``script[-1]`` is submitted before the first bar (like orders placed in ``on_start``).
    """
    events: list[SimEvent] = []
    for spec in script.get(-1, []):
        events.extend(exchange.submit(spec)[1])
    for i, (ts, group) in enumerate(bar_groups(bars)):
        events.extend(exchange.open_bar(ts, group))
        for spec in script.get(i, []):
            events.extend(exchange.submit(spec)[1])
        events.extend(exchange.close_bar())
    return events
