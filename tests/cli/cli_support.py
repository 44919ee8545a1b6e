"""What the CLI tests share besides their fixtures (those are in conftest.py): the bars' first
timestamps, the Alpaca prices, strategy sources and the Alpaca venue options (the readers of what
the commands print are in tests/support/cli_output.py)."""

from __future__ import annotations

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


def alpaca_venue(sim) -> tuple[str, ...]:
    return ("--broker", "alpaca", "--host", sim.base_url)
