"""What the CLI tests share besides their fixtures (those are in conftest.py): the bars' first
timestamps, the Alpaca prices, strategy sources, and readers of the command's output."""

from __future__ import annotations

import json
import os
import re
import selectors
import time
from datetime import UTC, datetime

import polars as pl

from tests.support.market import make_prices

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
N_BARS = 8
MONDAY_OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # a regular NYSE session
# quoted in cents, as on the tape (Alpaca's JSON carries prices as decimal strings)
PRICES = make_prices(30, ["AAPL", "MSFT"], start=MONDAY_OPEN).with_columns(
    pl.col("open", "high", "low", "close").round(2)
)

# what ib_async logs as ERROR around the traded_ib account (conftest.py): the limit orders cancelled at
# the end of the runs (202) and a status asked of a gateway that is gone
TRADED_IB_ERRORS = ("Error 202", "API connection failed", "Make sure API port")

KEEPER = """
from ml4t.backtest import OrderType, Strategy

class Keeper(Strategy):
    \"\"\"Bar 1: buy QTY AAPL and 5 MSFT, and a far AAPL limit (it stays working).\"\"\"

    def __init__(self, qty=10):
        self.qty = qty
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            broker.submit_order("AAPL", self.qty)
            if self.qty == 10:
                broker.submit_order("MSFT", 5)
            broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=1.0)
"""

HOLDER = """
from ml4t.backtest import Strategy

class Holder(Strategy):
    \"\"\"Buys 7 AAPL on its first bar and holds.\"\"\"

    def __init__(self):
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            broker.submit_order("AAPL", 7)
"""


def summary_rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        if line.startswith("  ") and "  " in line.strip():
            label, value = line.strip().split("  ", 1)
            rows[label] = value.strip()
    return rows


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"\bERROR\b", line)]


def read_until(stream, pattern: str, timeout: float) -> re.Match[str]:
    """Read ``stream`` (raw pipe) until ``pattern`` matches what was read; fail after ``timeout``."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if (m := re.search(pattern, seen.decode(errors="replace"))) is not None:
                return m
            if selector.select(left):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    raise AssertionError(
        f"{pattern!r} not seen within {timeout}s: {seen.decode(errors='replace')}"
    )


def json_output(result) -> dict:
    return json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])


def alpaca_venue(sim) -> tuple[str, ...]:
    return ("--broker", "alpaca", "--host", sim.base_url)
