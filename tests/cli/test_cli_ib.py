"""The command line against Interactive Brokers: ``sim ib``, ``run --broker ib``, ``demo --venue ib``.

Everything goes through the real ib_async client and the simulated IB Gateway on 127.0.0.1 (step
mode, a few bars). Any ERROR logged by ib_async / eventkit fails the test (``ib_errors``); runs
that must succeed also may not log an ERROR line of their own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from ib_async import IB

from ml4t_live.bridge import LoopThread
from ml4t_live.errors import ConfigError
from ml4t_live.venues.ib.entry import ib_bar_size
from tests.cli.cli_support import N_BARS
from tests.support.cli_output import error_lines, read_until, summary_rows

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test


STRATEGY = """
from ml4t.backtest import Strategy

class MyStrategy(Strategy):
    \"\"\"Buys 10 of each asset on the first bar, sells them on the fourth.\"\"\"

    def __init__(self):
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        for asset in sorted(data):
            if self.bars == 1:
                broker.submit_order(asset, 10)
            elif self.bars == 4:
                broker.submit_order(asset, -10)
"""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def strategy_file(tmp_path) -> Path:
    path = tmp_path / "my_strategy.py"
    path.write_text(textwrap.dedent(STRATEGY))
    return path


def _run_ib(cli, strategy_file, port, *extra):
    return cli("run", f"{strategy_file}:MyStrategy", "--broker", "ib", "--port", port,
               "--symbols", "AAPL,MSFT", "--no-session", *extra)  # fmt: skip


# ----------------------------------------------------------------------------- help, options
def test_help_shows_the_ib_options(cli):
    sim_help = cli("sim", "--help")
    assert sim_help.exit_code == 0
    for text in ("ib (TWS API socket)", "--data", "--port", "--speed", "--host"):
        assert text in sim_help.output, text
    run_help = cli("run", "--help")
    assert run_help.exit_code == 0
    for text in ("--broker", "ib or alpaca", "--port", "--symbols", "--bar-size", "--live",
                 "--confirm-live"):  # fmt: skip
        assert text in run_help.output, text


@pytest.mark.parametrize(
    ("text", "setting"),
    [("1min", "1 min"), ("1 min", "1 min"), ("5min", "5 mins"), ("5 mins", "5 mins"),
     ("15m", "15 mins"), ("30s", "30 secs"), ("5 secs", "5 secs"), ("1h", "1 hour"),
     ("2 hours", "2 hours"), (None, "1 min")],
)  # fmt: skip
def test_command_line_bar_sizes_map_to_ib_settings(text, setting):
    assert ib_bar_size(text) == setting


@pytest.mark.parametrize("text", ["7min", "1d", "1 day", "abc", "0min", "3s", ""])
def test_unknown_bar_sizes_are_config_errors_listing_the_accepted_ones(text):
    with pytest.raises(ConfigError, match=r"accepted: 5s, 10s, .*1min, .*5min, .*1h"):
        ib_bar_size(text)


def test_bad_bar_size_exits_2(cli, strategy_file):
    result = _run_ib(cli, strategy_file, 7497, "--bar-size", "7min")
    assert result.exit_code == 2, result.output
    assert "unsupported --bar-size '7min' for IB; accepted: 5s" in result.output


# ----------------------------------------------------------------------------- sim ib


DUPLICATES = '[[fault]]\nkind = "duplicate_exec_details"\nat_bar = 0\ncount = 2\n'


@pytest.mark.parametrize(
    ("stop", "faults"),
    [(signal.SIGINT, None), (signal.SIGTERM, DUPLICATES)],
    ids=["ctrl-c", "sigterm-with-faults"],
)
def test_sim_ib_serves_ib_async_and_the_run_command_then_stops_cleanly(
    cli, bars, strategy_file, tmp_path, stop, faults
):
    """`ml4t-live sim ib` in its own process: a bare ib_async client connects, then
    `ml4t-live run --broker ib` trades on it, then Ctrl-C / SIGTERM ends it with exit 0.
    With --faults, every execDetails of the first two orders comes twice: still 4 fills."""
    command = [
        sys.executable,
        "-m",
        "ml4t_live",
        "sim",
        "ib",
        "--data",
        str(bars),
        "--port",
        "0",
    ]
    if faults:
        (tmp_path / "faults.toml").write_text(faults)
        command += ["--faults", str(tmp_path / "faults.toml")]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    client = LoopThread("test", "client")
    try:
        m = read_until(proc.stdout, r"listening on 127\.0\.0\.1:(\d+).*\n.*--symbols AAPL,MSFT "
                        r"--bar-size 1min", timeout=20)  # fmt: skip
        port = int(m.group(1))

        async def connect_once() -> list[str]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=7, timeout=5)
            try:
                return ib.managedAccounts()
            finally:
                ib.disconnect()

        client.start()
        assert client.call(connect_once(), timeout=10) == ["DU1234567"]
        client.close()
        run = _run_ib(cli, strategy_file, port, "--bar-size", "1min", "--max-bars", 5)
        assert run.exit_code == 0, run.output
        assert not error_lines(run.output), run.output
        assert "MyStrategy: 5 bars, paper mode" in run.output
        rows = summary_rows(run.output)
        assert (rows["orders"], rows["fills"], rows["rejections"]) == ("4", "4", "0")
        proc.send_signal(stop)
        _out, err = (b.decode() for b in proc.communicate(timeout=20))
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "client 7 connected" in err and "client 2 connected" in err
    assert "stopping the simulated IB Gateway" in err
    assert ("fault duplicate_exec_details" in err) == bool(faults), err
    assert not error_lines(err), err


def test_sim_ib_on_a_port_in_use_exits_2(cli, bars, sims):
    taken = sims(bars).port
    result = cli("sim", "ib", "--data", bars, "--port", taken)
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{taken}" in result.output
    assert "--port 0 takes a free one" in result.output


def test_sim_ib_account_type_is_checked_before_listening(cli, bars):
    result = cli("sim", "ib", "--data", bars, "--port", "0", "--account-type", "portfolio")
    assert result.exit_code == 2, result.output
    assert "account_type must be one of margin, cash, got 'portfolio'" in result.output
    assert "--account-type" in cli("sim", "--help").output


# ----------------------------------------------------------------------------- run --broker ib
def test_run_broker_ib_trades_the_simulated_paper_account_like_shadow_mode(
    cli, bars, strategy_file, sims
):
    sim = sims(bars)
    result = _run_ib(
        cli, strategy_file, sim.port, "--bar-size", "1min", "--max-bars", N_BARS - 1
    )
    assert result.exit_code == 0, result.output
    assert not error_lines(result.output), result.output
    assert "connected to IB account DU1234567 (paper)" in result.output
    assert f"MyStrategy: {N_BARS - 1} bars, paper mode" in result.output
    venue = summary_rows(result.output)
    assert (venue["orders"], venue["fills"], venue["rejections"]) == ("4", "4", "0")
    # the orders reached the gateway through ib_async, tagged with our client order ids
    received = sim.orders_received
    assert len(received) == 4 and all(o.order_ref for o in received)
    assert {a: q for a, (q, _) in sim.account.positions.items() if q} == {}
    # the same strategy on the same bars in shadow mode: the same orders, fills and equity
    shadow = summary_rows(cli("run", f"{strategy_file}:MyStrategy", "--data", bars, "--no-session",
                          "--max-bars", N_BARS - 1).output)  # fmt: skip
    for row in ("orders", "fills", "rejections", "final equity"):
        assert venue[row] == shadow[row], (row, venue, shadow)


def test_live_account_needs_live_and_confirmation(cli, bars, strategy_file, sims):
    sim = sims(bars, account="U1234567")
    plain = _run_ib(cli, strategy_file, sim.port, "--max-bars", 2)
    assert plain.exit_code == 2, plain.output
    assert (
        "configuration error: IB account U1234567 is a LIVE (real-money) account"
        in plain.output
    )
    assert "On the command line: add --live" in plain.output
    unconfirmed = _run_ib(cli, strategy_file, sim.port, "--live", "--max-bars", 2)
    assert unconfirmed.exit_code == 2, unconfirmed.output
    assert (
        "account U1234567 is a LIVE account and there is no terminal to confirm on"
        in unconfirmed.output
    )
    assert sim.orders_received == []  # nothing was ever sent to the live account
    confirmed = _run_ib(
        cli, strategy_file, sim.port, "--live", "--confirm-live", "--max-bars", 2
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert "LIVE trading confirmed on IB account U1234567" in confirmed.output
    assert "MyStrategy: 2 bars, LIVE mode" in confirmed.output


def test_a_session_file_with_a_venue_table_drives_the_ib_run(
    cli, bars, strategy_file, sims, tmp_path
):
    sim = sims(bars)
    config = tmp_path / "session.toml"
    config.write_text(
        textwrap.dedent(f"""
        strategy = "{strategy_file.name}:MyStrategy"
        broker = "ib"
        port = {sim.port}
        symbols = "AAPL,MSFT"
        bar_size = "1 min"
        max_bars = 4
        no_session = true
        [venue]
        client_id = 11
    """)
    )
    result = cli("run", "--config", config)
    assert result.exit_code == 0, result.output
    assert (
        "client 11 connected" in result.output
        and "client 12 connected" in result.output
    )
    # the last bar's orders are settled before the run ends (their fills are counted)
    assert (summary_rows(result.output)["orders"], summary_rows(result.output)["fills"]) == (
        "4",
        "4",
    )
    config.write_text(
        config.read_text().replace("client_id = 11", 'client_id = "eleven"')
    )
    bad = cli("run", "--config", config)
    assert bad.exit_code == 2, bad.output
    assert "[venue] client_id must be an integer, got 'eleven'" in bad.output
    # a fractional one is not read as another client id (it was: 11.5 placed orders as client 11)
    config.write_text(config.read_text().replace('client_id = "eleven"', "client_id = 11.5"))
    bad = cli("run", "--config", config)
    assert bad.exit_code == 2, bad.output
    assert "[venue] client_id must be an integer, got 11.5" in bad.output


# ----------------------------------------------------------------------------- demo --venue ib
def test_demo_venue_ib_reports_what_the_shadow_demo_reports(cli, tmp_path):
    venue = cli("demo", "--venue", "ib", "--session-dir", tmp_path / "ib")
    assert venue.exit_code == 0, venue.output
    assert not error_lines(venue.output), venue.output
    assert "DemoMomentum: 780 bars, paper (ib simulated) mode" in venue.output
    shadow = cli("demo", "--session-dir", tmp_path / "shadow")
    assert shadow.exit_code == 0, shadow.output
    ib_rows, shadow_rows = summary_rows(venue.output), summary_rows(shadow.output)
    assert int(ib_rows["fills"].replace(",", "")) > 0
    for row in ("orders", "fills", "rejections", "final equity", "return"):
        assert ib_rows[row] == shadow_rows[row], (row, ib_rows, shadow_rows)
    # fill by fill: the same bar, asset, side, quantity and price (both sessions recorded)
    key = ["timestamp", "asset", "side", "quantity", "price"]
    fills = [
        pl.read_parquet(next((tmp_path / run).iterdir()) / "fills.parquet")
        .select(key)
        .sort(key)
        for run in ("ib", "shadow")
    ]
    assert fills[0].height == int(ib_rows["fills"].replace(",", ""))
    assert fills[0].to_dicts() == fills[1].to_dicts()


def test_sim_ib_account_option_sets_the_reported_account(bars):
    """`ml4t-live sim ib --account U1234567` rehearses a live account (for the refusal)."""
    command = [sys.executable, "-m", "ml4t_live", "sim", "ib", "--data", str(bars),
               "--port", "0", "--account", "U1234567"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    client = LoopThread("test", "client")
    try:
        port = int(read_until(proc.stdout, r"listening on 127\.0\.0\.1:(\d+).*account U1234567",
                               timeout=20).group(1))  # fmt: skip

        async def accounts() -> list[str]:
            ib = IB()
            await ib.connectAsync("127.0.0.1", port, clientId=9, timeout=5)
            try:
                return ib.managedAccounts()
            finally:
                ib.disconnect()

        client.start()
        assert client.call(accounts(), timeout=10) == ["U1234567"]
        proc.send_signal(signal.SIGINT)
        _out, err = (b.decode() for b in proc.communicate(timeout=20))
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
