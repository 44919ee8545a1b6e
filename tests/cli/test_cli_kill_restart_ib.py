"""``kill -9`` and restart of the same command, against the simulated IB Gateway (ib_async).

The run is killed right after its second order reached the venue (``ML4T_LIVE_FAILPOINT``: an
``os._exit(137)``, no cleanup, no flush), then the same command runs again: nothing is sent
twice, the strategy continues where it was, and the killed run's session folder is completed
from the journal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter

import polars as pl

STRATEGY = """
from ml4t.backtest import Strategy

class Ticker(Strategy):
    \"\"\"Buys 1 AAPL on every bar.\"\"\"

    def __init__(self):
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        broker.submit_order("AAPL", 1)
"""


def _run(tmp_path, port, max_bars, failpoint=None):
    env = {k: v for k, v in os.environ.items() if k != "ML4T_LIVE_FAILPOINT"}
    if failpoint:
        env["ML4T_LIVE_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "ml4t_live", "run", f"{tmp_path / 'ticker.py'}:Ticker",
               "--broker", "ib", "--port", str(port), "--symbols", "AAPL,MSFT", "--bar-size", "1min",
               "--max-bars", str(max_bars), "--session-dir", str(tmp_path / "sessions")]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def test_kill_9_after_a_send_then_the_same_command_again(tmp_path, bars, sims):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(STRATEGY))
    sim = sims(bars)
    killed = _run(tmp_path, sim.port, 6, failpoint="after_send:2")
    assert killed.returncode == 137, killed.stderr
    assert len(sim.orders_received) == 2
    (crashed,) = (tmp_path / "sessions").iterdir()
    assert not (crashed / "orders.parquet").exists()  # the kill left no order file behind

    again = _run(tmp_path, sim.port, 3)
    assert again.returncode == 0, again.stderr
    assert "warm restart done: 2 bars replayed" in again.stderr
    assert f"session folder {crashed} was completed from the journal" in again.stderr
    refs = [o.order_ref for o in sim.orders_received]
    assert Counter(refs).most_common(1)[0][1] == 1, refs  # nothing sent twice
    assert len(refs) == 5  # 2 before the kill, one per new bar after it
    # the killed run's files now hold everything its journal held
    orders = pl.read_parquet(crashed / "orders.parquet")
    assert sorted(orders["order_id"].to_list()) == sorted(refs[:2])
    assert pl.read_parquet(crashed / "bars.parquet")["timestamp"].n_unique() == 2
    fills = pl.read_parquet(crashed / "fills.parquet")
    assert set(fills["order_id"].to_list()) <= set(refs[:2])
    assert '"recovered_from_journal": true' in (crashed / "summary.json").read_text()
    # the venue's position is the sum of the strategy's fills: the reconcile command agrees
    check = subprocess.run([sys.executable, "-m", "ml4t_live", "reconcile", f"{tmp_path / 'ticker.py'}:Ticker",
                            "--broker", "ib", "--port", str(sim.port)],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "consistent" in check.stdout
    assert {s: q for s, (q, _) in sim.account.positions.items() if q} == {"AAPL": 5.0}
