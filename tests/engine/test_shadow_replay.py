"""A shadow run's warm restart (:class:`~ml4t_live.shadow_restart.ShadowReplay`): a journaled
command the strategy does not make again, more commands on the journal's last bar than it holds
(journaled as that bar's next command row, which a later restart expects), and a restart that
diverged writing nothing."""

from __future__ import annotations

import os

import pytest
from ml4t.backtest import Strategy

from ml4t_live.errors import ReconciliationError, StrategyError
from ml4t_live.journal.operator_access import read_only
from tests.support.child_process import run_script
from tests.support.shadow_runs import EveryThird, live_bars, run_live


class Idle(Strategy):
    """Never orders."""

    def __init__(self) -> None:
        self.seen = 0

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1


def test_a_journaled_command_the_strategy_does_not_make_again_is_a_divergence(tmp_path):
    with pytest.raises(StrategyError):
        run_live(EveryThird(fail_at=10), live_bars(10), tmp_path)
    with pytest.raises(ReconciliationError) as caught:
        run_live(Idle(), live_bars(20, start=10), tmp_path)
    assert "bar 3: the journal holds submit ORD-1 ['AAA', 10," in str(caught.value)
    assert "which the strategy did not make again" in str(caught.value)


class SecondOrderFails(Strategy):
    """Two orders at bar 5; the first run fails between them (a transient error: ``flag`` exists);
    ``fail_at``: fail at that bar."""

    def __init__(self, flag: str = "", fail_at: int = 0) -> None:
        self.seen, self.flag, self.fail_at, self.orders = 0, flag, fail_at, []

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("crash")
        if self.seen == 5:
            self.orders.append(broker.submit_order("AAA", 1))
            if self.flag and os.path.exists(self.flag):
                os.remove(self.flag)
                raise OSError("transient")
            self.orders.append(broker.submit_order("AAA", 2))


def test_the_last_bars_further_commands_are_its_next_row_and_a_later_restart_expects_them(tmp_path):
    flag = tmp_path / "transient"
    flag.touch()
    with pytest.raises(StrategyError):  # the journal's bar 5 holds one command row: the first order
        run_live(SecondOrderFails(str(flag)), live_bars(20), tmp_path / "s")
    with pytest.raises(StrategyError):  # bar 5's second order is its row 1 (row 0 was a duplicate key)
        run_live(SecondOrderFails(fail_at=8), live_bars(20, start=5), tmp_path / "s")
    again = SecondOrderFails()
    run_live(again, live_bars(20, start=8), tmp_path / "s")  # both of bar 5's orders expected: no divergence
    assert again.seen == 20 and [o.quantity for o in again.orders] == [1, 2]


_RUN = """
import sys
from datetime import timedelta
import polars as pl
from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker, shadow_journal
from tests.support.market import make_prices
from tests.support.shadow_runs import EveryThird, config
shadow_journal.COMMIT_SECONDS = 0.0  # a commit at every bar: the kill loses none
state, size, on_divergence = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prices = make_prices(40, ["AAA"])
if sys.argv[4:] == ["moved"]:  # bar 11 (row 10) 30 s later: the same count and span, so the same source
    stamps = prices["timestamp"].to_list()
    stamps[10] += timedelta(seconds=30)
    prices = prices.with_columns(pl.Series("timestamp", stamps, dtype=prices.schema["timestamp"]))
s = EveryThird(size=size)
broker = ShadowBroker(config(), state_dir=state, on_divergence=on_divergence)
LiveEngine(s, broker, ReplayFeed(prices), session_dir=False, strategy_id="s1").run()
print(s.seen)
"""


def test_a_restart_that_diverged_leaves_the_journal_as_it_found_it(tmp_path):
    killed = run_script(_RUN, str(tmp_path), "10", "fail", failpoint="after_bar:30")
    assert killed.returncode == 137, killed.stderr[-2000:]
    (path,) = tmp_path.glob("shadow-replay.*-s1.journal")
    before = _contents(path)
    assert before[0] == 30 and not before[1]
    diverged = run_script(_RUN, str(tmp_path), "11", "fail")
    assert diverged.returncode != 0 and "did not repeat its journaled decisions" in diverged.stderr
    assert _contents(path) == before  # not finished: a run told to continue restarts warm from it
    relaxed = run_script(_RUN, str(tmp_path), "11", "continue")
    assert relaxed.returncode == 0 and relaxed.stdout.split()[-1] == "40", relaxed.stderr[-2000:]
    bars, finished, commands, _ = _contents(path)
    assert bars == 40 and finished
    assert [args[1] for _, _, args, _ in commands[3, 0][2]] == [10]  # bar 3 as the first run journaled it


def test_a_recorded_source_whose_bars_changed_under_the_journal_fails_the_restart(tmp_path):
    killed = run_script(_RUN, str(tmp_path), "10", "fail", failpoint="after_bar:20")
    assert killed.returncode == 137, killed.stderr[-2000:]
    moved = run_script(_RUN, str(tmp_path), "10", "fail", "moved")
    assert moved.returncode != 0
    assert ("the journal's bar 11 (2024-01-02 14:40:00+00:00) is not the source's next bar "
            "(2024-01-02 14:40:30+00:00). The recorded bars changed") in moved.stderr, moved.stderr[-2000:]


def _contents(path) -> tuple:
    journal = read_only(path)
    try:
        return journal.bars, journal.meta("finished"), journal.commands(), journal.fill_count()
    finally:
        journal.close()
