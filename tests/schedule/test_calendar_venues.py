"""``ml4t-live run --calendar XNYS`` through each simulated venue (real ib_async / alpaca-py clients).

The recorded days: the last five minutes before 15:55 on Wed 2024-11-27 (the session before),
the last ten minutes of the Black Friday half-day (Fri 2024-11-29, close 13:00) and the first five
of Mon 2024-12-02. ``--as-of`` rehearses a moment of Nov 29: the session clock follows the
replayed bars and never waits, so a whole day takes a second or two. The calendar decides
everything: Nov 27's bars are warm-up (before the open), and the run ends at Nov 29's early close
although the simulator has Dec 2's bars to give.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from ml4t_live.cli import app
from ml4t_live.cli.app import RUN_KEYS
from ml4t_live.cli.options import merge_options
from ml4t_live.cli.runner import run_command
from ml4t_live.cli.ui import Display
from ml4t_live.errors import ConfigError
from ml4t_live.schedule import ManualClock
from ml4t_live.sim.alpaca import SimulatedAlpaca, generate_keys
from ml4t_live.sim.bars import load_bars
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV

NY = ZoneInfo("America/New_York")
DAYS = [(datetime(2024, 11, 27, 15, 50, tzinfo=NY), 5),  # warm-up: before the session's open
        (datetime(2024, 11, 29, 12, 50, tzinfo=NY), 10),  # the half-day's last ten minutes
        (datetime(2024, 12, 2, 9, 30, tzinfo=NY), 5)]  # the next session: never reached  # fmt: skip

STRATEGY = """
from ml4t.backtest import OrderStatus, OrderType, Strategy

class DayTrader(Strategy):
    \"\"\"Buys 1 AAPL on every bar but the minute :59; keeps one far limit buy resting.\"\"\"

    def __init__(self):
        self.resting = None

    def on_data(self, timestamp, data, context, broker):
        if timestamp.minute != 59:
            broker.submit_order("AAPL", 1)
        if self.resting is None or self.resting.status is OrderStatus.REJECTED:
            self.resting = broker.submit_order("AAPL", 1, order_type=OrderType.LIMIT, limit_price=1.0)
"""


@pytest.fixture
def bars(tmp_path) -> Path:
    rows, price = [], 100.0
    for start, n in DAYS:
        for i in range(n):
            ts = (start + timedelta(minutes=i)).astimezone(UTC)
            close = round(price + (0.2 if i % 2 else -0.1), 2)
            rows.append({"timestamp": ts, "asset": "AAPL", "open": price, "high": max(price, close) + 0.1,
                         "low": min(price, close) - 0.1, "close": close, "volume": 1000.0})  # fmt: skip
            price = close
    path = tmp_path / "bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def strategy(tmp_path) -> str:
    path = tmp_path / "day_trader.py"
    path.write_text(textwrap.dedent(STRATEGY))
    return f"{path}:DayTrader"


class Venue:
    """A simulated venue (step mode) and the run options that point at it."""

    def __init__(self, name: str, bars: Path, monkeypatch, **sim) -> None:
        self.name = name
        if name == "ib":
            self.sim = SimulatedIBGateway(bars, **sim)
            self.sim.start()
            self.args = ["--broker", "ib", "--port", self.sim.port]
        else:
            key_id, secret = generate_keys()
            monkeypatch.setenv(KEY_ENV, key_id)
            monkeypatch.setenv(SECRET_ENV, secret)
            self.sim = SimulatedAlpaca(load_bars(bars), key_id=key_id, secret_key=secret, rate_limit_per_minute=None,
                                       **sim)  # fmt: skip
            self.sim.start()
            self.args = ["--broker", "alpaca", "--host", self.sim.base_url]

    def position(self, asset: str) -> float:
        positions = self.sim.account.positions if self.name == "ib" else self.sim.account()["positions"]
        held = positions.get(asset)
        return 0.0 if held is None else float(held[0])

    def close(self) -> None:
        self.sim.close()


@pytest.fixture(params=["ib", "alpaca"])
def venue(request, bars, monkeypatch):
    v = Venue(request.param, bars, monkeypatch)
    yield v
    v.close()


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def run_day(cli, strategy, venue, tmp_path, *extra):
    result = cli("run", strategy, *venue.args, "--symbols", "AAPL", "--bar-size", "1min", "--calendar", "XNYS",
                 "--session-dir", tmp_path / "runs", *extra)  # fmt: skip
    folders = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    summary = json.loads((folders[0] / "summary.json").read_text()) if folders else {}
    return result, summary


def test_a_day_from_before_the_open_to_the_early_close_ends_by_itself(cli, strategy, venue, tmp_path):
    """One command, started 'at midnight' of the half-day: waits (no sleeping), connects, warms up
    on the previous session's bars (never traded), trades, ends at 13:00, cancels, exit 0."""
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-11-29")
    assert result.exit_code == 0, result.output
    assert "connecting at 09:15 EST; the run ends at 13:00 EST (end of day: cancel)" in result.output
    assert "(early close)" in result.output
    assert "DayTrader: 15 bars, paper mode, stopped: session end 13:00 EST (XNYS)" in result.output
    assert summary["num_rejected_orders"] == 10  # 5 warm-up bars x (market + limit): catch-up, never sent
    (folder,) = (tmp_path / "runs").iterdir()
    plan = json.loads((folder / "command.json").read_text())["session_plan"]
    assert plan == {"calendar": "XNYS", "date": "2024-11-29", "open": "2024-11-29T14:30:00+00:00",
                    "close": "2024-11-29T18:00:00+00:00", "early_close": True, "end": "2024-11-29T18:00:00+00:00",
                    "end_of_day": "cancel", "started": "2024-11-29T05:00:00+00:00", "phase": "wait"}  # fmt: skip
    assert venue.position("AAPL") == 9  # 12:50 ... 12:58, each filled at the next bar's open
    assert summary["left_at_venue"] == [] and summary["num_open_orders"] == 0  # the limit was cancelled


def test_end_of_day_hold_leaves_the_resting_order_working(cli, strategy, venue, tmp_path):
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-11-29", "--end-of-day", "hold")
    assert result.exit_code == 0, result.output
    assert len(summary["left_at_venue"]) == 1 and venue.position("AAPL") == 9


def test_end_of_day_flatten_ends_five_minutes_early_and_leaves_nothing(cli, strategy, venue, tmp_path):
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-11-29", "--end-of-day", "flatten")
    assert result.exit_code == 0, result.output
    assert "stopped: session end 12:55 EST (XNYS)" in result.output
    assert "flatten (end of day): 1 closing order(s): sell 5 AAPL" in result.output and "end of day: flat" in result.output
    assert venue.position("AAPL") == 0
    assert summary["left_at_venue"] == [] and summary["num_open_orders"] == 0
    # the next session (Dec 2, its first five minutes recorded): a warm restart from the journal,
    # whose end-of-day orders are the runtime's, not decisions the strategy must repeat
    (tmp_path / "runs").rename(tmp_path / "day1")
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-12-02", "--close-offset", "-385min",
                              "--settle-timeout", 1)  # its last order has no next bar to fill on
    assert result.exit_code == 0, result.output
    assert "warm restart done" in result.output and "divergence" not in result.output
    assert "stopped: session end 09:35 EST (XNYS)" in result.output
    assert venue.position("AAPL") == 4  # 09:30 ... 09:33; the bars of Nov 29 after 12:55 were warm-up


def test_a_mid_session_start_trades_only_from_its_start(cli, strategy, venue, tmp_path):
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-11-29T12:55:00-05:00")
    assert result.exit_code == 0, result.output
    assert "in session, connecting now" in result.output
    # the bars that ended before 12:55 are history (catch-up): 5 of Nov 27, 12:50 ... 12:53 of Nov 29
    assert summary["num_rejected_orders"] == 18
    assert venue.position("AAPL") == 5  # 12:54 ... 12:58


@pytest.mark.parametrize(("as_of", "why"), [("2024-11-28", "closed on Thu 2024-11-28 (holiday: Thanksgiving)"),
                                            ("2024-11-29T13:30:00-05:00", "over at 13:00 EST, it is 13:30 EST")])  # fmt: skip
def test_a_closed_day_or_after_the_close_exits_4_without_connecting(cli, strategy, venue, tmp_path, as_of, why):
    venue.close()  # nothing listens any more: a connection attempt would fail (exit 3)
    result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", as_of)
    assert result.exit_code == 4, result.output
    assert why in result.output and "nothing to do" in result.output and not summary


def test_a_date_the_calendar_does_not_know_exits_2(cli, strategy, tmp_path):
    result = cli("run", strategy, "--broker", "ib", "--port", 9, "--symbols", "AAPL", "--calendar", "XNYS",
                 "--as-of", "2100-01-04")  # fmt: skip
    assert result.exit_code == 2 and "XNYS does not know 2100-01-04" in result.output


def test_a_clock_far_off_the_venues_stops_before_the_first_live_bar(strategy, venue, tmp_path):
    """This machine's clock (frozen at 12:00 on Nov 29) against the venue's: a ConfigError before the
    strategy sees a live bar, nothing reached the venue. Alpaca's clock is read when the feed starts
    (before the open); IB's time comes from the bars it sends in real time: Nov 27's 15:50, 15:51
    and 15:52 look two days old, which is lateness at most twice, and a clock ahead the third
    time."""
    o = merge_options({"strategy": strategy, "broker": venue.name, "symbols": "AAPL", "no_session": True,
                       "calendar": "XNYS", "bar_size": "1min",
                       **({"port": venue.sim.port} if venue.name == "ib" else {"host": venue.sim.base_url}),
                       "params": {}}, None, RUN_KEYS)  # fmt: skip
    display = Display(quiet=True)
    try:
        evidence = r"\+.*s off the venue's \(a live bar that ended 2024-11-27T20:53" if venue.name == "ib" else (
            r"off the venue's \(the venue's clock at connect")  # fmt: skip
        with pytest.raises(ConfigError, match=r"this machine's clock is .*" + evidence):
            run_command(o, display, clock=ManualClock(datetime(2024, 11, 29, 12, 0, tzinfo=NY)))
    finally:
        display.close()
    received = venue.sim.orders_received if venue.name == "ib" else venue.sim.orders_received()
    assert received == [] and venue.position("AAPL") == 0


def test_the_session_file_holds_the_calendar_settings(cli, strategy, venue, tmp_path):
    """calendar = "XNYS" in the file, a TOML date for as_of, end_of_day and the clock bound."""
    where = f"port = {venue.sim.port}" if venue.name == "ib" else f'[venue]\nendpoint = "{venue.sim.base_url}"'
    config = tmp_path / "session.toml"
    config.write_text(textwrap.dedent(f"""\
        strategy = "{strategy}"
        broker = "{venue.name}"
        symbols = "AAPL"
        bar_size = "1min"
        session_dir = "runs"
        calendar = "XNYS"
        as_of = 2024-11-29
        end_of_day = "hold"
        connect_before = "30min"
        max_clock_skew = "30s"
        """) + where + "\n")  # fmt: skip
    result = cli("run", "--config", config)
    assert result.exit_code == 0, result.output
    assert "connecting at 09:00 EST; the run ends at 13:00 EST (end of day: hold)" in result.output
    assert venue.position("AAPL") == 9


@pytest.mark.parametrize("name", ["ib", "alpaca"])
def test_warm_up_from_the_venues_history_never_trades(cli, strategy, bars, monkeypatch, tmp_path, name):
    """The simulator holds Nov 27's bars as history only (its replay starts at Nov 29 12:50);
    [venue] warmup_bars = 3 shows the strategy the last three before its first live bar, as
    catch-up bars: seen, their orders refused, never sent."""
    venue = Venue(name, bars, monkeypatch, history=5)
    try:
        config = tmp_path / "warmup.toml"
        config.write_text("[venue]\nwarmup_bars = 3\n")
        result, summary = run_day(cli, strategy, venue, tmp_path, "--as-of", "2024-11-29", "--config", config)
        assert result.exit_code == 0, result.output
        assert "DayTrader: 13 bars, paper mode, stopped: session end 13:00 EST (XNYS)" in result.output
        assert summary["num_rejected_orders"] == 6  # 3 history bars x (market + limit)
        assert venue.position("AAPL") == 9
    finally:
        venue.close()
