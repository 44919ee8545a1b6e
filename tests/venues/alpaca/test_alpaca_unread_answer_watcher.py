"""Unreadable answers to the watcher's look-ups of a submit of unknown outcome (review rev-lookfix4
findings 1 and 2). Only the watcher's own walk that is answered with a body that cannot be read is
excused (no miss, nothing carried over: UnknownOutcomes.unread_answer); an unreadable answer to any
other look-up (the runtime's, a modify's, a cancel's) excuses nothing, so the watcher's next 404
still counts toward the loss of a submit that never reached Alpaca. A submit whose reads keep
answering such bodies rests ever longer, with an ALERT at ``unknown_order_lookups`` and at
``back_off_after`` of them, once each."""

from __future__ import annotations

import pytest
from alpaca_helpers import drain, inject, of
from loguru import logger
from ml4t.backtest import OrderSide, OrderType
from unknown_support import ATTEMPTS

from ml4t_live.errors import LookupIncomplete
from ml4t_live.events import OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _place_never_created(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body", accepted=False)  # t-n never created at Alpaca; its answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # its first look-up: 503
    gw.place(OrderRequest("t-n", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    assert gw.follows_unknown("t-n")


def test_an_unreadable_answer_to_another_look_up_does_not_excuse_the_watcher_s_404(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Before each watcher tick, a look-up that is not the watcher's (gw.lookup) reads t-n and
    gets a body that cannot be read; the watcher's own read then gets a 404. Failed before
    (probe P1): that look-up raised a one-shot flag the watcher's next miss consumed, so no 404
    ever counted (20 rounds: OrderLost [], misses 0)."""
    _place_never_created(sim, gw)
    seen: list = []
    for _ in range(gw.stream.unknown.limit):
        inject(sim, "lookup_error", count=ATTEMPTS, status=200)
        with pytest.raises(LookupIncomplete):
            gw.lookup(["t-n"])
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # the watcher's read: 404
        seen += drain(gw.events)
    assert [e.client_order_id for e in of(OrderLost, seen)] == ["t-n"]
    assert not gw.follows_unknown("t-n")


def test_a_submit_whose_reads_stay_unreadable_rests_ever_longer_with_two_alerts(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Every read of t-n answers a body that cannot be read: it is never lost, read at every tick
    below ``limit`` (5) such answers, then every 5th tick, then from ``back_off_after`` (10) at a
    spacing doubling each time (10, 20, 40 ticks); an ALERT at the 5th and at the 10th, once each.
    Failed before (probe P2): no ALERT ever; the schedule kills mutant M3 (no rest after such
    answers: a read at every tick)."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="ERROR")
    try:
        _place_never_created(sim, gw)
        assert gw.stream.unknown.limit == 5
        inject(sim, "lookup_error", count=10_000, status=200)
        seen: list = []
        reads = []
        for tick in range(120):
            before = sim.state()["rest_requests"]
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
            seen += drain(gw.events)
            if sim.state()["rest_requests"] > before:
                reads.append(tick)
    finally:
        logger.remove(sink)
    assert reads == [0, 1, 2, 3, 4, 9, 14, 19, 24, 29, 39, 59, 99]
    assert not of(OrderLost, seen) and gw.follows_unknown("t-n")
    alerts = [line for line in lines if "ALERT order t-n" in line]
    assert len(alerts) == 2
    assert "5 look-ups were answered with a body that cannot be read" in alerts[0]
    assert "10 look-ups were answered with a body that cannot be read" in alerts[1]
