"""``max_open_orders`` counts an order whose cancel the venue never confirmed: it still works there.

The strategy cancels its working limit order; the venue loses that cancel (the order keeps
working, the runtime follows it in ``Book.cancelling``). With ``max_open_orders = 1`` the next
order would make two working at the venue: it is refused, and the status line counts both.
FakeVenue (tests/support/fakes.py) is the remote side.
"""

from __future__ import annotations

import json

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.journal.store import read_only
from ml4t_live.venue_broker import VenueBroker
from tests.engine.test_cancel_resend import Clock, TimedVenue, drive


class CancelThenBuy(Strategy):
    """Bar 1: a limit buy (never reached); bar 2: cancels it; bar 3: a second limit buy."""

    def __init__(self) -> None:
        self.bars = 0
        self.first = self.second = None

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            self.first = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
        elif self.bars == 2:
            broker.cancel_order(self.first.order_id)
        elif self.bars == 3:
            self.second = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=89.0)


def _run(tmp_path, lost: int):
    venue = TimedVenue(fill_on_wait=False, lost=lost, clock=Clock())
    strategy = CancelThenBuy()
    broker = VenueBroker(venue, strategy_id="oc", state_dir=tmp_path, risk={"max_open_orders": 1})
    lines = drive(strategy, broker, 4, "keep")
    return venue, strategy, lines


def test_an_order_whose_cancel_is_unconfirmed_counts_toward_max_open_orders(tmp_path):
    venue, strategy, lines = _run(tmp_path, lost=1)
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


def test_a_confirmed_cancel_frees_its_place(tmp_path):
    venue, strategy, _ = _run(tmp_path, lost=0)
    assert venue.open_orders and [o.client_order_id for o in venue.open_orders] == [strategy.second.order_id]
    assert strategy.second.status is OrderStatus.PENDING
