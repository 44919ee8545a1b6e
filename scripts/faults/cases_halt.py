"""An operator halts a trading strategy from another process and the venue loses the halt's
cancels (IB-05 / AL-14, issue 10): one row per venue.

At 60x real time (a bar a second) the strategy rests 3 limit buys far below the market at bar 2
and trades on. Once its view file shows bar 3, a second process runs ``ml4t-live halt``; at its
next bar the runtime cancels the 3 orders together and the venue loses every cancel (IB: never
answered nor carried out; Alpaca: 204, then ``pending_cancel`` until Alpaca carries it out
``LATE_BARS`` bars later). The strategy sees them CANCELLED while the venue works them on. The
process is killed (``after_bar:10``, as ``kill -9``) before the 30-s re-send check comes; the
restart (the same command) must come up HALTED, follow the unconfirmed cancels until the venue
ends the orders (IB: the cancel sent again at the restart; Alpaca: a repeat refused 422 while
``pending_cancel``, the late ``canceled`` followed) and send no order again. Then ``ml4t-live
resume`` from a second process, and a last run must trade: the plan's ``11+:buy:AAPL:1`` is
refused at every bar while halted and leaves at the first bar after the resume.

The script checks what the invariants cannot see (else the row is an ERROR, not a PASS): after
the kill, the strategy saw the 3 orders CANCELLED (the halt acted) while the venue still works them
(the fault bit); the restart's first line says HALTED; after the resume a market buy filled (AAPL
1). The invariants score the end: ``unknown`` (an order the strategy saw CANCELLED still working
at the venue: no re-sends at all leave the 3 orders ``Submitted`` at IB), ``dup`` (an order
re-sent instead of its cancel), ``orphan`` / ``position`` / ``bounded`` as for every row. When
the cancels are sent again is not scored: a restart that skipped its at-once check would leave
them to its end-of-run cancels, and the row would still pass.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .runner import STRATEGY_ID, Context, Run, Scenario
from .score import VENUE_DONE, RunRecord, read_view

PLAN = "2:limit:AAPL:5:50|2:limit:MSFT:5:100|2:limit:AAPL:3:40|11+:buy:AAPL:1"
RESTING = 3  # the plan's limit orders, the strategy's orders 0..2
LATE_BARS = 8  # Alpaca carries the lost cancels out this many bars later (during the restart)


def _wait_for_bar(ctx: Context, proc: subprocess.Popen, bar: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while read_view(ctx.view)["bars"] < bar:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the strategy never reached bar {bar} (exit {proc.poll()})")
        time.sleep(0.05)  # a script polling a file another process writes: bounded by the deadline


def _operator(ctx: Context, *args: str) -> None:
    """``ml4t-live <args> --strategy-id fs --state-dir ...`` from a second process, recorded as a run."""
    started = time.monotonic()
    command = [sys.executable, "-m", "ml4t_live", *args, "--strategy-id", STRATEGY_ID, "--state-dir", str(ctx.state)]
    done = subprocess.run(command, check=False, cwd=ctx.folder, env=ctx.world.env(), text=True, capture_output=True,
                          timeout=30)  # fmt: skip
    out = done.stdout + done.stderr
    (ctx.folder / f"output-{len(ctx.records) + 1}.txt").write_text(out)
    ctx.records.append(RunRecord(f"{args[0]} (second process)", done.returncode, time.monotonic() - started, out,
                                 (0,), 20.0))  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ml4t-live {args[0]} exited {done.returncode}: {out.strip()[-300:]}")


def _resting(ctx: Context) -> list[dict]:
    orders = read_view(ctx.view)["orders"][:RESTING]
    if len(orders) < RESTING or None in orders:
        raise RuntimeError(f"the strategy does not hold its {RESTING} resting orders: {orders}")
    return orders


def _venue_status(ctx: Context) -> dict[str, str]:
    return {o.cid: o.status for o in ctx.world.view().orders}


def _halt_cancels_lost(ctx: Context) -> None:
    trading = Run(12, failpoint="after_bar:10", expect=(137,), label="trading, halted, kill -9 after bar 10")
    proc, started = ctx.start(trading)
    try:
        _wait_for_bar(ctx, proc, 3)
        _operator(ctx, "halt", "--reason", "operator: news")
    finally:
        ctx.finish(trading, proc, started)
    seen = _resting(ctx)
    venue = _venue_status(ctx)
    if any(o["status"] != "CANCELLED" for o in seen):
        raise RuntimeError(f"the halt did not cancel the resting orders before the kill: {seen}")
    if any(venue.get(o["id"]) in VENUE_DONE for o in seen):
        raise RuntimeError(f"the venue did not lose the halt's cancels: {venue}")

    restart = ctx.run(Run(3, label="restart (HALTED)"))
    first = restart.output.strip().splitlines()[:1]
    if not first or "HALTED" not in first[0]:
        raise RuntimeError(f"the restart's first line does not say HALTED: {first}")

    _operator(ctx, "resume", "--reason", "operator: news over")
    ctx.run(Run(4, label="after resume"))
    view = read_view(ctx.view)
    if not any(o and o["status"] == "FILLED" for o in view["orders"][RESTING:]) or view["positions"].get("AAPL") != 1:
        raise RuntimeError(f"the resumed strategy did not trade its market order: {view}")


def _row(venue: str) -> Scenario:
    if venue == "ib":
        name, ref, lost = "ib-halt-cancels-lost", "IB-05, issue 10", "IB never answers nor carries out the 3 cancels"
        faults, fired = [{"kind": "cancel_reply", "reply": "lost", "count": RESTING}], ("cancel_reply",)
    else:
        name, ref = "al-halt-cancels-lost", "AL-14, issue 10"
        lost = f"Alpaca answers the 3 DELETEs 204, leaves them pending_cancel {LATE_BARS} bars"
        faults = [{"kind": "lose_cancel", "params": {"count": RESTING, "bars": LATE_BARS}}]
        fired = ("lose_cancel",)
    what = (f"3 limit buys rest; at bar 3 `ml4t-live halt` from a second process; {lost}; kill -9 after bar 10; "
            "the restart comes up HALTED and ends them cancelled (none re-sent); `resume`; a market buy trades")
    return Scenario(name, venue, ref, what, PLAN, [], bars=60, speed=60.0, faults=faults, script=_halt_cancels_lost,
                    expect_fired=fired)  # fmt: skip


HALT_CASES = [_row("ib"), _row("alpaca")]
