"""Regression (found by review, fixed): With --retain (Book.forget after each bar), an order declared LOST is dropped from by_id; when
it turns up filled (IB-09 surface_after), Book.apply treats the execution as 'not this
strategy's': not applied, not journaled."""
from ml4t.backtest import BacktestConfig

from ml4t_live.events import OrderLost
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue


def test_lost_then_filled_with_retain(tmp_path):
    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="rt", state_dir=tmp_path)
    broker.connect(BacktestConfig())
    order = broker.submit_order("AAA", 10)
    venue.events.put(OrderLost(order.order_id, "not found after 3 look-ups"))
    broker.settle(0)
    broker.take_new_records()
    broker.forget_records(0)  # what RecordKeeper.after_bar does with retain=0
    venue.fill(venue.placed[0])
    broker.settle(0)
    broker.link.journal.commit()
    journal_pos = broker.link.journal.positions()
    pos = broker.get_position("AAA")
    broker.close()
    assert pos is not None and pos.quantity == 10 and journal_pos == {"AAA": 10.0}, (pos, journal_pos)
