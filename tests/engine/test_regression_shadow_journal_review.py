"""Defects a review of the shadow journal found, each kept as a test (fixed in the same change)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from ml4t.backtest import Strategy

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.errors import StrategyError
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from tests.support.child_process import run_script
from tests.support.market import make_prices
from tests.support.shadow_runs import EveryThird, config, live_bars, run_live


def journal_positions(state_dir, feed: str, sid: str) -> dict[str, float]:
    (path,) = state_dir.glob(f"shadow-{feed}*-{sid}.journal")
    journal = read_only(path)
    try:
        return journal.positions()
    finally:
        journal.close()


class BuyOnce(Strategy):
    def __init__(self, fail_at: int = 0) -> None:
        self.seen, self.fail_at = 0, fail_at

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("crash")
        if self.seen == 3:
            broker.submit_order("AAA", 10)


def test_a_warm_restart_does_not_journal_the_replayed_fills_again(tmp_path):
    with pytest.raises(StrategyError):
        run_live(BuyOnce(fail_at=10), live_bars(20), tmp_path)
    assert journal_positions(tmp_path, "list", "l1") == {"AAA": 10.0}
    run_live(BuyOnce(), live_bars(20, start=10), tmp_path)
    run_live(BuyOnce(), live_bars(25, start=20), tmp_path)
    assert journal_positions(tmp_path, "list", "l1") == {"AAA": 10.0}  # was 20, then 30


def test_the_fills_of_the_bar_a_run_failed_on_are_journaled(tmp_path):
    broker = ShadowBroker(config(), state_dir=tmp_path)
    with pytest.raises(StrategyError):
        LiveEngine(EveryThird(fail_at=25), broker, ReplayFeed(make_prices(40, ["AAA"])), session_dir=False,
                   strategy_id="s1").run()  # fmt: skip
    held = {a: p.quantity for a, p in broker.strategy_broker.positions.items()}
    assert held and journal_positions(tmp_path, "replay", "s1") == held


class OnEnd(Strategy):
    def __init__(self, flag: str = "") -> None:
        self.seen, self.flag = 0, flag

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == 25 and self.flag and os.path.exists(self.flag):
            os.remove(self.flag)  # a transient error: it does not happen again on the replay
            raise OSError("transient")
        if self.seen % 5 == 0:
            broker.submit_order("AAA", 1)

    def on_end(self, broker):
        for asset in list(broker.positions):
            broker.close_position(asset)


def test_on_end_commands_are_numbered_past_every_bar_after_a_failure_and_after_a_restart(tmp_path):
    flag = tmp_path / "transient"
    flag.touch()
    with pytest.raises(StrategyError):
        run_live(OnEnd(str(flag)), live_bars(40), tmp_path / "s")
    run_live(OnEnd(), live_bars(40, start=25), tmp_path / "s")  # was a false divergence at bar 25
    run_live(OnEnd(), live_bars(40, start=40), tmp_path / "s")  # no new bar: was a duplicate key


_HALTED_RUN = """
import sys
from ml4t_live import LiveEngine, ShadowBroker
from tests.support.fakes import ListFeed
from tests.support.shadow_runs import Halted, config, flat_bars
state, n, halt_on = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = Halted(state, halt_on=halt_on)
LiveEngine(s, ShadowBroker(config(), state_dir=state), ListFeed(flat_bars(n)), session_dir=False, strategy_id="h1").run()
print([o.status.value for o in s.orders])
"""


def test_a_second_restart_after_an_operator_halt_does_not_diverge(tmp_path):
    killed = run_script(_HALTED_RUN, str(tmp_path), "4", "2", failpoint="after_bar:3")
    assert killed.returncode == 137, killed.stderr
    for bars in ("6", "8"):  # the second one failed: the journal lacked bar 3's cancel
        again = run_script(_HALTED_RUN, str(tmp_path), bars, "0")
        assert again.returncode == 0, again.stderr[-2000:]
        assert json.loads(again.stdout.strip().replace("'", '"'))[:2] == ["filled", "cancelled"]


_ERRORS_RUN = """
import json, sys
from ml4t.backtest import Strategy
from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from tests.support.shadow_runs import config
from tests.support.market import make_prices
class S(Strategy):
    def __init__(self): self.seen = 0; self.orders = []
    def on_data(self, ts, data, ctx, broker):
        self.seen += 1
        self.orders.append((self.seen, broker.submit_order("AAA", 1).status.value))
        if self.seen in (20, 21): raise RuntimeError("boom")
    def on_end(self, broker):
        print(json.dumps(sorted(n for n, s in self.orders if s != "rejected")), flush=True)
b = ShadowBroker(config(), state_dir=sys.argv[1], risk={"max_strategy_errors": 2})
feed = ReplayFeed(make_prices(30, ["AAA"]), speed=3000)  # a bar every 20 ms: more than one commit a run
LiveEngine(S(), b, feed, session_dir=False, strategy_id="s1", error_policy="log").run()
"""


def test_a_limit_that_halts_is_journaled_with_the_bars_that_tripped_it(tmp_path):
    whole = run_script(_ERRORS_RUN, str(tmp_path / "a"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = run_script(_ERRORS_RUN, str(tmp_path / "b"), failpoint="after_bar:21")
    assert killed.returncode == 137, killed.stderr[-2000:]
    again = run_script(_ERRORS_RUN, str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr[-2000:]
    # was: HALTED committed before the last bars, so the restart refused bars 16-21's orders
    assert json.loads(again.stdout.strip().splitlines()[-1]) == json.loads(whole.stdout.strip().splitlines()[-1])


class Buggy(Strategy):
    def __init__(self, buggy: bool) -> None:
        self.buggy, self.seen, self.orders = buggy, 0, []

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.buggy and self.seen > 30:
            raise KeyError("typo")
        self.orders.append(broker.submit_order("AAA", 1).status.value)


def test_a_halt_by_the_last_runs_errors_does_not_carry_into_a_fresh_replay(tmp_path):
    prices = make_prices(40, ["AAA"])

    def go(strategy):
        broker = ShadowBroker(config(), state_dir=tmp_path, risk={"max_strategy_errors": 3})
        LiveEngine(strategy, broker, ReplayFeed(prices), session_dir=False, strategy_id="s1",
                   error_policy="log").run()  # fmt: skip
        return broker

    assert go(Buggy(True)).risk_summary()["trading_state"] == "HALTED"
    fixed = Buggy(False)
    assert go(fixed).risk_summary()["trading_state"] == "ACTIVE"
    assert Counter(fixed.orders)["rejected"] == 0


def test_halt_reaches_every_journal_of_the_strategy_id(tmp_path):
    run_live(EveryThird(), live_bars(5), tmp_path)  # a shadow rehearsal's journal
    # and a venue run's journal of the same strategy id (a copy: any journal file will do)
    journal_path(tmp_path, "ib", "DU1", "l1").write_bytes((tmp_path / "shadow-list-l1.journal").read_bytes())
    halt = subprocess.run([sys.executable, "-m", "ml4t_live", "halt", "--strategy-id", "l1", "--state-dir",
                           str(tmp_path)], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert halt.returncode == 0, halt.stderr  # was: exit 2, "several journals: add --broker"
    assert "ib-DU1-l1.journal: trading state ACTIVE -> HALTED" in halt.stdout
    assert "shadow-list-l1.journal: trading state ACTIVE -> HALTED" in halt.stdout
