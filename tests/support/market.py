"""Deterministic synthetic market data in ml4t.backtest's long format, for tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl


def make_prices(
    n_bars: int,
    assets: list[str],
    *,
    seed: int = 7,
    start: datetime = datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
    step: timedelta = timedelta(minutes=1),
    vol: float = 0.01,
) -> pl.DataFrame:
    """OHLCV random walks, one row per (timestamp, asset), sorted."""
    rng = np.random.default_rng(seed)
    timestamps = [start + i * step for i in range(n_bars)]
    frames = []
    for k, asset in enumerate(assets):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002 * (k + 1), vol, n_bars)))
        open_ = close * np.exp(rng.normal(0, vol / 4, n_bars))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 3, n_bars)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 3, n_bars)))
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": timestamps,
                    "asset": [asset] * n_bars,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(1_000, 100_000, n_bars).astype(float),
                }
            )
        )
    return pl.concat(frames).sort("timestamp", "asset")


def aaa_minutes(prices: list[float], start: datetime = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)) -> pl.DataFrame:
    """One-minute bars of AAA, one per price (open = high = low = close), for a shadow replay."""
    return pl.DataFrame([{"timestamp": start + timedelta(minutes=i), "asset": "AAA", "open": p, "high": p, "low": p,
                          "close": p, "volume": 1e6} for i, p in enumerate(prices)])  # fmt: skip


def make_signals(prices: pl.DataFrame, *, seed: int = 11) -> pl.DataFrame:
    """A noisy, persistent per-asset 'signal' column keyed by (timestamp, asset)."""
    rng = np.random.default_rng(seed)
    out = []
    for asset, frame in prices.group_by("asset", maintain_order=True):
        n = frame.height
        signal = np.tanh(np.cumsum(rng.normal(0, 0.3, n)) / 3)
        out.append(frame.select("timestamp", "asset").with_columns(pl.Series("signal", signal)))
    return pl.concat(out).sort("timestamp", "asset")


def make_context(prices: pl.DataFrame) -> pl.DataFrame:
    """A market-wide context column keyed by timestamp."""
    ts = prices.select("timestamp").unique().sort("timestamp")
    return ts.with_columns(pl.int_range(0, ts.height).alias("bar_number").cast(pl.Float64))
