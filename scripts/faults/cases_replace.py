"""Alpaca re-price rows: a modify's replace chain across late reads and restarts.

The plan (``PLAN``): bar 2 rests a limit buy of 20 AAPL at 150 (order 0, marketable: the market
is near 100), which fills in parts, 3 a bar (``participation``); bar 4 re-prices it to 149 (a
PATCH: Alpaca replaces it with ``<ours>.r1`` asking what is left). Whatever the faults, the chain
(the order and its replacements) must never trade more than the 20 asked (the ``position``
invariant says so per order) and must end where the strategy sees it.
"""

from __future__ import annotations

from .runner import Run, Scenario
from .world import World

PLAN = "2:limit:AAPL:20:150|4:reprice:0:149"
PARTS = 0.003  # of a bar's ~1000 shares: 3 a bar
KILLED = (137,)


def _inject(*faults: tuple[str, dict]):
    def before(world: World) -> None:
        for kind, params in faults:
            world.inject(kind, **params)

    return before


def _row(name: str, ref: str, what: str, runs: list[Run], fired: tuple[str, ...], plan: str = PLAN) -> Scenario:
    return Scenario(name, "alpaca", ref, what, plan, runs, bars=24, participation=PARTS, expect_fired=fired)


REPLACE_CASES = [
    _row("al-slow-replace-kill-restart", "AL-14, 354e42b",
         "re-price at bar 4 left pending_replace 4 bars (slow_replace) while the old order fills on; kill -9 "
         "after bar 4 (the replace check pending); the warm restart checks the chain: at most 20 bought",
         [Run(10, failpoint="after_bar:4", expect=KILLED, before=_inject(("slow_replace", {"bars": 4}))),
          Run(12)], ("slow_replace",)),
    _row("al-replaced-by-late-restart", "AL-14, fb8bdf2",
         "re-price at bar 4 carried out; kill -9 after bar 5; the restart's reads of the replaced order "
         "say replaced_by null 3 times (replaced_by_late): read again, r1 followed, at most 20 bought",
         [Run(10, failpoint="after_bar:5", expect=KILLED), Run(12, before=_inject(("replaced_by_late", {"count": 3})))],
         ("replaced_by_late",)),
    _row("al-stale-replaced-read", "AL-14, bd60128",
         "re-price at bar 4 carried out; the modify check's GETs of the replaced order answer it as before "
         "the PATCH (stale_replaced_read x2); cancel at bar 6 must reach r1",
         [Run(10, before=_inject(("stale_replaced_read", {"count": 2})))], ("stale_replaced_read",),
         plan=f"{PLAN}|6:cancel:0"),
    _row("al-kill-after-modify-restart", "AL-14, 52e9814",
         "kill -9 right after Alpaca answered the re-price's PATCH (after_change, before the journal commit); "
         "r1 fills while away; the restart's replay asks the change again with the next replace left pending "
         "2 bars (slow_replace): the chain never trades more than the 20 asked",
         [Run(10, failpoint="after_change:1", expect=KILLED), Run(14, before=_inject(("slow_replace", {"bars": 2})))],
         ("slow_replace",)),
]  # fmt: skip
