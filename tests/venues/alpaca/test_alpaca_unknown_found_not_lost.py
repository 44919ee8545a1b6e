"""A submit of unknown outcome that the watcher found but could not report (its report raised).

Alpaca holds that order: later look-ups that find nothing or get no answer do not count toward
``OrderLost``, and a report that raises every time is ALERTed at the
``unknown_order_lookups``-th failure, then retried at every ``unknown_order_lookups``-th tick and,
from twice that many failures, ever less often (a second ALERT), for good, so a report that works
again still brings the order and its fills, also once the order has ended. Through the real
alpaca-py client against SimulatedAlpaca (trade stream silent); the watcher's ticks are run on its
loop thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alpaca_helpers import drain, inject, of
from loguru import logger
from unknown_support import (
    BreakingReader,
    NoActivitiesRaisesSecond,
    asked_at,
    fill_events,
    looked_up_at,
    replaced_chain,
    replaced_unknown,
    unknown_half_filled,
    unknown_limit,
)

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost, VenueErrorReported
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.rest import VenueRequestFailed


@pytest.fixture
def errors() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="ERROR")
    yield lines
    logger.remove(sink)


def test_a_found_submit_whose_report_broke_is_not_declared_lost_by_later_look_ups(sim: SimulatedAlpaca) -> None:
    """t-a was replaced after filling 4 by t-a.r1, which filled 3 (the walk's answer given here,
    so that the look-ups can be made to fail); the watcher's report breaks after t-a's 4. Then
    Alpaca answers no look-up for ``unknown_order_lookups`` ticks. Before, those misses
    counted and t-a, working at Alpaca with 4 filled and reported, was declared LOST."""
    chain = replaced_chain()
    gw, _ = replaced_unknown(sim)
    try:
        gw.tracker.alias("t-a.r1", "t-a")
        answers = {"down": False}

        def walk(cid: str, client: Any) -> list[Any]:
            if answers["down"]:
                raise VenueRequestFailed("lookup " + cid, None, "", "no answer")
            return chain if cid == "t-a" else []

        gw.stream.chain = walk
        gw.stream.executions = NoActivitiesRaisesSecond(gw.stream.executions)
        drain(gw.events)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # found; the report breaks after t-a's 4
        assert [f.quantity for f in fill_events(drain(gw.events))] == [4]
        answers["down"] = True
        for _ in range(gw.stream.unknown.limit + 1):
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        assert not of(OrderLost, drain(gw.events), "t-a")
        assert gw.follows_unknown("t-a")
        answers["down"] = False  # Alpaca answers again: the rest of the chain is reported
        for _ in range(gw.stream.unknown.limit):  # (limit + 1 failed walks: it rests limit - 1 ticks)
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        assert [f.quantity for f in fill_events(drain(gw.events))] == [3]
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_report_that_always_raises_is_alerted_once_then_retried_at_a_lower_rate(
    sim: SimulatedAlpaca, errors: list[str]
) -> None:
    gw, _ = replaced_unknown(sim, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        tick = lambda: gw.stream.session.call(gw.stream.resolve_unconfirmed)
        drain(gw.events)
        for _ in range(3):  # a failure every tick up to the bound
            tick()
        assert reader.reads == 3
        alerts = [line for line in errors if line.startswith("ALERT order t-a")]
        assert len(alerts) == 1 and "report failed 3 times" in alerts[0]
        for _ in range(2):  # resting: not looked up
            tick()
        assert reader.reads == 3
        tick()  # due again: fails again, no second ALERT
        assert reader.reads == 4
        assert len([line for line in errors if line.startswith("ALERT")]) == 1
        failures = of(VenueErrorReported, drain(gw.events), "t-a")
        assert [e.code for e in failures] == ["unknown_report_failed"] * 4
        reader.broken = False
        for _ in range(3):
            tick()
        assert reader.reads > 4
        seen = drain(gw.events)
        assert of(OrderAccepted, seen, "t-a") and not of(OrderLost, seen, "t-a")
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_report_that_keeps_raising_is_looked_up_ever_less_often_never_dropped(
    sim: SimulatedAlpaca, errors: list[str]
) -> None:
    """Failed before (7cd2131): from its 2 x ``unknown_order_lookups``-th failed report the
    watcher no longer looked the order up at all (no read after tick 12), so a report that worked
    again later never brought it. Now, from there, the spacing doubles at each failure (6, 12, 24,
    48 ticks), at most 64, for good, with the second ALERT saying so; and the next look-up after
    the report works again reports it."""
    gw, _ = replaced_unknown(sim, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        at = looked_up_at(gw, reader, 230)
        assert at == [1, 2, 3, 6, 9, 12, 18, 30, 54, 102, 166, 230], at
        alerts = [line for line in errors if line.startswith("ALERT order t-a")]
        assert len(alerts) == 2 and "report failed 6 times" in alerts[1], alerts
        assert "looks it up less often now, for good (next in 6 ticks" in alerts[1], alerts[1]
        assert "at most every 64 ticks" in alerts[1] and "never declared lost" in alerts[1], alerts[1]
        seen = drain(gw.events)
        assert [e.code for e in of(VenueErrorReported, seen, "t-a")] == ["unknown_report_failed"] * 12
        assert not of(OrderLost, seen, "t-a") and gw.follows_unknown("t-a")
        reader.broken = False
        assert looked_up_at(gw, reader, 64) == [64]  # the next look-up, 64 ticks on, reports it
        seen = drain(gw.events)
        assert of(OrderAccepted, seen, "t-a") and not of(OrderLost, seen, "t-a")
        assert not gw.follows_unknown("t-a")
        assert len([line for line in errors if line.startswith("ALERT")]) == 2
    finally:
        gw.close()


def test_an_order_that_ends_after_the_back_off_began_is_reported_once_its_report_works(
    sim: SimulatedAlpaca,
) -> None:
    """t-u (market 10) is of unknown outcome, 5 filled, the trade stream silent; its report raises
    until the back-off (6 failures at tick 12). Then the rest fills at Alpaca, so no listing of
    open orders shows it any more, and the report works again. Failed before (7cd2131): the
    watcher no longer looked it up, so its acceptance and both fills were never reported and it
    stayed of unknown outcome ("followed") for good; now the next look-up (6 ticks on) reports
    them, each once, under the venue's execution ids."""
    gw = unknown_half_filled(sim, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        assert looked_up_at(gw, reader, 12) == [1, 2, 3, 6, 9, 12]
        gw.rest("clock", gw._require().get_clock, repeatable=True)  # a bar: the rest of t-u fills
        assert len(sim.fills()) == 2
        reader.broken = False
        assert looked_up_at(gw, reader, 6) == [6]
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-u")) == 1 and not of(OrderLost, seen, "t-u")
        fills = fill_events(seen)
        assert [(f.exec_id, f.quantity, f.cumulative_quantity) for f in fills] == [
            (v.execution_id, 5, c) for v, c in zip(sim.fills(), (5, 10), strict=True)]
        assert isinstance(fills[-1], OrderFilled)
        assert not gw.follows_unknown("t-u")
    finally:
        gw.close()


def test_a_found_submit_whose_look_up_then_gets_no_answer_rests_as_after_its_failed_report(
    sim: SimulatedAlpaca,
) -> None:
    """t-a's report raised 6 times (the watcher now 6 ticks apart), then its look-up gets no
    answer. Failed before: a look-up without an answer made it due again at the next tick, so it
    was looked up at every tick (``max_request_attempts`` requests each, 48 a minute at the
    defaults, of the 200-a-minute budget), for good; now it rests as after its failed report."""
    gw = unknown_limit(sim, 50.0, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        assert looked_up_at(gw, reader, 12) == [1, 2, 3, 6, 9, 12]
        inject(sim, "lookup_error", count=1000)  # GET by_client_order_id: 503 from now on
        assert asked_at(sim, gw, 18) == [6, 12, 18]  # before: [1, 2, ..., 18]
        assert not of(OrderLost, drain(gw.events), "t-a") and gw.follows_unknown("t-a")
    finally:
        gw.close()
