"""An operator halt from a second process while a venue run trades (simulated IB, ib_async):
the working order is cancelled at the venue, no new order reaches it, the state survives
``kill -9`` + a restart of the same command (which says so first), and ``resume`` trades again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import polars as pl
import pytest

from tests.cli.cli_support import START

STRATEGY = """
import subprocess, sys
from ml4t.backtest import OrderType, Strategy

class Ticker(Strategy):
    \"\"\"A limit far below the market on bar 1; a 1-share buy every bar; on bar ``halt_on`` the
    operator (another process) halts it.\"\"\"

    def __init__(self, halt_on: int = 0):
        self.n, self.halt_on = 0, halt_on

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAPL", 1, order_type=OrderType.LIMIT, limit_price=1.0)
        if self.n == self.halt_on:
            subprocess.run([sys.executable, "-m", "ml4t_live", "halt", "--strategy-id", "tick",
                            "--reason", "desk says stop"], check=True, capture_output=True, timeout=60)
        broker.submit_order("AAPL", 1)
"""


@pytest.fixture
def bars(tmp_path):
    """AAPL and MSFT, 20 one-minute bars: enough for three runs and the bars a restart skips."""
    rows = [{"timestamp": START + timedelta(minutes=i), "asset": asset, "open": p, "high": p + 0.5,
             "low": p - 0.5, "close": p, "volume": 1000.0}
            for i in range(20) for asset, p in (("AAPL", 100.0), ("MSFT", 200.0))]  # fmt: skip
    path = tmp_path / "bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def _run(tmp_path, port, max_bars, *extra, failpoint=None):
    env = {k: v for k, v in os.environ.items() if k != "ML4T_LIVE_FAILPOINT"}
    if failpoint:
        env["ML4T_LIVE_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "ml4t_live", "run", f"{tmp_path / 'ticker.py'}:Ticker", "--broker", "ib",
               "--port", str(port), "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--strategy-id", "tick",
               "--max-bars", str(max_bars), "--no-session", *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False)


def test_halt_from_another_process_survives_kill_9_and_resume_trades_again(tmp_path, bars, sims):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(STRATEGY))
    sim = sims(bars)
    killed = _run(tmp_path, sim.port, 8, "-p", "halt_on=3", failpoint="after_bar:5")
    assert killed.returncode == 137, killed.stderr
    received = [o.order_ref for o in sim.orders_received]
    assert len(received) == 3, received  # the limit and the buys of bars 1-2; from bar 3's buy (right
    # after the halt, the same on_data) on, refused
    limit = received[0]
    assert {o.order_ref: o.status for o in sim.orders}[limit] == "Cancelled"
    assert "trading is HALTED (desk says stop)" in killed.stderr

    again = _run(tmp_path, sim.port, 2, "-p", "halt_on=3")
    assert again.returncode == 0, again.stderr
    first = next(line for line in again.stderr.splitlines() if line.strip())
    assert "strategy tick is HALTED (desk says stop)" in first, again.stderr[:2000]
    assert len(sim.orders_received) == 3  # nothing new reached the venue

    resumed = subprocess.run([sys.executable, "-m", "ml4t_live", "resume", "--strategy-id", "tick"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)  # fmt: skip
    assert resumed.returncode == 0 and "HALTED -> ACTIVE" in resumed.stdout, resumed.stderr
    third = _run(tmp_path, sim.port, 1)
    assert third.returncode == 0, third.stderr
    assert len(sim.orders_received) == 4  # the next live bar's buy
