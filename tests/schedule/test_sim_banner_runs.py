"""Every ``ml4t-live sim`` banner prints a run command that ends: run exactly that command (with a
strategy filled in) against the simulator in its own process, and it stops by itself at the
recorded session's close with exit 0 (no --max-bars, no Ctrl-C). The earlier recorded day is the
run's warm-up."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from ml4t_live.cli import app
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV
from tests.support.cli_output import read_until

NY = ZoneInfo("America/New_York")
# the last minutes of Wed 2024-11-27, then the day after Thanksgiving from 12:52 to its close at 13:00
DAYS = [(datetime(2024, 11, 27, 15, 56, tzinfo=NY), 4), (datetime(2024, 11, 29, 12, 52, tzinfo=NY), 8)]

STRATEGY = """
from ml4t.backtest import Strategy

class Buyer(Strategy):
    def on_data(self, timestamp, data, context, broker):
        if timestamp.minute == 53:
            broker.submit_order("SPY", 2)
"""


@pytest.fixture
def bars(tmp_path):
    rows = [{"timestamp": (start + timedelta(minutes=i)).astimezone(UTC), "symbol": "SPY", "open": 500.0 + i,
             "high": 501.0 + i, "low": 499.0 + i, "close": 500.5 + i, "volume": 100.0}
            for start, n in DAYS for i in range(n)]  # fmt: skip
    path = tmp_path / "bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.mark.parametrize("venue", ["ib", "alpaca"])
def test_the_banners_run_command_ends_by_itself_at_the_recorded_close(venue, bars, tmp_path, monkeypatch):
    (tmp_path / "buyer.py").write_text(STRATEGY)
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, SECRET_ENV)}
    proc = subprocess.Popen([sys.executable, "-m", "ml4t_live", "sim", venue, "--data", str(bars), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)  # fmt: skip
    try:
        command = read_until(proc.stdout, r"ml4t-live run (\S+) (--broker .*--calendar .*)\n", timeout=30)
        if venue == "alpaca":  # the banner's throwaway keys, as its export lines say
            banner = command.string
            monkeypatch.setenv(KEY_ENV, re.search(rf"export {KEY_ENV}=(\S+)", banner).group(1))
            monkeypatch.setenv(SECRET_ENV, re.search(rf"export {SECRET_ENV}=(\S+)", banner).group(1))
        args = shlex.split(command.group(2))
        # the last recorded session, which the recording covers to its close: no offset needed
        assert command.group(2).endswith("--calendar XNYS --as-of 2024-11-29") and "--max-bars" not in args
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["run", "buyer.py:Buyer", *args, "--no-session"])
    finally:
        proc.terminate()
        _out, err = (b.decode() for b in proc.communicate(timeout=20))
    assert result.exit_code == 0, result.output
    assert "Buyer: 12 bars, paper mode, stopped: session end 13:00 EST (XNYS)" in result.output
    assert "fills                     1" in result.output
    assert proc.returncode == 0, err


def test_the_process_exits_4_on_a_holiday(tmp_path):
    """What cron and systemd see: the process's own exit status (nothing listens on port 9)."""
    (tmp_path / "buyer.py").write_text(STRATEGY)
    done = subprocess.run([sys.executable, "-m", "ml4t_live", "run", "buyer.py:Buyer", "--broker", "ib", "--port", "9",
                           "--symbols", "SPY", "--calendar", "XNYS", "--as-of", "2024-12-25"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "XNYS is closed on Wed 2024-12-25 (holiday: Christmas); nothing to do" in done.stderr
