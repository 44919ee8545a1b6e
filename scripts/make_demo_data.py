"""Generate ml4t_live/data/demo_bars.parquet: the bundled demo's recorded bars.

Deterministic synthetic 1-minute bars for AAPL, MSFT and SPY over two NYSE regular sessions
(Mon 2024-03-04 and Tue 2024-03-05, 09:30-16:00 America/New_York = 14:30-21:00 UTC), labelled by
bar START, tz-aware UTC, in ml4t.backtest's long format: timestamp, symbol, open, high, low,
close, volume. Prices follow a seeded one-factor random walk (market + idiosyncratic) with an
overnight gap; volume is U-shaped through the session. Not market data.

Run: .venv/bin/python scripts/make_demo_data.py   (rewrites the file; same seed, same bytes of data)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20240304
SESSIONS = [datetime(2024, 3, 4, 14, 30, tzinfo=UTC), datetime(2024, 3, 5, 14, 30, tzinfo=UTC)]
MINUTES = 390
# symbol: (first open, market beta, idiosyncratic vol per minute, mean volume per minute)
SYMBOLS = {
    "AAPL": (175.10, 1.1, 0.00070, 120_000),
    "MSFT": (414.90, 0.9, 0.00055, 45_000),
    "SPY": (512.30, 1.0, 0.00010, 150_000),
}
MARKET_VOL = 0.00060  # per minute (about 1.2% a day)
OUT = Path(__file__).resolve().parents[1] / "ml4t_live" / "data" / "demo_bars.parquet"


def make_bars(seed: int = SEED) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = MINUTES * len(SESSIONS)
    timestamps = [s + timedelta(minutes=m) for s in SESSIONS for m in range(MINUTES)]
    market = rng.normal(0.0, MARKET_VOL, n)
    market[MINUTES] += rng.normal(0.0, 0.006)  # overnight gap into day two
    u_shape = 1.0 + 2.5 * (np.linspace(-1.0, 1.0, MINUTES) ** 2)
    frames = []
    for symbol, (first, beta, idio, mean_volume) in SYMBOLS.items():
        returns = beta * market + rng.normal(0.0, idio, n)
        close = first * np.exp(np.cumsum(returns))
        open_ = np.concatenate([[first], close[:-1]]) * np.exp(rng.normal(0.0, idio / 4, n))
        wick = np.abs(rng.normal(0.0, idio + MARKET_VOL / 2, (2, n)))
        high = np.maximum(open_, close) * (1.0 + wick[0])
        low = np.minimum(open_, close) * (1.0 - wick[1])
        volume = rng.poisson(mean_volume * np.tile(u_shape, len(SESSIONS)) / 2.0)
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": timestamps,
                    "symbol": symbol,
                    "open": np.round(open_, 2),
                    "high": np.round(high, 2),
                    "low": np.round(low, 2),
                    "close": np.round(close, 2),
                    "volume": volume.astype(np.float64),
                },
                schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
            )
        )
    bars = pl.concat(frames).sort("timestamp", "symbol")
    # rounding can push open/close a cent outside the wick: keep every bar consistent
    return bars.with_columns(
        high=pl.max_horizontal("open", "high", "close"),
        low=pl.min_horizontal("open", "low", "close"),
    )


def main() -> None:
    bars = make_bars()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bars.write_parquet(OUT, compression="zstd", statistics=False)
    print(f"wrote {OUT} ({bars.height} rows, {OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
