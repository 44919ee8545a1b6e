"""``ml4t-live resume`` lifts a halt only where the operator names it.

A halt acts on every journal of the strategy id (the kill switch never stops at "which one?").
A resume that finds several (a venue run halted by its reconciliation, a rehearsal halted by the
operator) lists them with their states and the command that names each, and changes nothing;
``--broker`` / ``--account`` name one, ``--all`` resumes every one. The command a HALTED refusal
and a restart print names exactly their own journal, so it works as printed."""

from __future__ import annotations

import shlex
import subprocess
import sys

from ml4t.backtest import Strategy

from ml4t_live.cli.app import EXIT_CONFIG
from ml4t_live.journal import Journal, journal_path
from ml4t_live.journal.operator_access import read_only
from tests.support.shadow_runs import EveryThird, live_bars, run_live

RECONCILED = "external positions in AAA (external = halt)"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def state_of(path) -> tuple[str, str]:
    journal = read_only(path)
    try:
        return journal.meta("trading_state"), journal.meta("trading_state_reason", "")
    finally:
        journal.close()


def venue_journal_halted_by_reconciliation(state_dir):
    """A venue run's journal whose reconciliation halted it (as ``Ownership.set_state`` writes it)."""
    path = journal_path(state_dir, "ib", "DU1", "l1")
    journal = Journal.open(path)
    try:
        for key, value in (("venue", "ib"), ("account", "DU1"), ("strategy_id", "l1"),
                           ("trading_state", "HALTED"), ("trading_state_reason", RECONCILED)):  # fmt: skip
            journal.set_meta(key, value)
        journal.commit()
    finally:
        journal.close()
    return path


def test_a_resume_that_finds_several_journals_lists_them_and_changes_nothing(tmp_path):
    run_live(EveryThird(), live_bars(5), tmp_path)
    shadow = journal_path(tmp_path, "shadow", "list", "l1")
    halted = cli("halt", "--strategy-id", "l1", "--state-dir", str(tmp_path), "--broker", "shadow",
                 "--reason", "desk review")  # fmt: skip
    assert halted.returncode == 0, halted.stderr
    venue = venue_journal_halted_by_reconciliation(tmp_path)

    refused = cli("resume", "--strategy-id", "l1", "--state-dir", str(tmp_path))
    assert refused.returncode == EXIT_CONFIG, refused.stdout
    assert "nothing was resumed" in refused.stderr
    assert f"ib-DU1-l1.journal: HALTED ({RECONCILED})" in refused.stderr
    assert "shadow-list-l1.journal: HALTED (desk review)" in refused.stderr
    assert "ml4t-live resume --strategy-id l1 --broker ib --account DU1" in refused.stderr
    assert "--all" in refused.stderr
    assert state_of(venue) == ("HALTED", RECONCILED) and state_of(shadow) == ("HALTED", "desk review")

    one = cli("resume", "--strategy-id", "l1", "--state-dir", str(tmp_path), "--broker", "shadow")
    assert one.returncode == 0, one.stderr
    assert "shadow-list-l1.journal: trading state HALTED -> ACTIVE" in one.stdout
    assert state_of(shadow)[0] == "ACTIVE" and state_of(venue) == ("HALTED", RECONCILED)

    every = cli("resume", "--strategy-id", "l1", "--state-dir", str(tmp_path), "--all")
    assert every.returncode == 0, every.stderr
    assert "ib-DU1-l1.journal: trading state HALTED -> ACTIVE" in every.stdout
    assert state_of(venue)[0] == "ACTIVE"


def test_a_halt_still_reaches_every_journal_and_one_journal_resumes_without_naming_it(tmp_path):
    run_live(EveryThird(), live_bars(5), tmp_path)
    halted = cli("halt", "--strategy-id", "l1", "--state-dir", str(tmp_path))
    assert halted.returncode == 0, halted.stderr
    resumed = cli("resume", "--strategy-id", "l1", "--state-dir", str(tmp_path))
    assert resumed.returncode == 0 and "HALTED -> ACTIVE" in resumed.stdout, resumed.stderr


class Buys(Strategy):
    def __init__(self) -> None:
        self.refusals: list[str] = []

    def on_data(self, timestamp, data, context, broker):
        order = broker.submit_order("AAA", 1)
        if order.rejection_reason:
            self.refusals.append(order.rejection_reason)


def test_the_resume_a_halted_refusal_prints_works_as_printed_beside_another_journal(tmp_path):
    run_live(Buys(), live_bars(3), tmp_path)
    assert cli("halt", "--strategy-id", "l1", "--state-dir", str(tmp_path)).returncode == 0
    venue = venue_journal_halted_by_reconciliation(tmp_path)
    strategy = Buys()
    run_live(strategy, live_bars(6, start=3), tmp_path)  # restarts HALTED: every new order refused
    assert strategy.refusals and all("HALTED" in r for r in strategy.refusals)
    printed = strategy.refusals[0].split("`")[1]
    assert printed == f"ml4t-live resume --strategy-id l1 --broker shadow --account list --state-dir {tmp_path}"
    resumed = cli(*shlex.split(printed)[1:])  # as printed: its state directory too (cron may not share the env)
    assert resumed.returncode == 0 and "shadow-list-l1.journal: trading state HALTED -> ACTIVE" in resumed.stdout
    assert state_of(venue) == ("HALTED", RECONCILED)


def test_an_account_is_found_as_the_venue_spells_it_not_only_as_the_journal_name_does(tmp_path):
    path = journal_path(tmp_path, "alpaca", "PA-3 x", "l1")  # kept as alpaca-PA_3_x-l1.journal
    journal = Journal.open(path)
    journal.close()
    halted = cli("halt", "--strategy-id", "l1", "--state-dir", str(tmp_path), "--account", "PA-3 x")
    assert halted.returncode == 0 and "alpaca-PA_3_x-l1.journal: trading state ACTIVE -> HALTED" in halted.stdout, (
        halted.stderr)  # fmt: skip
