"""Position-rule exits say why in the fills at the venue as in shadow mode: the same run through
the simulated IB Gateway (real ib_async) and in shadow mode records the same exit reasons."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test

STRATEGY = """
from ml4t.backtest import StopLoss, Strategy

class Guarded(Strategy):
    \"\"\"Buys AAPL and MSFT on bar 1 under a 5% stop loss; sells MSFT itself on bar 6.\"\"\"

    def __init__(self):
        self.bars = 0

    def on_start(self, broker):
        broker.set_position_rules(StopLoss(0.05))

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            broker.submit_order("AAPL", 10)
            broker.submit_order("MSFT", 10)
        elif self.bars == 6:
            broker.submit_order("MSFT", -10)
"""
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
AAPL = [100.0, 100.0, 100.0, 90.0, 90.0, 90.0, 90.0, 90.0]  # falls 10% on bar 4: the stop fires


def _bars(path):
    rows = [{"timestamp": START + timedelta(minutes=i), "asset": asset, "open": p, "high": p, "low": p,
             "close": p, "volume": 1000.0}
            for asset, prices in (("AAPL", AAPL), ("MSFT", [200.0] * 8)) for i, p in enumerate(prices)]  # fmt: skip
    pl.DataFrame(rows).write_parquet(path)
    return path


def _reasons(folder) -> list[tuple[str, str, str]]:
    fills = pl.read_parquet(next(folder.iterdir()) / "fills.parquet")
    return sorted(fills.select("asset", "side", "exit_reason").iter_rows())


def test_venue_fills_carry_the_position_rules_exit_reason_as_shadow_does(cli, sims, tmp_path):
    strategy = tmp_path / "guarded.py"
    strategy.write_text(textwrap.dedent(STRATEGY))
    bars = _bars(tmp_path / "bars.parquet")
    shadow = cli("run", f"{strategy}:Guarded", "--data", bars, "--session-dir", tmp_path / "shadow", "-q")
    assert shadow.exit_code == 0, shadow.output
    sim = sims(bars)
    venue = cli("run", f"{strategy}:Guarded", "--broker", "ib", "--port", sim.port, "--symbols", "AAPL,MSFT",
                "--bar-size", "1min", "--max-bars", 8, "--session-dir", tmp_path / "ib", "-q")  # fmt: skip
    assert venue.exit_code == 0, venue.output
    expected = [("AAPL", "buy", ""), ("AAPL", "sell", "stop_loss"), ("MSFT", "buy", ""), ("MSFT", "sell", "signal")]
    assert _reasons(tmp_path / "shadow") == expected
    assert _reasons(tmp_path / "ib") == expected
