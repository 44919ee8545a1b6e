"""``OwedExecutions.listed_working`` on an order in doubt (a look-up said "filled" no more than its
fills while it is short of its quantity): listed working, it is no longer owed, so stale "filled"
answers never end it CANCELLED while the venue works it, and a later finding of the doubt starts
afresh (its ALERT again, the count of the reconciliations' answers from 0). Unit tests of the
class on the broker's book (an order of unknown outcome part filled 4 of 10 by its execution);
the look-up answers are the venue's as a gateway gives them. Two mutants survived every test
before these: M1, the doubt not forgotten (``_doubted`` not popped: the next finding only "says
again" and the count goes on, ending the order CANCELLED at the first reconciliation answer
after it); M2, an order in doubt keeping its debt (after ``DOUBT_READS`` stale answers it ends
CANCELLED while the venue works it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger
from ml4t.backtest import OrderSide, OrderStatus, OrderType

from ml4t_live.events import OrderPartiallyFilled
from ml4t_live.owed_executions import DOUBT_READS, settle
from ml4t_live.protocols import VenueOrder
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import WHEN, UnknownVenue, at, start


@contextmanager
def _logged() -> Iterator[list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)


def _part_filled():
    """The broker and its order of unknown outcome, part filled 4 of 10 (its execution applied),
    and the venue's answer that says "filled" 4: a doubt."""
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock, spacing=1e9)
    cid = order.order_id
    venue.events.put(OrderPartiallyFilled(cid, "X1", "AAA", OrderSide.BUY, 4, 98.5, WHEN, 1.0, 4))
    at(broker, clock, 1.0)
    assert order.status is OrderStatus.PENDING and order.filled_quantity == 4
    said = VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 4, OrderType.LIMIT, "filled", 99.0)
    return broker, order, said


def _reconcile(broker, answer: VenueOrder) -> None:
    """One reconciliation's look-up of the owed orders (``settle``), the venue answering ``answer``,
    then the reconciliation passes."""
    settle(broker.owed, lambda cids: {c: answer for c in cids}, broker._drain, broker._apply_live,
           broker._take_venue_end, listed=broker._listed_now)  # fmt: skip
    broker.owed.passed()


def test_an_order_in_doubt_listed_working_is_no_longer_owed_and_stale_answers_never_end_it():
    broker, order, said = _part_filled()
    owed, cid = broker.owed, order.order_id
    try:
        owed.owe(order, said, "(found by look-up)")
        _reconcile(broker, said)
        _reconcile(broker, said)  # in doubt, counted: 1
        assert cid in owed
        assert owed.listed_working(cid) and cid not in owed
        for _ in range(DOUBT_READS + 1):  # stale answers "filled" 4 for an order the venue works
            _reconcile(broker, said)
        assert order.status is OrderStatus.PENDING and order.filled_quantity == 4  # (M2: CANCELLED)
        assert owed.due() == []
    finally:
        broker.close()


def test_a_doubt_found_again_after_a_listing_starts_afresh():
    broker, order, said = _part_filled()
    owed, cid = broker.owed, order.order_id
    try:
        with _logged() as lines:
            owed.owe(order, said, "(found by look-up)")
            _reconcile(broker, said)
            for _ in range(DOUBT_READS - 1):  # the reconciliations' answers, counted up to DOUBT_READS - 1
                _reconcile(broker, said)
            assert order.status is OrderStatus.PENDING and cid in owed
            owed.listed_working(cid)
            owed.owe(order, said, "(found by look-up)")  # a later check's look-up: in doubt again
            alerts = [m for level, m in lines if level == "ERROR" and "ALERT" in m and cid in m]
            assert len(alerts) == 2, lines  # (M1: one, the second finding only "says again")
            _reconcile(broker, said)
            for _ in range(DOUBT_READS - 1):  # counted from 0 again: not ended before DOUBT_READS answers
                _reconcile(broker, said)
                assert order.status is OrderStatus.PENDING, lines  # (M1: CANCELLED at the first)
            _reconcile(broker, said)
        assert order.status is OrderStatus.CANCELLED and order.filled_quantity == 4  # the DOUBT_READS-th
        assert "ended CANCELLED at its fills" in order.cancellation_reason
    finally:
        broker.close()
