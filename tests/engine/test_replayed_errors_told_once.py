"""A warm restart re-lives the journaled bars; a hook that raised there (error policy 'log')
raises again. That error was logged, counted and told (``on_strategy_error``: the CLI's alerts)
by the run that journaled it: the restart does not count or tell it again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n: int, start: int = 0) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + i}) for i in range(start, n)]


class FailsOnTheThirdBar(Strategy):
    def __init__(self) -> None:
        self.seen = 0

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen in (3, 7):
            raise KeyError("typo")
        broker.submit_order("AAA", 1)


def run(events, state_dir, told):
    strategy = FailsOnTheThirdBar()
    result = LiveEngine(strategy, ShadowBroker(BacktestConfig(), state_dir=state_dir), ListFeed(events),
                        session_dir=False, strategy_id="t1", error_policy="log",
                        on_strategy_error=told.append).run()  # fmt: skip
    return strategy, result


def test_a_warm_restart_does_not_count_or_tell_a_replayed_error_again(tmp_path):
    told: list[str] = []
    _, first = run(bars(5), tmp_path, told)
    assert first.metrics["num_strategy_errors"] == 1 and len(told) == 1 and "at 2024-01-02 14:32" in told[0]
    told.clear()
    strategy, again = run(bars(8, start=5), tmp_path, told)
    assert strategy.seen == 8  # bars 1-5 re-lived (bar 3 raised again), 6-8 new (bar 7 raised)
    assert again.metrics["num_strategy_errors"] == 1
    assert len(told) == 1 and "at 2024-01-02 14:36" in told[0], told
