"""The fast subset of the crash-and-fault scoreboard (``scripts/fault_suite.py --fast``).

Each scenario runs exactly as on the scoreboard: its simulator in this process (real ib_async /
alpaca-py on the other side), ``ml4t-live run`` as a subprocess (killed at a failpoint and
restarted where the scenario says so), then the seven invariants of the fault catalogue scored
from the journal, the venue and the strategy's own view. Every invariant must hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.faults.board import row, select
from scripts.faults.runner import execute
from scripts.faults.score import INVARIANTS

FAST = select(fast=True)


def test_the_fast_subset_covers_both_venues_and_a_crash():
    assert {s.venue for s in FAST} == {"ib", "alpaca"}
    assert any(r.failpoint for s in FAST for r in s.runs)
    assert 6 <= len(FAST) <= 8


def test_the_scoreboard_has_at_least_thirty_scenarios_from_the_catalogue():
    scenarios = select()
    assert len(scenarios) >= 30
    assert all(s.ref and s.what for s in scenarios)


@pytest.mark.parametrize("scenario", FAST, ids=[s.name for s in FAST])
def test_every_invariant_holds(scenario):
    result = execute(scenario)
    assert not result.error, result.error
    assert set(result.checks) == set(INVARIANTS)
    failed = {name: check.detail for name, check in result.checks.items() if not check.ok}
    outputs = "\n".join(f"--- {r.label} (exit {r.exit_code}, {r.seconds:.1f}s)\n{r.output[-2000:]}" for r in result.runs)
    assert failed == {}, f"{row(result)}\n{failed}\n{outputs}"
