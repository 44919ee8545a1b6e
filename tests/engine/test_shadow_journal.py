"""A shadow run's journal: warm restart, divergence, starting afresh, the operator's halt, the lock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from ml4t.backtest import OrderStatus, Strategy

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker, shadow_journal
from ml4t_live.errors import JournalLocked, ReconciliationError, StrategyError
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.journal.signal import signal_path
from tests.support.fakes import ListFeed
from tests.support.market import make_prices
from tests.support.shadow_runs import (
    EveryThird,
    Halted,
    config,
    flat_bars,
    live_bars,
    run_live,
)

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def fills_of(result) -> list[tuple]:
    return [(f.order_id, f.asset, f.quantity, round(f.price, 6)) for f in result.fills]


def run(strategy, prices, state_dir, **kwargs):
    broker = ShadowBroker(config(), state_dir=state_dir, **kwargs)
    return LiveEngine(strategy, broker, ReplayFeed(prices), session_dir=False, strategy_id="s1").run()


def test_a_shadow_run_on_live_bars_that_failed_restarts_warm_and_ends_as_an_uninterrupted_run(tmp_path):
    whole = LiveEngine(EveryThird(), ShadowBroker(config()), ListFeed(live_bars(40)), session_dir=False).run()
    with pytest.raises(StrategyError):
        run_live(EveryThird(fail_at=25), live_bars(40), tmp_path)
    journal = read_only(journal_path(tmp_path, "shadow", "list", "l1"))
    try:
        assert journal.bars == 25 and not journal.meta("finished")
    finally:
        journal.close()
    strategy = EveryThird()
    # the feed goes on from bar 26 (bars 1-25 happened before the failure): those come from the journal
    again = run_live(strategy, live_bars(40, start=25), tmp_path)
    assert strategy.seen == 40  # its state rebuilt: 25 bars replayed, 15 new
    assert fills_of(again) == fills_of(whole)
    assert again.metrics["final_value"] == pytest.approx(whole.metrics["final_value"])


def test_a_replay_starts_afresh_after_any_end_it_reached(tmp_path):
    prices = make_prices(40, ["AAA"])
    first = EveryThird()
    run(first, prices, tmp_path)
    second = EveryThird()
    run(second, prices, tmp_path)  # the first ended: a new run, not a restart
    assert first.seen == second.seen == 40
    with pytest.raises(StrategyError):
        run(EveryThird(fail_at=10), prices, tmp_path)
    fixed = EveryThird(size=12)  # the research loop: the strategy edited after its error
    run(fixed, prices, tmp_path)
    assert fixed.seen == 40
    (path,) = tmp_path.glob("shadow-replay.*-s1.journal")  # a recorded source's own journal
    journal = read_only(path)
    try:
        assert journal.bars == 40 and journal.meta("finished")
        assert "40 bars" in journal.meta("source")
    finally:
        journal.close()


def test_each_recorded_source_has_its_own_journal_so_two_replays_of_one_strategy_run_at_once(tmp_path):
    one, other = make_prices(40, ["AAA"]), make_prices(30, ["AAA"], seed=8)
    holding = ShadowBroker(config(), state_dir=tmp_path)  # a replay of `one` in progress (holds its lock)
    holding.strategy_id = "s1"
    holding.use_feed(ReplayFeed(one))
    holding.connect(config())
    try:
        strategy = EveryThird()
        run(strategy, other, tmp_path)
        assert strategy.seen == 30
        with pytest.raises(JournalLocked, match="another process"):
            run(EveryThird(), one, tmp_path)  # the same source: the same journal, refused
    finally:
        holding.close()
    assert len(list(tmp_path.glob("shadow-replay.*-s1.journal"))) == 2


def test_a_strategy_that_decides_differently_after_a_restart_fails_closed(tmp_path):
    with pytest.raises(StrategyError):
        run_live(EveryThird(fail_at=30), live_bars(30), tmp_path)
    with pytest.raises(ReconciliationError) as caught:
        run_live(EveryThird(size=11), live_bars(60, start=30), tmp_path)
    message = str(caught.value)
    assert "did not repeat its journaled decisions" in message and "bar 3: the strategy made submit" in message
    assert "--on-divergence continue" in message
    relaxed = EveryThird(size=11)
    run_live(relaxed, live_bars(60, start=30), tmp_path, on_divergence="continue")
    assert relaxed.seen == 60


def test_the_halt_is_read_at_the_next_bar_because_the_command_signals_it(tmp_path, monkeypatch):
    """A replay asks the journal at a bar only when the operator's command signalled, or after
    its own commits (every COMMIT_SECONDS): with no commit during the run, the signal alone
    brings the halt."""
    monkeypatch.setattr(shadow_journal, "COMMIT_SECONDS", 3600.0)
    strategy = Halted(tmp_path)
    LiveEngine(strategy, ShadowBroker(config(), state_dir=tmp_path), ListFeed(flat_bars(4)), session_dir=False,
               strategy_id="h1").run()  # fmt: skip
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    assert [o.status for o in strategy.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED] + [OrderStatus.REJECTED] * 2


class WritesTheStateItself(Strategy):
    """Bar 2 writes HALTED into the journal with a plain SQLite connection (a writer that
    knows nothing of the signal); every bar buys 1."""

    def __init__(self, path) -> None:
        self.path, self.n, self.orders = path, 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 2:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('trading_state', 'HALTED')")
            db.close()
        self.orders.append(broker.submit_order("AAA", 1))


def test_a_change_made_without_the_signal_is_read_after_the_next_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(shadow_journal, "COMMIT_SECONDS", 0.0)  # a commit at every bar (as live bars come)
    path = journal_path(tmp_path, "shadow", "list", "w1")
    strategy = WritesTheStateItself(path)
    LiveEngine(strategy, ShadowBroker(config(), state_dir=tmp_path), ListFeed(flat_bars(4)), session_dir=False,
               strategy_id="w1").run()  # fmt: skip
    assert path.exists()
    assert [o.status for o in strategy.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED] + [OrderStatus.REJECTED] * 2


def test_without_a_usable_signal_file_the_run_asks_the_journal_at_every_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(shadow_journal, "COMMIT_SECONDS", 3600.0)  # no commit during the run
    path = journal_path(tmp_path, "shadow", "list", "w2")
    signal_path(path).mkdir(parents=True)  # where the signal file would be: it cannot be made
    strategy = WritesTheStateItself(path)
    LiveEngine(strategy, ShadowBroker(config(), state_dir=tmp_path), ListFeed(flat_bars(4)), session_dir=False,
               strategy_id="w2").run()  # fmt: skip
    assert [o.status for o in strategy.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED] + [OrderStatus.REJECTED] * 2


def test_an_operator_halt_reaches_a_shadow_run_by_the_next_bar_and_survives_a_restart(tmp_path):
    strategy = Halted(tmp_path)
    broker = ShadowBroker(config(), state_dir=tmp_path)
    LiveEngine(strategy, broker, ListFeed(flat_bars(4)), session_dir=False, strategy_id="h1").run()
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    assert "ACTIVE -> HALTED" in strategy.halt.stdout
    # bar 2's own order left before the run read the journal again (at bar 3's start, before
    # its open filled it): still working then, so cancelled by the halt
    assert [o.status for o in strategy.orders[:2]] == [OrderStatus.FILLED, OrderStatus.CANCELLED]
    refused = strategy.orders[2:]
    assert [o.status for o in refused] == [OrderStatus.REJECTED] * 2
    assert "HALTED (fat finger)" in refused[0].rejection_reason
    assert strategy.limit.status is OrderStatus.CANCELLED  # nothing stays working when HALTED
    assert broker.risk_summary()["trading_state"] == "HALTED"

    # the restart replays the four bars (the halt again at bar 3), then bar 5 is refused too
    again = Halted(tmp_path, halt_on=0)
    LiveEngine(again, ShadowBroker(config(), state_dir=tmp_path), ListFeed(flat_bars(5)), session_dir=False,
               strategy_id="h1").run()  # fmt: skip
    assert [o.status for o in again.orders] == [OrderStatus.FILLED, OrderStatus.CANCELLED] + [OrderStatus.REJECTED] * 3
    resumed = subprocess.run([sys.executable, "-m", "ml4t_live", "resume", "--strategy-id", "h1", "--state-dir",
                              str(tmp_path)], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert resumed.returncode == 0 and "HALTED -> ACTIVE" in resumed.stdout, resumed.stderr
    third = Halted(tmp_path, halt_on=0)
    LiveEngine(third, ShadowBroker(config(), state_dir=tmp_path), ListFeed(flat_bars(6)), session_dir=False,
               strategy_id="h1").run()  # fmt: skip
    assert third.orders[-1].status is OrderStatus.PENDING  # bar 6 trades again (fills at a next open)
