"""A submit of unknown outcome that the watcher found but could not report (its report raised).

Alpaca holds that order: later look-ups that find nothing or get no answer do not count toward
``OrderLost``, and a report that raises every time is ALERTed once, at the
``unknown_order_lookups``-th failure, then retried at every ``unknown_order_lookups``-th tick, so a
report that works again still brings the order and its fills. Through the real alpaca-py client
against SimulatedAlpaca (trade stream silent); the watcher's ticks are run on its loop thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alpaca_helpers import drain, of
from loguru import logger
from unknown_support import (
    BreakingReader,
    NoActivitiesRaisesSecond,
    fill_events,
    replaced_chain,
    replaced_unknown,
)

from ml4t_live.events import OrderAccepted, OrderLost, VenueErrorReported
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


def test_a_report_that_always_raises_is_no_longer_looked_up_after_the_bound_but_never_lost(
    sim: SimulatedAlpaca, errors: list[str]
) -> None:
    """Failed before: after its ALERT the watcher looked it up again every 3rd tick for good (a
    failure, an ERROR and a ``VenueErrorReported`` each time). At 2 x ``unknown_order_lookups``
    failures a second ALERT says the watcher stops; the order stays of unknown outcome (never
    lost), and a listing of open orders that shows it (here a snapshot, as the reconciliation
    takes) reports it once the report works again."""
    gw, _ = replaced_unknown(sim, unknown_order_lookups=3)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        tick = lambda: gw.stream.session.call(gw.stream.resolve_unconfirmed)
        drain(gw.events)
        for _ in range(3 + 3 * 3):  # 3 failures, then one every 3rd tick: the 6th at the 12th tick
            tick()
        assert reader.reads == 6
        alerts = [line for line in errors if line.startswith("ALERT order t-a")]
        assert len(alerts) == 2 and "report failed 6 times" in alerts[1], alerts
        assert "no longer looks it up" in alerts[1] and "never declared lost" in alerts[1]
        for _ in range(6):
            tick()
        assert reader.reads == 6  # not looked up by the watcher any more
        seen = drain(gw.events)
        assert [e.code for e in of(VenueErrorReported, seen, "t-a")] == ["unknown_report_failed"] * 6
        assert not of(OrderLost, seen, "t-a") and gw.follows_unknown("t-a")
        reader.broken = False
        gw.snapshot()  # lists t-a.r1 open: reported as the watcher would
        seen = drain(gw.events)
        assert of(OrderAccepted, seen, "t-a") and not of(OrderLost, seen, "t-a")
        assert not gw.follows_unknown("t-a")
        assert len([line for line in errors if line.startswith("ALERT")]) == 2
    finally:
        gw.close()
