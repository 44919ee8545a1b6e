"""Runtime rows of the scoreboard (X-01..X-07 of the catalogue), on both venues.

A crash is ``ML4T_LIVE_FAILPOINT=<point>`` (the process ``os._exit(137)``s there, as ``kill -9``
leaves it); the next run is the same command without it, against the same still-running
simulator (a warm restart). The plan is :data:`.cases_venue.PLAN`; ``after_send:1`` and
``after_intent:1`` hit order 0 (bar 2), ``after_fill:1`` its execution, ``after_bar:4`` leaves
10 AAPL held and the MSFT limit working.
"""

from __future__ import annotations

import time

from .cases_venue import PLAN
from .runner import Context, Run, Scenario

KILLED = (137,)


def _restart(name: str, venue: str, ref: str, what: str, point: str, *, before=None, fast: bool = False,
             fired: tuple[str, ...] = ()) -> Scenario:  # fmt: skip
    runs = [Run(10, failpoint=point, expect=KILLED), Run(6)]  # --max-bars: new bars only
    if before is not None:  # the restart may fail closed (exit 3) on what it cannot read; then once more
        runs = [runs[0], Run(6, before=before, expect=(0, 3)), Run(6)]
    return Scenario(name, venue, ref, what, PLAN, runs, bars=20, fast=fast, expect_fired=fired)


def _second_process(ctx: Context, other_client: bool = False) -> None:
    """Run A trades (speed mode: ~1 s a bar); once A holds its journal, B (the same command;
    ``other_client``: with IB client id 21, so IB lets it in) starts: B must be refused and send
    nothing; A must finish untouched."""
    extra: tuple[str, ...] = ()
    if other_client:
        (ctx.folder / "other_client.toml").write_text("[venue]\nclient_id = 21\n")
        extra = ("--config", str(ctx.folder / "other_client.toml"))
    a = Run(8, label="A", budget=45)
    proc, started = ctx.start(a)
    deadline = time.monotonic() + 20
    while not list(ctx.state.glob("*.journal")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # a script polling a file another process creates: bounded by the deadline
    ctx.run(Run(8, expect=(1, 2, 3), label="B(same strategy, same account)", budget=30, extra=extra))
    ctx.finish(a, proc, started)


def _foreign(venue: str) -> Scenario:
    def trade(world) -> None:
        world.foreign_trade("AAPL", 100)

    runs = [Run(4), Run(10, before=trade)]
    return Scenario(f"rt-foreign-trade-{venue}", venue, "issue 9 #5", "after bar 4 another client of the account buys "
                    "100 AAPL; the strategy (10 AAPL) restarts and trades on (60x real time)", PLAN, runs, bars=24,
                    speed=60.0)  # fmt: skip


def _unknown_ib(world) -> None:
    world.inject("freeze_gateway", seconds=3.0)


def _unknown_alpaca(world) -> None:
    world.inject("rate_limit_storm", count=6)  # the restart's first reads (account, positions, orders)
    world.inject("lookup_error", count=3, status=503)  # and any look-up by client order id


def _cases(v: str) -> list[Scenario]:
    unknown = ("the gateway is frozen for 3 s" if v == "ib"
               else "the first 6 REST requests get 429, look-ups by client id 503 (x3)")
    return [
        _restart(f"rt-kill-before-send-{v}", v, "X-01",
                 "kill -9 after order 0's intent is journaled, before it is sent; restart", "after_intent:1"),
        _restart(f"rt-kill-after-send-{v}", v, "X-02",
                 "kill -9 after order 0 reached the venue, before its ack was applied; restart", "after_send:1",
                 fast=v == "ib"),
        _restart(f"rt-kill-after-fill-{v}", v, "X-03",
                 "kill -9 after order 0's execution was applied, before it was journaled; restart", "after_fill:1",
                 fast=v == "alpaca"),
        _restart(f"rt-warm-restart-open-position-{v}", v, "X-04",
                 "kill -9 after bar 4 (10 AAPL held, MSFT limit working); restart", "after_bar:4"),
        _restart(f"rt-unknown-not-empty-{v}", v, "X-05", f"kill -9 after send; on restart {unknown}", "after_send:1",
                 before=_unknown_ib if v == "ib" else _unknown_alpaca,
                 fired=("freeze_gateway",) if v == "ib" else ("rate_limit_storm", "lookup_error")),
        Scenario(f"rt-second-process-{v}", v, "X-07",
                 "a second process starts the same strategy on the same account while the first trades", PLAN, [],
                 bars=12, speed=60.0, script=_second_process),
        _foreign(v),
    ] + ([Scenario("rt-second-process-other-client-ib", "ib", "X-07", "as above, the second process with IB client "
                   "id 21 (IB lets it in; the journal lock must refuse it)", PLAN, [], bars=12, speed=60.0,
                   script=lambda ctx: _second_process(ctx, other_client=True))] if v == "ib" else [])


RUNTIME_CASES = _cases("ib") + _cases("alpaca")
