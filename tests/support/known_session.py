"""Sessions with known differences, recorded live through each simulated venue.

``KnownDifferences`` (known_strategy.py) decides by the bar's minute, never by its fills, so the
live and backtest runs make the same decisions and each difference has one known cause:

* minute 0: buy 10 MSFT - the venue rejects it (``reject_next``); buy 10 AAPL
* minute 2: buy 5 MSFT
* minute 5: AAPL falls through its 2% stop: the backtest exits at the stop level on that bar, the
  venue exit is a market order filled at the next bar's open
* minute 7: buy 10 MSFT - the venue fills it in two parts (``partial_fill``), the second a bar later
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
N_BARS = 10
STRATEGY = Path(__file__).parents[1] / "reports" / "known_strategy.py"
TARGET = f"{STRATEGY}:KnownDifferences"


def known_bars() -> pl.DataFrame:
    rows = []
    for asset, base in (("AAPL", 100.0), ("MSFT", 200.0)):
        price = base
        for i in range(N_BARS):
            close = price + (0.2 if i % 2 else -0.1)
            low = min(price, close) - 0.05
            if asset == "AAPL" and i == 5:
                close, low = price - 3.0, price - 3.5  # through the 2% stop
            rows.append({"timestamp": START + timedelta(minutes=i), "asset": asset, "open": round(price, 2),
                         "high": round(max(price, close) + 0.05, 2), "low": round(low, 2),
                         "close": round(close, 2), "volume": 1000.0})  # fmt: skip
            price = close
    return pl.DataFrame(rows)


def only_session(root: Path) -> Path:
    (folder,) = root.iterdir()
    return folder
