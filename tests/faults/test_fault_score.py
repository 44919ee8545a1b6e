"""The scoreboard's invariants on an Alpaca replace chain (``scripts/faults/score.py``), from
hand-written journal / venue / strategy states: the order ``fs-a`` of 20, re-priced once, so
Alpaca holds ``fs-a`` (replaced) and its replacement ``fs-a.r1``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.faults.score import RunRecord, score
from scripts.faults.world import VenueView, VExec, VOrder


def _checks(old_filled: float, r1_filled: float) -> dict:
    bought = old_filled + r1_filled
    journal = {"intents": {"fs-a": {"cid": "fs-a", "asset": "AAPL", "status": "filled", "filled": bought,
                                    "venue_id": "v2", "reason": None, "quantity": 20.0}},
               "fills": [{"exec_id": "e1", "cid": "fs-a", "asset": "AAPL", "quantity": old_filled},
                         {"exec_id": "e2", "cid": "fs-a", "asset": "AAPL", "quantity": r1_filled}]}  # fmt: skip
    venue = VenueView([VOrder("fs-a", "v1", "replaced", old_filled, "AAPL"),
                       VOrder("fs-a.r1", "v2", "filled", r1_filled, "AAPL")],
                      [VExec("e1", "fs-a", "AAPL", old_filled, 100.0), VExec("e2", "fs-a.r1", "AAPL", r1_filled, 100.0)],
                      {"AAPL": bought})  # fmt: skip
    strategy = {"orders": [{"id": "fs-a", "status": "FILLED", "filled": bought, "reason": ""}],
                "positions": {"AAPL": bought}}
    return score(journal, venue, strategy, [RunRecord("run1", 0, 1.0, "", (0,), 45.0)], "fs")


def test_a_replacement_is_part_of_its_orders_chain():
    checks = _checks(6, 14)
    assert {name: c.ok for name, c in checks.items() if not c.ok} == {}, checks


def test_a_chain_that_traded_more_than_asked_fails_position():
    checks = _checks(6, 17)
    assert not checks["position"].ok
    assert checks["position"].detail == "AAPL j23/v23/s23; fs-a traded 23 of 20 asked"
