"""The order-rate window survives ``kill -9`` + restart of the same command (the real CLI, the real
venue clients, the simulated venues): the sends the journal recorded in the last 60 s of the
market clock still count, so a strategy that sends and crashes gets no fresh budget per life. A
venue run reads them from its journal; a shadow run re-counts them as its warm restart replays.

Step mode: the market clock is the recorded bars' time (plus the seconds since a bar's first
order), so the bars are 5 seconds apart: three bars' orders fit in one minute of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig

from ml4t_live.journal.operator_access import read_only
from ml4t_live.sim.alpaca import SimulatedAlpaca, generate_keys
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York

STRATEGY = """
from ml4t.backtest import Strategy

class Ticker(Strategy):
    \"\"\"Buys 1 AAPL on every bar.\"\"\"

    def on_data(self, timestamp, data, context, broker):
        broker.submit_order("AAPL", 1)
"""


@pytest.fixture
def five_second_bars(tmp_path):
    rows = []
    for asset, price in (("AAPL", 100.0), ("MSFT", 200.0)):
        for i in range(40):
            rows.append({"timestamp": START + timedelta(seconds=5 * i), "asset": asset, "open": price,
                         "high": price + 0.25, "low": price - 0.25, "close": price, "volume": 1000.0})  # fmt: skip
    path = tmp_path / "bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def ib_sim(five_second_bars):
    sim = SimulatedIBGateway(five_second_bars)
    sim.start()
    yield sim
    sim.close()


def _journaled_sends() -> list[float]:
    """The send times the run's journal holds for the rate window (one venue journal per test)."""
    (path,) = Path(os.environ["ML4T_LIVE_STATE_DIR"]).glob("*.journal")
    journal = read_only(path)
    try:
        return journal.recent_sends(60.0)
    finally:
        journal.close()


def _run(tmp_path, venue: list[str], max_bars, failpoint=None):
    """``ml4t-live run`` of the ticker against ``venue`` (its --broker / --port or --host /
    --bar-size options), in a fresh process; ``failpoint`` kills it as ``kill -9`` does."""
    env = {k: v for k, v in os.environ.items() if k != "ML4T_LIVE_FAILPOINT"}
    if failpoint:
        env["ML4T_LIVE_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "ml4t_live", "run", f"{tmp_path / 'ticker.py'}:Ticker", "--config",
               str(tmp_path / "session.toml"), *venue, "--symbols", "AAPL,MSFT", "--max-bars", str(max_bars),
               "--no-session"]  # fmt: skip
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def _run_ib(tmp_path, port, max_bars, failpoint=None):
    return _run(tmp_path, ["--broker", "ib", "--port", str(port), "--bar-size", "5s"], max_bars, failpoint)


def test_ib_the_sends_before_a_kill_9_still_count_after_the_restart(tmp_path, ib_sim):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(STRATEGY))
    (tmp_path / "session.toml").write_text("[risk]\nmax_orders_per_minute = 3\n")
    killed = _run_ib(tmp_path, ib_sim.port, 10, failpoint="after_send:3")
    assert killed.returncode == 137, killed.stderr
    assert len(ib_sim.orders_received) == 3  # bars 1-3 (0 s, 5 s, 10 s): the minute's cap

    again = _run_ib(tmp_path, ib_sim.port, 3)
    assert again.returncode == 0, again.stderr
    assert "warm restart done: 3 bars replayed" in again.stderr
    # bars 4-6 (15 s .. 25 s): the three sends of the killed run are in their last 60 s
    assert len(ib_sim.orders_received) == 3, [o.order_ref for o in ib_sim.orders_received]
    assert again.stderr.count("max_orders_per_minute: 3 orders in the last 60 s") == 3, again.stderr
    assert len(_journaled_sends()) == 3  # the refused orders were not counted


@pytest.fixture
def alpaca_sim(five_second_bars, monkeypatch):
    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    sim = SimulatedAlpaca(pl.read_parquet(five_second_bars), config=BacktestConfig(), key_id=key_id,
                          secret_key=secret, rate_limit_per_minute=None)  # fmt: skip
    sim.start()
    yield sim
    sim.close()


def _run_alpaca(tmp_path, base_url, max_bars, failpoint=None):
    return _run(tmp_path, ["--broker", "alpaca", "--host", base_url, "--bar-size", "1min"], max_bars, failpoint)


def test_alpaca_the_sends_before_a_kill_9_still_count_after_the_restart(tmp_path, alpaca_sim):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(STRATEGY))
    (tmp_path / "session.toml").write_text("[risk]\nmax_orders_per_minute = 3\n")
    killed = _run_alpaca(tmp_path, alpaca_sim.base_url, 10, failpoint="after_send:3")
    assert killed.returncode == 137, killed.stderr
    assert len(alpaca_sim.orders_received()) == 3

    again = _run_alpaca(tmp_path, alpaca_sim.base_url, 3)
    assert again.returncode == 0, again.stderr
    assert "warm restart done: 3 bars replayed" in again.stderr
    assert len(alpaca_sim.orders_received()) == 3, alpaca_sim.orders_received()
    assert again.stderr.count("max_orders_per_minute: 3 orders in the last 60 s") == 3, again.stderr
    assert len(_journaled_sends()) == 3  # the refused orders were not counted


def _run_shadow(tmp_path, bars_file, max_bars, failpoint=None):
    env = {k: v for k, v in os.environ.items() if k != "ML4T_LIVE_FAILPOINT"}
    if failpoint:
        env["ML4T_LIVE_FAILPOINT"] = failpoint
    command = [sys.executable, "-m", "ml4t_live", "run", f"{tmp_path / 'ticker.py'}:Ticker", "--config",
               str(tmp_path / "session.toml"), "--data", str(bars_file), "--speed", "10", "--max-bars",
               str(max_bars), "--no-session"]  # fmt: skip
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


def test_shadow_the_sends_before_a_kill_9_still_count_after_the_restart(tmp_path, five_second_bars):
    (tmp_path / "ticker.py").write_text(textwrap.dedent(STRATEGY))
    (tmp_path / "session.toml").write_text("[risk]\nmax_orders_per_minute = 3\n")
    killed = _run_shadow(tmp_path, five_second_bars, 10, failpoint="after_bar:3")
    assert killed.returncode == 137, killed.stderr
    assert "refused" not in killed.stderr

    again = _run_shadow(tmp_path, five_second_bars, 3)
    assert again.returncode == 0, again.stderr
    assert "warm restart done: 3 bars replayed" in again.stderr, again.stderr
    assert again.stderr.count("max_orders_per_minute: 3 orders in the last 60 s") == 3, again.stderr
