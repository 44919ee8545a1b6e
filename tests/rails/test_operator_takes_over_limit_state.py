"""An operator's ``halt --reducing`` / ``halt`` given while a limit already holds that state pins it:
it lifts only on ``resume``, never by itself at the next trading day."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
DAY1 = [100.0, 100.0, 90.0, 90.0, 90.0]


def operator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True, text=True, timeout=60, check=False)


class LoseThenAskTheDesk(Strategy):
    """Buys 100 on bar 1; on bar 4 (REDUCING by the daily loss) the desk says ``halt --reducing``;
    from bar 5 on it tries a buy of 10 each bar."""

    def __init__(self, sid: str, *where: str) -> None:
        self.sid, self.where, self.n, self.buys, self.answer = sid, where, 0, [], None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n == 4:
            self.answer = operator("halt", "--reducing", "--strategy-id", self.sid, "--reason", "desk: until I resume",
                                   *self.where)
        if self.n >= 5:
            self.buys.append(broker.submit_order("AAA", 10))


def _frame() -> pl.DataFrame:
    times = [T0 + timedelta(minutes=i) for i in range(len(DAY1))] + [T0 + timedelta(days=1, minutes=i) for i in range(3)]
    prices = DAY1 + [90.0] * 3
    return pl.DataFrame([{"timestamp": t, "asset": "AAA", "open": p, "high": p, "low": p, "close": p,
                          "volume": 1e6} for t, p in zip(times, prices, strict=True)])  # fmt: skip


def test_the_operators_reducing_over_a_daily_loss_does_not_lift_at_the_next_day_in_shadow(tmp_path):
    strategy = LoseThenAskTheDesk("desk", "--state-dir", str(tmp_path))
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0), risk={"max_daily_loss": 500}, state_dir=tmp_path)
    result = LiveEngine(strategy, shadow, ReplayFeed(_frame()), session_dir=False, strategy_id="desk").run()
    assert strategy.answer.returncode == 0, strategy.answer.stderr
    assert [o.rejection_code for o in strategy.buys] == ["reducing"] * 4  # day 2 too: the desk's REDUCING stands
    assert "desk: until I resume" in strategy.buys[-1].rejection_reason
    assert result.metrics["trading_state"] == "REDUCING"


def test_the_operators_reducing_over_a_daily_loss_does_not_lift_at_the_next_day_at_a_venue():
    strategy = LoseThenAskTheDesk("desk")
    bars = [bar(T0 + timedelta(minutes=i), {"AAA": p}) for i, p in enumerate(DAY1)]
    bars += [bar(T0 + timedelta(days=1, minutes=i), {"AAA": 90.0}) for i in range(3)]
    broker = VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="desk", risk={"max_daily_loss": 500})
    result = LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.5).run()
    assert strategy.answer.returncode == 0, strategy.answer.stderr
    assert all(o.status is OrderStatus.REJECTED and o.rejection_code == "reducing" for o in strategy.buys)
    assert "desk: until I resume" in strategy.buys[-1].rejection_reason
    assert result.metrics["trading_state"] == "REDUCING"
