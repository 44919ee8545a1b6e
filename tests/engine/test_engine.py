"""LiveEngine against in-memory fakes (no threads): barrier, failures, stop, policies, feeds."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy
from ml4t.backtest.engine import HistoricalStrategyCompatibilityError

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.bridge import LoopThread
from ml4t_live.errors import FeedStalled, StrategyError
from ml4t_live.events import FeedDisconnected, FeedHeartbeat, FeedReconnected
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n: int, asset: str = "AAA", price: float = 100.0):
    return [bar(T0 + timedelta(minutes=i), {asset: price + i}) for i in range(n)]


@pytest.fixture
def logs():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="DEBUG")
    yield lines
    logger.remove(sink)


class Recorder(Strategy):
    """Records every hook call; buys 10 on the first bar; optional failure on a given bar."""

    def __init__(self, fail_on: int | None = None, buy_on: int = 1) -> None:
        self.calls: list[tuple] = []
        self.fail_on = fail_on
        self.buy_on = buy_on
        self.seen: list[tuple] = []
        self.n = 0

    def on_start(self, broker):
        self.calls.append(("on_start",))

    def on_prepare(self, broker, config):
        self.calls.append(("on_prepare", type(config).__name__))

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        position = broker.get_position("AAA")
        self.seen.append((self.n, position.quantity if position else 0, len(broker.get_pending_orders())))
        self.calls.append(("on_data", timestamp))
        if self.n == self.fail_on:
            raise ValueError(f"bad bar {self.n}")
        if self.n == self.buy_on:
            self.order = broker.submit_order("AAA", 10)

    def on_end(self, broker):
        self.calls.append(("on_end",))


def venue_engine(strategy, venue, feed, **kw):
    return LiveEngine(strategy, VenueBroker(venue), feed, session_dir=False, **kw)


def test_hooks_run_in_the_backtest_order_with_a_real_config():
    strategy = Recorder()
    result = venue_engine(strategy, FakeVenue(), ListFeed(bars(3))).run()
    names = [c[0] for c in strategy.calls]
    assert names == ["on_start", "on_prepare", "on_data", "on_data", "on_data", "on_end"]
    assert strategy.calls[1] == ("on_prepare", "BacktestConfig")
    assert [c[1] for c in strategy.calls if c[0] == "on_data"] == [b.timestamp for b in bars(3)]
    assert result.bars == 3 and result.stopped_reason == "script done"


def test_barrier_waits_for_the_in_flight_fill_before_the_next_bar():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Recorder()
    venue_engine(strategy, venue, ListFeed(bars(2)), settle_timeout=2.0).run()
    # bar 2 sees the position the backtest would show: filled, nothing pending
    assert strategy.seen[1] == (2, 10, 0)
    assert venue.events.waits and venue.events.waits[0] == pytest.approx(2.0, abs=0.1)
    assert strategy.order.status is OrderStatus.FILLED


def test_barrier_gives_up_after_the_settle_time_with_a_warning(logs):
    venue = FakeVenue(fill_on_wait=False)
    strategy = Recorder()
    venue_engine(strategy, venue, ListFeed(bars(2)), settle_timeout=0.2).run()
    assert strategy.seen[1] == (2, 0, 1)  # still pending: the strategy sees that honestly
    assert any("fill barrier: 1 order(s) still in flight after 0.2s" in m for m in logs)
    assert 0 < venue.events.waits[0] <= 0.2


def test_on_end_runs_when_on_data_fails_and_the_error_reraises():
    strategy = Recorder(fail_on=2)
    venue = FakeVenue()
    with pytest.raises(StrategyError, match="on_data raised ValueError") as info:
        venue_engine(strategy, venue, ListFeed(bars(4)), error_policy="raise").run()
    assert isinstance(info.value.__cause__, ValueError)
    assert [c[0] for c in strategy.calls][-1] == "on_end"
    assert venue.closed, "the venue must be closed after a failure"


def test_shadow_failure_rolls_back_the_failed_callbacks_orders_like_the_backtest():
    class BuyThenFail(Strategy):
        def on_data(self, timestamp, data, context, broker):
            broker.submit_order("AAA", 5)
            raise RuntimeError("after submitting")

        def on_end(self, broker):
            self.pending = len(broker.get_pending_orders())

    strategy = BuyThenFail()
    with pytest.raises(StrategyError):
        LiveEngine(strategy, ShadowBroker(BacktestConfig()), ListFeed(bars(2)), session_dir=False).run()
    assert strategy.pending == 0


def test_error_policy_log_continues_with_the_next_bar(logs):
    strategy = Recorder(fail_on=2)
    result = venue_engine(strategy, FakeVenue(), ListFeed(bars(4)), error_policy="log").run()
    assert result.bars == 4
    assert [c[0] for c in strategy.calls].count("on_data") == 4
    assert any("error policy 'log'" in m for m in logs)


def test_default_error_policy_is_raise_for_shadow_and_log_for_venues():
    assert LiveEngine(Recorder(), ShadowBroker(), ListFeed([])).error_policy == "raise"
    assert LiveEngine(Recorder(), VenueBroker(FakeVenue()), ListFeed([])).error_policy == "log"


def test_stop_from_another_thread_ends_the_run_after_the_current_bar():
    helper = LoopThread("test", "stopper").start()
    try:

        class StopsAtThree(Recorder):
            def on_data(self, timestamp, data, context, broker):
                super().on_data(timestamp, data, context, broker)
                if self.n == 3:
                    helper.call(lambda: engine.stop("operator asked"), timeout=5)

        strategy = StopsAtThree()
        engine = venue_engine(strategy, FakeVenue(), ListFeed(bars(10)))
        result = engine.run()
    finally:
        helper.close()
    assert result.bars == 3 and result.stopped_reason == "operator asked"
    assert strategy.calls[-1] == ("on_end",)


def test_ctrl_c_in_the_main_thread_is_an_orderly_stop():
    class InterruptsAtTwo(Recorder):
        def on_data(self, timestamp, data, context, broker):
            super().on_data(timestamp, data, context, broker)
            if self.n == 2:
                signal.raise_signal(signal.SIGINT)

    strategy = InterruptsAtTwo()
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background (nohup, &)
    result = venue_engine(strategy, FakeVenue(), ListFeed(bars(5))).run()
    assert result.bars == 2 and "Ctrl-C" in result.stopped_reason
    assert strategy.calls[-1] == ("on_end",)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_a_feed_that_ends_finishes_the_run():
    feed = ListFeed(bars(2))
    result = venue_engine(Recorder(), FakeVenue(), feed).run()
    assert result.stopped_reason == "script done" and feed.closed


def test_a_stalled_feed_raises_a_clear_error_instead_of_hanging():
    strategy = Recorder()
    feed = ListFeed(bars(1), stall=True)
    with pytest.raises(FeedStalled, match="no bar and no heartbeat for 0.6s"):
        venue_engine(strategy, FakeVenue(), feed, heartbeat_timeout=0.6).run()
    assert strategy.calls[-1] == ("on_end",)


def test_heartbeats_and_reconnects_keep_the_run_alive(logs):
    events = [bars(1)[0], FeedHeartbeat(T0), FeedDisconnected("fake", "socket closed"),
              FeedReconnected("fake", 2), bars(2)[1]]  # fmt: skip
    result = venue_engine(Recorder(), FakeVenue(), ListFeed(events)).run()
    assert result.bars == 2
    assert any("disconnected: socket closed" in m for m in logs)


def test_strategy_validation_matches_the_backtest():
    class Old(Recorder):
        def on_before_risk(self, *args):
            pass

    with pytest.raises(HistoricalStrategyCompatibilityError):
        LiveEngine(Old(), ShadowBroker(), ListFeed([]))


def test_an_engine_runs_once():
    engine = venue_engine(Recorder(), FakeVenue(), ListFeed(bars(1)))
    engine.run()
    with pytest.raises(RuntimeError, match="single-use"):
        engine.run()


def test_a_venue_runs_return_is_measured_from_the_accounts_equity_at_connect():
    venue = FakeVenue(cash=50_000.0)
    result = venue_engine(Recorder(), venue, ListFeed(bars(3))).run()
    assert result.metrics["initial_cash"] == 50_000.0
    assert result.metrics["total_return"] == pytest.approx(result.metrics["final_value"] / 50_000.0 - 1)


def test_the_engine_reports_idle_time_on_empty_waits_and_heartbeats():
    """What lets the session files spill after the day's last bar (RecordKeeper.idle)."""
    from datetime import UTC, datetime

    from ml4t.backtest import Strategy

    from ml4t_live import LiveEngine, ShadowBroker
    from ml4t_live.events import FeedEnded, FeedHeartbeat
    from tests.support.fakes import ListFeed

    class Quiet(Strategy):
        def on_data(self, timestamp, data, context, broker):
            pass

    now = datetime(2024, 3, 1, tzinfo=UTC)
    feed = ListFeed([FeedHeartbeat(now), FeedHeartbeat(now), FeedEnded("done")])
    engine = LiveEngine(Quiet(), ShadowBroker(), feed, session_dir=False)
    calls: list[int] = []
    assert list(engine._bars(lambda: calls.append(1))) == []
    assert len(calls) == 2
