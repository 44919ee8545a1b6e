"""An order of unknown outcome (its send timed out after the venue took it), cancelled by the
strategy (the cancel never confirmed), that a cancel check's look-up finds filled (stale: owed its
executions), then the unknown-order look-up finds working ("open"): its cancel is checked and
sent again as a listed one's (``CancelResending._check_one``), and, listed working, it is no
longer owed nor found filled, as at a cancel check that lists it. The venue then really fills it,
its execution on its way: no reconciliation makes that fill up; the execution counts, once.
Before, that look-up cleared the found-filled flag but kept the debt: the reconciliation after
the next one, its look-up saying filled, made the fill up at the order's limit price with an ALERT
"its executions never came" and the real execution was then ignored (seen failing so).

FakeVenue (tests/support/fakes.py, through UnknownVenue) is the remote side; time is a fake clock."""

from __future__ import annotations

from loguru import logger
from ml4t.backtest import OrderSide, OrderStatus, OrderType

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.events import OrderFilled
from ml4t_live.protocols import VenueOrder, VenuePosition
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import WHEN, UnknownVenue, at, start


def said(cid: str, status: str, filled: float) -> VenueOrder:
    return VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, filled, OrderType.LIMIT, status, 99.0)


def test_an_unknown_cancelling_order_found_open_is_no_longer_owed(tmp_path):
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock, spacing=20.0)
    broker.cancel_resends = CancelResends(clock=clock)
    cid = order.order_id
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        assert broker.cancel_order(cid) and cid in broker.book.cancelling
        at(broker, clock, 20.0)  # the unknown look-up: not found (a miss)
        venue.answers[cid] = (said(cid, "filled", 10), [])  # a stale look-up: filled, nothing reported
        at(broker, clock, 30.0)  # the cancel's first check: not listed, looked up: found filled
        assert cid in broker.owed and broker.cancel_resends.snapshot()[cid]["found_filled"]
        venue.answers[cid] = (said(cid, "open", 0), [])
        at(broker, clock, 40.0)  # the unknown look-up: working; its cancel sent again
        assert venue.cancelled == [cid, cid]
        assert cid not in broker.owed and not broker.cancel_resends.snapshot()[cid]["found_filled"]
        assert any(f"order {cid}: listed working after a look-up found it filled" in line for line in lines)
        # the venue fills it now; its execution is on its way
        venue.answers[cid] = (said(cid, "filled", 10), [])
        venue.positions["AAA"] = VenuePosition("AAA", 10.0, 98.5)
        for t in (50.0, 60.0):  # two reconciliations: an owed order would be made up at the second
            broker.own.check_soon()
            at(broker, clock, t)
        assert not [line for line in lines if "its executions never came" in line]
        assert order.filled_quantity == 0
        venue.events.put(OrderFilled(cid, "X1", "AAA", OrderSide.BUY, 10, 98.5, WHEN, 1.0, 10))
        at(broker, clock, 70.0)
        assert order.status is OrderStatus.FILLED and order.filled_quantity == 10
        fills = broker.get_fills()
        assert len(fills) == 1 and fills[0].price == 98.5
        assert broker.link.journal.positions() == {"AAA": 10.0}
    finally:
        logger.remove(sink)
        broker.close()
