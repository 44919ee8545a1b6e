"""A strategy's errors on the command line: one short block each (its own frames, the rest
collapsed), counted in the summary and summary.json, the first of each kind in full in
session.log; the default error policy per mode is stated in --help."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from ml4t_live.examples import demo_bars_path

FAILS = """
from ml4t.backtest import Strategy


class Fails(Strategy):
    def __init__(self):
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n % 3 == 0:
            self.check(data)
        if self.n == 10:
            {}["missing"]
        if self.n == 1:
            broker.submit_order("AAPL", 10)

    def check(self, data):
        raise ValueError(f"bar {self.n} looks wrong")
"""


@pytest.fixture
def fails(tmp_path) -> Path:
    path = tmp_path / "fails.py"
    path.write_text(textwrap.dedent(FAILS))
    return path


def _run(cli, fails, tmp_path, *extra):
    return cli("run", fails, "--data", demo_bars_path(), "--max-bars", 60, "--session-dir",
               tmp_path / "s", "-q", *extra)  # fmt: skip


def _folder(tmp_path) -> Path:
    (folder,) = (tmp_path / "s").iterdir()
    return folder


def test_error_policy_log_gives_one_short_block_per_error_and_counts_them(cli, fails, tmp_path):
    result = _run(cli, fails, tmp_path, "--error-policy", "log")
    assert result.exit_code == 0, result.output
    errors = [line for line in result.output.splitlines() if " ERROR " in line]
    assert len(errors) == 21  # 20 ValueErrors (bars 3, 6 ... 60) and one KeyError
    assert errors[0].endswith("Fails.on_data raised ValueError at 2024-03-04 14:32:00+00:00: bar 3 looks "
                              "wrong; error policy 'log': continuing with the next bar (the full "
                              "traceback is logged at DEBUG: session.log)")  # fmt: skip
    assert "(the same error 2 times so far, 2 strategy errors in all)" in errors[1]
    block = result.output.split(errors[0])[1].split(errors[1])[0]
    assert [line.strip() for line in block.strip().splitlines()] == [
        f'File "{fails}", line 12, in on_data', "self.check(data)",
        f'File "{fails}", line 19, in check', 'raise ValueError(f"bar {self.n} looks wrong")',
        "(4 frame(s) of ml4t_live / ml4t.backtest / the standard library collapsed)",
    ]  # fmt: skip
    assert "ml4t_live/engine.py" not in result.output  # no library frames, no variable values
    assert re.search(r"^  strategy errors +21$", result.output, re.M)
    folder = _folder(tmp_path)
    assert json.loads((folder / "summary.json").read_text())["num_strategy_errors"] == 21
    log = (folder / "session.log").read_text()
    assert log.count("Traceback (most recent call last)") == 2  # the first of each kind, in full
    assert "the first ValueError from Fails.on_data, in full" in log
    assert "ml4t_live/engine.py" in log


def test_error_policy_raise_is_one_block_and_exit_1(cli, fails, tmp_path):
    result = _run(cli, fails, tmp_path)  # shadow mode: 'raise' is the default
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.output
    assert errors[0].endswith("strategy error: Fails.on_data raised ValueError at 2024-03-04 "
                              "14:32:00+00:00: bar 3 looks wrong")  # fmt: skip
    assert f'File "{fails}", line 19, in check' in result.output
    assert "ml4t_live/" not in result.output
    folder = _folder(tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["failed"] is True and summary["bars"] == 2
    assert "the strategy error in full" in (folder / "session.log").read_text()


def test_the_summary_shows_open_orders_and_positions(cli, fails, tmp_path):
    result = _run(cli, fails, tmp_path, "--error-policy", "log")
    assert re.search(r"^  open orders +0$", result.output, re.M)
    assert "  positions at the end: AAPL +10" in result.output
    summary = json.loads((_folder(tmp_path) / "summary.json").read_text())
    assert summary["positions"] == {"AAPL": 10.0}


def test_run_help_states_the_default_error_policy_per_mode(cli):
    text = " ".join(cli("run", "--help").output.split())
    assert "(the default in shadow mode and replay)" in text
    assert "(the default against a venue, paper or live" in text


def test_the_summary_says_which_rejections_were_made_on_catch_up_bars(capsys):
    from dataclasses import replace
    from datetime import UTC, datetime

    from ml4t.backtest import Strategy

    from ml4t_live import LiveEngine
    from ml4t_live.cli.ui import Display
    from ml4t_live.venue_broker import VenueBroker
    from tests.support.fakes import FakeVenue, ListFeed, bar

    class BuysFirst(Strategy):
        def on_data(self, timestamp, data, context, broker):
            if not broker.get_pending_orders() and broker.get_position("AAA") is None:
                broker.submit_order("AAA", 10)

    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    warm_up = replace(bar(t0, {"AAA": 100.0}), catch_up=True)  # history: its order never leaves
    feed = ListFeed([warm_up, bar(t0.replace(minute=31), {"AAA": 101.0})])
    result = LiveEngine(BuysFirst(), VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="warm"), feed,
                        session_dir=False, settle_timeout=0.5).run()  # fmt: skip
    display = Display(quiet=True)
    try:
        display.summary("BuysFirst", result, "paper")
    finally:
        display.close()
    out = capsys.readouterr().out
    assert re.search(r"^  rejections +1  \(1 made on catch-up bars: warm-up history or a replay, never sent\)$",
                     out, re.M), out  # fmt: skip
    assert result.metrics["num_fills"] == 1  # the live bar's order went out and filled
