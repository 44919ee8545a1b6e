"""``max_open_orders`` counts an order whose cancel has gone unanswered past its first check.

The strategy cancels its working limit order; the venue loses that cancel (the order keeps
working, the runtime follows it in ``Book.cancelling`` and checks it 30 s later). With
``max_open_orders = 1``, once that check found it unanswered the next order would make two
working at the venue: it is refused, and the status line counts both. A cancel and its
replacement in one bar keep the backtest's answer (the cancel is done at once there): the
replacement leaves. FakeVenue (tests/support/fakes.py) is the remote side; the schedule's clock is
a fake clock the strategy moves 30 s a bar.
"""

from __future__ import annotations

import json

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import read_only
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import drive
from tests.engine.cancel_venues import TimedVenue
from tests.engine.fake_clock import Clock


class CancelThenBuy(Strategy):
    """Bar 1: a limit buy (never reached); bar ``cancel_at``: cancels it; bar ``buy_at``: a second
    limit buy (after the cancel when both are in one bar)."""

    def __init__(self, clock: Clock, cancel_at: int, buy_at: int) -> None:
        self.clock, self.cancel_at, self.buy_at = clock, cancel_at, buy_at
        self.bars = 0
        self.first = self.second = None

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            self.first = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
        if self.bars == self.cancel_at:
            broker.cancel_order(self.first.order_id)
        if self.bars == self.buy_at:
            self.second = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=89.0)
        self.clock.now += 30.0


def _run(tmp_path, *, lost: int, cancel_at: int = 2, buy_at: int = 3):
    venue = TimedVenue(fill_on_wait=False, lost=lost)
    strategy = CancelThenBuy(venue.clock, cancel_at, buy_at)
    broker = VenueBroker(venue, strategy_id="oc", state_dir=tmp_path, risk={"max_open_orders": 1})
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 4, "keep")
    return venue, strategy, lines


def test_an_order_whose_cancel_went_unanswered_counts_toward_max_open_orders(tmp_path):
    venue, strategy, lines = _run(tmp_path, lost=99)
    assert strategy.first.status is OrderStatus.CANCELLED  # for the strategy; the venue still works it
    assert [o.client_order_id for o in venue.open_orders] == [strategy.first.order_id]
    assert strategy.second.status is OrderStatus.REJECTED
    assert "max_open_orders: 1 working + this one = 2 > 1" in strategy.second.rejection_reason
    assert len(venue.placed) == 1  # the refused order never reached the venue
    assert any("refused: max_open_orders" in line for line in lines), lines
    journal = read_only(tmp_path / "fake-DU0001-oc.journal")
    try:
        usage = {row["limit"]: row["usage"] for row in json.loads(journal.meta("risk_usage"))}
    finally:
        journal.close()
    assert usage["max_open_orders"].startswith("1"), usage  # the one the venue still works


def test_a_cancel_and_its_replacement_in_one_bar_keep_the_place(tmp_path):
    venue, strategy, _ = _run(tmp_path, lost=99, cancel_at=2, buy_at=2)
    assert strategy.second.status is OrderStatus.PENDING  # as in the backtest: the cancel is done
    assert len(venue.placed) == 2


def test_a_confirmed_cancel_frees_its_place(tmp_path):
    venue, strategy, _ = _run(tmp_path, lost=0)
    assert [o.client_order_id for o in venue.open_orders] == [strategy.second.order_id]
    assert strategy.second.status is OrderStatus.PENDING
