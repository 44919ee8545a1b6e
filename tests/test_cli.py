"""The ml4t-live command line: help, exit codes, --param, TOML config, demo, run, replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig, DataFeed, Engine
from ml4t.backtest.config import CommissionType
from typer.testing import CliRunner

from ml4t_live.cli import app
from ml4t_live.cli.options import build_config, merge_options, parse_param
from ml4t_live.cli.venues import entry_point
from ml4t_live.errors import ConfigError
from ml4t_live.examples import DemoMomentum, demo_bars_path
from tests.support.cli_output import summary_rows


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # ./sessions lands in the test's folder
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def _backtest(strategy, **config) -> dict:
    feed = DataFeed(prices_df=pl.read_parquet(demo_bars_path()))
    return Engine(feed, strategy, BacktestConfig(**config)).run().metrics


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


RAISING = """
from ml4t.backtest import Strategy

class Boom(Strategy):
    def on_data(self, timestamp, data, context, broker):
        self.seen = getattr(self, "seen", 0) + 1
        if self.seen >= 3:
            raise ZeroDivisionError("boom on bar three")
"""


# -- help and usage -----------------------------------------------------------------------
def test_help_lists_every_command_and_the_exit_codes(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("run", "demo", "replay", "sim"):
        assert f"  {command} " in result.output
    assert "Exit codes: 0 ok" in result.output and "3 venue" in result.output


def test_run_help_explains_every_option(cli):
    result = cli("run", "--help")
    assert result.exit_code == 0
    for flag in ("--data", "--signals", "--context", "--param", "--config", "--speed",
                 "--initial-cash", "--preset", "--session-dir", "--error-policy",
                 "--settle-timeout", "--broker", "--port", "--symbols", "--live", "--quiet"):  # fmt: skip
        assert flag in result.output, flag


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "ml4t_live", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: ml4t-live" in done.stdout and "replay" in done.stdout


def test_unknown_option_is_a_usage_error(cli):
    result = cli("run", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_missing_strategy_file_exits_2_with_a_clear_message(cli, tmp_path):
    result = cli("run", tmp_path / "nope.py:Strat", "--data", demo_bars_path())
    assert result.exit_code == 2
    assert f"strategy file not found: {tmp_path / 'nope.py'}" in result.output


def test_missing_data_and_unknown_params_exit_2(cli, tmp_path):
    assert "no bars to replay" in cli("run", "ml4t_live.examples:DemoMomentum").output
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(), "-p", "fats=3")
    assert result.exit_code == 2
    assert "its parameters: fast=10, slow=30, invested=0.95" in result.output
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", tmp_path / "bars.parquet")
    assert result.exit_code == 2 and "file not found" in result.output


def test_live_is_refused_in_shadow_mode(cli):
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(), "--live")
    assert result.exit_code == 2
    assert "--live needs --broker ib or --broker alpaca" in result.output


def test_a_venue_without_its_entry_point_is_a_config_error():
    with pytest.raises(ConfigError, match="ib venue"):
        entry_point("ib", "no_such_entry_point")
    with pytest.raises(ConfigError, match="unknown venue 'nyse'"):
        entry_point("nyse", "make_broker")


# -- --param and TOML -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fast=5", ("fast", 5)),
        ("rate = 0.25", ("rate", 0.25)),
        ("flag=true", ("flag", True)),
        ("assets=['A', 'B']", ("assets", ["A", "B"])),
        ("name=momentum", ("name", "momentum")),
        ('name="5"', ("name", "5")),
        ("empty=", ("empty", "")),
    ],
)
def test_param_values_are_toml_literals_or_text(text, expected):
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["fast", "=5", "2x=1", "a b=1"])
def test_malformed_params_are_config_errors(text):
    with pytest.raises(ConfigError, match="name=value"):
        parse_param(text)


def test_toml_merge_resolves_paths_and_the_command_line_wins(tmp_path):
    toml = _write(
        tmp_path / "session.toml",
        """
        strategy = "strategies/momo.py:Momo"
        data = "bars.parquet"
        speed = 30
        initial-cash = 5000
        [params]
        fast = 5
        slow = 50
        [backtest]
        commission = { model = "percentage", rate = 0.001 }
        """,
    )
    merged = merge_options(
        {"speed": None, "initial_cash": 7000.0, "params": {"slow": 40}},
        toml,
        ("strategy", "data", "speed", "initial_cash"),
    )
    assert merged["strategy"] == f"{tmp_path}/strategies/momo.py:Momo"
    assert merged["data"] == str(tmp_path / "bars.parquet")
    assert merged["speed"] == 30 and merged["initial_cash"] == 7000.0
    assert merged["params"] == {"fast": 5, "slow": 40}
    config = build_config(None, merged["initial_cash"], merged["backtest"])
    assert config.commission_type is CommissionType.PERCENTAGE
    assert config.commission_rate == 0.001 and config.initial_cash == 7000.0


def test_unknown_toml_key_exits_2(cli, tmp_path):
    toml = _write(tmp_path / "s.toml", 'strategy = "ml4t_live.examples:DemoMomentum"\nspeeed = 3\n')
    result = cli("run", "--config", toml)
    assert result.exit_code == 2
    assert "unknown key 'speeed'" in result.output


def test_run_from_a_toml_file_matches_the_backtest(cli, tmp_path):
    bars = tmp_path / "bars.csv"
    pl.read_parquet(demo_bars_path()).write_csv(bars)  # CSV input too
    toml = _write(
        tmp_path / "session.toml",
        """
        strategy = "ml4t_live.examples:DemoMomentum"
        data = "bars.csv"
        initial_cash = 50000
        no_session = true
        [params]
        fast = 5
        slow = 20
        """,
    )
    result = cli("run", "--config", toml, "-p", "slow=25", "-q")
    assert result.exit_code == 0, result.output
    expected = _backtest(DemoMomentum(fast=5, slow=25), initial_cash=50_000)
    summary = summary_rows(result.output)
    assert summary["fills"] == f"{expected['num_fills']:,}"
    assert summary["final equity"] == f"{expected['final_value']:,.2f}"
    assert summary["session files"] == "(none: recording disabled)"
    assert not (tmp_path / "sessions").exists()


# -- runs -----------------------------------------------------------------------------------
def test_a_strategy_that_raises_exits_1(cli, tmp_path):
    strategy = _write(tmp_path / "boom.py", RAISING)
    result = cli("run", strategy, "--data", demo_bars_path(), "--no-session")
    assert result.exit_code == 1
    assert "strategy error" in result.output and "boom on bar three" in result.output
    assert "ZeroDivisionError" in result.output  # the traceback is shown


def test_error_policy_log_keeps_running(cli, tmp_path):
    strategy = _write(tmp_path / "boom.py", RAISING)
    result = cli("run", f"{strategy}:Boom", "--data", demo_bars_path(), "--error-policy", "log",
                 "--session-dir", tmp_path / "s")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Boom: 780 bars" in result.output
    # the errors it passed over are counted, in the printed summary and in summary.json
    assert summary_rows(result.output)["strategy errors"] == "778"  # every bar from the third
    (session,) = (tmp_path / "s").iterdir()
    assert json.loads((session / "summary.json").read_text())["num_strategy_errors"] == 778


def test_demo_runs_end_to_end_and_prints_the_summary(cli, tmp_path):
    result = cli("demo")
    assert result.exit_code == 0, result.output
    expected = _backtest(DemoMomentum(), initial_cash=100_000)
    assert "DemoMomentum: 780 bars, shadow mode, stopped: end of recorded bars" in result.output
    summary = summary_rows(result.output)
    assert summary["orders"] == f"{expected['num_orders']:,}"
    assert summary["fills"] == f"{expected['num_fills']:,}"
    assert summary["rejections"] == f"{expected['num_rejected_orders']:,}"
    assert summary["final equity"] == f"{expected['final_value']:,.2f}"
    assert summary["return"] == f"{expected['total_return_pct']:+.2f}%"
    (session,) = (tmp_path / "sessions").iterdir()
    assert summary["session files"] == f"sessions/{session.name}"
    for name in ("bars.parquet", "orders.parquet", "fills.parquet", "equity.parquet",
                 "summary.json", "session.log"):  # fmt: skip
        assert (session / name).is_file(), name
    assert "running DemoMomentum in shadow mode" in (session / "session.log").read_text()
    assert "780/780 bars (100%)" in result.output  # line progress when stderr is not a terminal


def test_replay_of_a_recorded_session_gives_the_same_result(cli, tmp_path):
    first = cli("demo", "--session-dir", tmp_path / "runs", "-q")
    assert first.exit_code == 0, first.output
    (session,) = (tmp_path / "runs").iterdir()
    again = cli("replay", session, "ml4t_live.examples:DemoMomentum", "--session-dir",
                tmp_path / "replays", "-q")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert summary_rows(again.output)["final equity"] == summary_rows(first.output)["final equity"]
    assert summary_rows(again.output)["fills"] == summary_rows(first.output)["fills"]
    assert "shadow replay mode" in again.output
    assert len(list((tmp_path / "replays").iterdir())) == 1


def test_sim_without_a_venue_simulator_exits_2(cli):
    result = cli("sim", "nyse")
    assert result.exit_code == 2
    assert "unknown venue 'nyse'" in result.output


def _wait_for_output(stream, text: str, timeout: float) -> str:
    """Read raw bytes from ``stream`` until ``text`` appears (fails after ``timeout`` s)."""
    import selectors

    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while text.encode() not in seen and (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    assert text.encode() in seen, f"{text!r} not seen within {timeout}s: {seen.decode()}"
    return seen.decode()


def test_sigterm_is_an_orderly_stop_with_exit_0(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml4t_live", "run", "ml4t_live.examples:DemoMomentum",
         "--data", str(demo_bars_path()), "--speed", "120", "--session-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )  # fmt: skip
    try:
        _wait_for_output(proc.stderr, "replaying 780 bars at 120x real time", timeout=60)
        proc.send_signal(signal.SIGTERM)
        out, err = (b.decode() for b in proc.communicate(timeout=60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped: terminated (SIGTERM)" in out
    (session,) = tmp_path.iterdir()
    assert json.loads((session / "summary.json").read_text())["stopped_reason"] == "terminated (SIGTERM)"


def test_replay_defaults_to_the_sessions_own_strategy_params_and_cash(cli, tmp_path):
    strategy = _write(tmp_path / "momo.py", "from ml4t_live.examples import DemoMomentum as Momo\n"
                      "class Slow(Momo):\n    pass\n")  # fmt: skip
    first = cli("run", f"{strategy}:Slow", "--data", demo_bars_path(), "-p", "fast=4", "-p",
                "slow=12", "--initial-cash", "25000", "--session-dir", tmp_path / "runs", "-q")  # fmt: skip
    assert first.exit_code == 0, first.output
    (session,) = (tmp_path / "runs").iterdir()
    recorded = json.loads((session / "command.json").read_text())
    assert recorded["strategy"] == f"{strategy}:Slow"
    assert recorded["params"] == {"fast": 4, "slow": 12} and recorded["initial_cash"] == 25000
    expected = _backtest(DemoMomentum(fast=4, slow=12), initial_cash=25_000)
    assert summary_rows(first.output)["final equity"] == f"{expected['final_value']:,.2f}"

    again = cli("replay", session, "--no-session", "-q")
    assert again.exit_code == 0, again.output
    assert summary_rows(again.output)["final equity"] == summary_rows(first.output)["final equity"]
    assert "Slow: 780 bars, shadow replay mode" in again.output
    override = cli("replay", session, "--no-session", "-q", "-p", "slow=30")
    assert summary_rows(override.output)["fills"] == f"{_backtest(DemoMomentum(fast=4, slow=30), initial_cash=25_000)['num_fills']:,}"


def test_replay_of_a_missing_session_exits_2(cli, tmp_path):
    result = cli("replay", tmp_path / "nope", "ml4t_live.examples:DemoMomentum")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_strategy_the_backtest_would_refuse_exits_1(cli, tmp_path):
    strategy = _write(tmp_path / "old.py", """
        from ml4t.backtest import Strategy

        class Old(Strategy):
            def on_before_risk(self, *args):
                pass

            def on_data(self, timestamp, data, context, broker):
                pass
        """)  # fmt: skip
    result = cli("run", strategy, "--data", demo_bars_path(), "--no-session")
    assert result.exit_code == 1, result.output
    assert "Old cannot run" in result.output and "on_before_risk" in result.output


def test_recorded_bars_never_drive_a_venue_broker(cli):
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(), "--broker", "ib")
    assert result.exit_code == 2
    assert "can only drive the shadow broker" in result.output


def test_terminal_progress_bar_draws_and_finishes():
    import io
    from datetime import UTC, datetime

    from rich.console import Console

    from ml4t_live import Progress
    from ml4t_live.cli.ui import Display

    display = Display()
    display.err = Console(file=io.StringIO(), force_terminal=True, width=120)
    callback = display.progress_callback("Demo")
    for i in range(1, 4):
        callback(Progress(i, 3, datetime(2024, 3, 4, 14, 30 + i, tzinfo=UTC), 100_000.0 + i, i, i))
    display.close()
    drawn = display.err.file.getvalue()
    assert "Demo" in drawn and "3/3" in drawn and "2024-03-04 14:33" in drawn and "fills 3" in drawn
    assert Display(quiet=True).progress_callback("x") is None  # --quiet: no progress at all


def test_stop_at_parsing():
    from datetime import UTC, datetime, timedelta, timezone

    from ml4t_live.cli.stopping import parse_stop_at

    now = datetime(2024, 3, 4, 14, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert parse_stop_at("16:05", now) == datetime(2024, 3, 4, 16, 5, tzinfo=now.tzinfo)
    assert parse_stop_at("2024-03-04T21:05:00+00:00", now) == datetime(2024, 3, 4, 21, 5, tzinfo=UTC)
    with pytest.raises(ConfigError, match="already past"):
        parse_stop_at("13:59", now)
    with pytest.raises(ConfigError, match="expects HH:MM"):
        parse_stop_at("4pm", now)


def test_max_bars_and_stop_at_are_orderly_stops(cli):
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(),
                 "--max-bars", "100", "--no-session", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "DemoMomentum: 100 bars, shadow mode, stopped: bar limit reached (100 bars)" in result.output

    from datetime import datetime, timedelta

    soon = (datetime.now().astimezone() + timedelta(seconds=1.5)).isoformat()
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(),
                 "--speed", "60", "--stop-at", soon, "--no-session", "-q")  # 1 s a bar: 13 minutes
    assert result.exit_code == 0, result.output
    assert f"stopped: stop time reached ({soon})" in result.output
    assert int(result.output.split("DemoMomentum: ")[1].split(" bars")[0]) < 10


def test_an_unreachable_venue_exits_3_saying_what_to_check(cli, tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    strategy = _write(tmp_path / "boom.py", RAISING)
    result = cli("run", strategy, "--broker", "ib", "--port", port, "--symbols", "AAPL",
                 "--no-session")  # fmt: skip
    assert result.exit_code == 3, result.output
    assert f"cannot connect to 127.0.0.1:{port}" in result.output
    assert "Is TWS / IB Gateway running with the API enabled" in result.output


def test_retain_bounds_memory_and_the_session_files_keep_everything(cli, tmp_path):
    strategy = _write(tmp_path / "demo.py", "from ml4t_live.examples import DemoMomentum\n")
    result = cli("run", f"{strategy}:DemoMomentum", "--data", demo_bars_path(), "--retain", 5,
                 "--session-dir", tmp_path / "s")  # fmt: skip
    assert result.exit_code == 0, result.output
    (session,) = (tmp_path / "s").iterdir()
    expected = _backtest(DemoMomentum(), initial_cash=100_000)
    assert pl.read_parquet(session / "fills.parquet").height == expected["num_fills"]
    assert summary_rows(result.output)["fills"] == f"{expected['num_fills']:,}"
    assert "keeping the last 5 fills in memory" in result.output


TYPED = """
from ml4t.backtest import Strategy

class Typed(Strategy):
    def __init__(self, lookback: int = 10, rate=0.5, name: str = "x"):
        self.lookback, self.rate, self.name = lookback, rate, name

    def on_data(self, timestamp, data, context, broker):
        assert isinstance(self.lookback, int) and isinstance(self.rate, float)
"""


def test_parameters_are_checked_against_the_constructor_before_anything_starts(cli, tmp_path):
    strategy = _write(tmp_path / "typed.py", TYPED)
    bad = cli("run", f"{strategy}:Typed", "--data", demo_bars_path(), "-p", "lookback=five", "--no-session")
    assert bad.exit_code == 2, bad.output
    assert "Typed parameter lookback expects int (default 10), got 'five'" in bad.output
    good = cli("run", f"{strategy}:Typed", "--data", demo_bars_path(), "-p", "lookback=5", "-p", "rate=1",
               "--no-session")  # fmt: skip
    assert good.exit_code == 0, good.output  # rate=1 became 1.0 (the strategy asserts the types)


def test_bad_cash_and_an_unwritable_session_folder_are_configuration_errors(cli, tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(f'data = "{demo_bars_path()}"\ninitial_cash = "lots"\n')
    cash = cli("run", "ml4t_live.examples:DemoMomentum", "--config", config, "--no-session")
    assert cash.exit_code == 2 and "initial cash must be a number, got 'lots'" in cash.output
    folder = cli("run", "ml4t_live.examples:DemoMomentum", "--data", demo_bars_path(),
                 "--session-dir", "/proc/nope")  # fmt: skip
    assert folder.exit_code == 2, folder.output
    assert "cannot create the session folder under /proc/nope" in folder.output
    assert "Traceback" not in cash.output + folder.output


def test_a_typo_in_the_venue_table_is_an_error_naming_the_key(cli, tmp_path):
    config = tmp_path / "s.toml"
    config.write_text('broker = "ib"\nsymbols = "AAPL"\n[venue]\nprot = 7699\nclient_idd = 3\n')
    result = cli("run", "ml4t_live.examples:DemoMomentum", "--config", config, "--no-session")
    assert result.exit_code == 2, result.output
    assert "unknown key 'prot' in [venue] for ib" in result.output
    assert "(port is not a [venue] key but an option: put it above the first table, or pass --port)" in result.output
    assert "known keys: account, client_id" in result.output
    config.write_text('broker = "ib"\nsymbols = "AAPL"\n[venue]\nclient_idd = 3\n')
    typo = cli("run", "ml4t_live.examples:DemoMomentum", "--config", config, "--no-session")
    assert typo.exit_code == 2 and "(did you mean 'client_id'?)" in typo.output
