"""Parity of a calendar session (``run --calendar XNYS --as-of``) through each simulated venue.

The recorded bars: five minutes before the close of Wed 2024-11-27 (the session before: warm-up,
its orders refused as catch-up) and the last eight minutes of the Black Friday half-day. The
strategy sizes every buy from the cash it sees, so a re-run that traded the warm-up bars would
size every traded-day order differently. The re-run refuses the warm-up orders too: the traded day
compares decision by decision, with no false partial fill and nothing unexplained.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from ml4t_live.reports import parity
from ml4t_live.reports.rerun import run_backtest
from ml4t_live.reports.session_files import SessionData
from ml4t_live.sim.alpaca import SimulatedAlpaca, generate_keys
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV
from tests.support.known_session import only_session

NY = ZoneInfo("America/New_York")
DAYS = [(datetime(2024, 11, 27, 15, 55, tzinfo=NY), 5),  # warm-up: before the session's open
        (datetime(2024, 11, 29, 12, 52, tzinfo=NY), 8)]  # the half-day's last eight minutes  # fmt: skip

STRATEGY = """
from ml4t.backtest import Strategy

class CashSizer(Strategy):
    \"\"\"On even minutes buys AAPL for 30% of the cash it sees; on odd minutes sells what it holds
    (not on the close's bar :59, whose order could only be cancelled at the close).\"\"\"

    def on_data(self, timestamp, data, context, broker):
        price = data["AAPL"]["close"]
        held = broker.get_position("AAPL")
        if timestamp.minute % 2 == 0:
            broker.submit_order("AAPL", int(broker.get_cash() * 0.3 / price))
        elif held is not None and held.quantity > 0 and timestamp.minute != 59:
            broker.submit_order("AAPL", -held.quantity)
"""


@pytest.fixture
def calendar_bars(tmp_path):
    rows, price = [], 100.0
    for start, n in DAYS:
        for i in range(n):
            ts = (start + timedelta(minutes=i)).astimezone(UTC)
            close = round(price + (0.3 if i % 3 else -0.2), 2)
            rows.append({"timestamp": ts, "asset": "AAPL", "open": price, "high": max(price, close) + 0.1,
                         "low": min(price, close) - 0.1, "close": close, "volume": 1e6})  # fmt: skip
            price = close
    path = tmp_path / "calendar_bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def _venue(name: str, bars, monkeypatch) -> tuple[object, list]:
    if name == "ib":
        sim = SimulatedIBGateway(bars)
        sim.start()
        return sim, ["--broker", "ib", "--port", sim.port]
    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    sim = SimulatedAlpaca(bars, key_id=key_id, secret_key=secret, rate_limit_per_minute=None)
    sim.start()
    return sim, ["--broker", "alpaca", "--host", sim.base_url]


@pytest.mark.parametrize("venue", ["ib", "alpaca"])
def test_a_calendar_rehearsal_compares_the_traded_day_not_the_warm_up(venue, cli, calendar_bars, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    target = tmp_path / "cash_sizer.py"
    target.write_text(textwrap.dedent(STRATEGY))
    sim, venue_args = _venue(venue, calendar_bars, monkeypatch)
    try:
        run = cli("run", f"{target}:CashSizer", *venue_args, "--symbols", "AAPL",
                  "--bar-size", "1min", "--calendar", "XNYS", "--as-of", "2024-11-29",
                  "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["num_rejected_catch_up"] == 2  # the warm-up buys at 15:56 and 15:58, never sent
    result = parity(folder)
    counts = result.counts()
    assert "unexplained" not in counts and "partial_fill" not in counts, result.headline()
    assert "knock_on" not in counts and "catch_up" not in counts, result.headline()
    # the warm-up orders are refused in both runs and set aside; the traded day's 7 decisions
    # (4 buys sized from the cash, 3 sells) compare one to one
    assert result.catch_up_refused == 2 and result.decisions == 7, result.headline()
    assert result.identical == result.decisions and result.score == 1.0
    assert "Not counted: 2 order(s) made on warm-up bars" in result.headline()
    assert sum(result.attribution.values()) + result.residual == pytest.approx(result.gap, abs=1e-9)
    assert abs(result.residual) < 1e-6 and abs(result.gap) < 1e-6


BRACKETS = """
from ml4t.backtest import Strategy

class Brackets(Strategy):
    \"\"\"A bracket (entry, take-profit, stop-loss) for 1 AAPL on every bar.\"\"\"

    def on_data(self, timestamp, data, context, broker):
        price = data["AAPL"]["close"]
        broker.submit_bracket("AAPL", 1, take_profit=price + 50, stop_loss=price - 50)
"""


def test_the_rerun_refuses_brackets_on_warm_up_bars_and_places_them_after_the_open(calendar_bars, tmp_path):
    """As a venue broker on a catch-up bar: the entry and both exits are refused (code catch_up);
    from the open on, the re-run's Broker takes the brackets."""
    target = tmp_path / "brackets.py"
    target.write_text(textwrap.dedent(BRACKETS))
    bars = pl.read_parquet(calendar_bars)
    opened = datetime(2024, 11, 29, 9, 30, tzinfo=NY).astimezone(UTC)
    session = SessionData(path=tmp_path, bars=bars, signals=None, context=None, orders=pl.DataFrame(),
                          fills=pl.DataFrame(), equity=pl.DataFrame(), summary={}, external=[],
                          command={"strategy": f"{target}:Brackets", "initial_cash": 100_000.0,
                                   "session_plan": {"open": opened.isoformat()}})  # fmt: skip
    orders = run_backtest(session).orders
    warm = orders.filter(pl.col("created_at") < opened)
    assert warm.height == 3 * 5 and set(warm["status"]) == {"rejected"}
    assert set(warm["rejection_code"]) == {"catch_up"}
    assert sorted(warm["order_type"].unique()) == ["limit", "market", "stop"]
    traded = orders.filter(pl.col("created_at") >= opened)
    assert traded.height == 3 * 8 and "rejected" not in set(traded["status"])
