"""A bug in a gateway's cancel (not the venue's answer) where the strategy cancels its own order
and where the runtime cancels an order it declared lost: neither ends the run, as in the runtime's
cancels (tests/engine/test_cancel_one_bug.py). The strategy's cancel is taken as sent (True, the
order CANCELLED and cancelling, its first check due at once); a lost order's cancel is the expected
"not taken"; a surfaced lost order's cancel is followed as sent, its first check due at once.
Before, the bug went out of ``cancel_order`` (failing the run in ``on_data``) and out of the lost
order's cancels (failing the fill barrier)."""

from __future__ import annotations

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.events import OrderAccepted
from ml4t_live.venue_broker import VenueBroker
from tests.engine.test_cancel_one_bug import BugOnCancel
from tests.engine.test_cancel_resend import drive, journal_of
from tests.engine.test_lost_order_mends import _declared_lost, _working
from tests.engine.test_unknown_lookup import Clock, at, logs

__all__ = ["logs"]  # (the fixture, used by name)

_BUG = "'NoneType' object is not subscriptable"


class CancelsItsLimit(Strategy):
    """A limit buy (never reached) on its first bar, cancelled on the second; each bar moves the
    clock on 10 s (a cancel's first check is due 30 s after it, at once when unsure)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.order = None
        self.answers: list[bool] = []

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
        elif not self.answers:
            self.answers.append(broker.cancel_order(self.order.order_id))
        self.clock.now += 10.0


def test_the_strategys_cancel_that_raises_a_bug_is_taken_as_sent_and_checked_at_once(tmp_path):
    venue = BugOnCancel(fill_on_wait=False, lost=0, bug_at=1)
    strategy = CancelsItsLimit(venue.clock)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 5, "keep")
    order = strategy.order
    cid = order.order_id
    assert strategy.answers == [True]
    assert order.status is OrderStatus.CANCELLED and order.cancellation_reason == "user"
    assert venue.times == [10.0, 20.0], venue.times  # the bug; the next bar's check, not 30 s later
    assert venue.cancelled == [cid]  # the repeat was taken
    assert [line for line in lines if line.startswith("ERROR") and cid in line and "raised TypeError" in line]
    assert [line for line in lines if line.startswith("WARNING") and f"the strategy's cancel of {cid} raised a "
            "bug (TypeError)" in line], lines  # fmt: skip
    assert not broker.book.cancelling and broker.left_at_venue == []
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled"


def test_the_cancel_of_an_order_declared_lost_that_raises_a_bug_is_not_taken_and_fails_nothing(logs):
    clock = Clock()
    venue, broker, order = _declared_lost(clock, raise_on={"cancel": TypeError(_BUG)})
    cid = order.order_id
    assert venue.cancelled == [] and order.rejection_code == "lost"
    assert [m for level, m in logs if level == "ERROR" and f"cancel of {cid} raised TypeError" in m]
    assert [m for level, m in logs if level == "INFO" and cid in m and "was not taken" in m]
    broker.close()


def test_the_cancel_of_a_surfaced_lost_order_that_raises_a_bug_is_followed_and_sent_again_at_once(logs):
    clock = Clock()
    venue, broker, order = _declared_lost(clock)
    broker.cancel_resends = CancelResends(clock=clock)
    cid = order.order_id
    assert venue.cancelled == [cid]
    venue.raise_on["cancel"] = TypeError(_BUG)
    venue.open_orders.append(_working(cid))
    venue.events.put(OrderAccepted(cid, "V1"))  # the venue works it after all
    at(broker, clock, 15.0)  # surfaced: its cancel raises the bug; the same barrier's check sends it again
    assert venue.cancelled == [cid, cid] and cid in broker.book.cancelling  # followed (the venue has not confirmed)
    assert [m for level, m in logs if level == "WARNING" and f"surfaced lost order {cid} raised a bug (TypeError)"
            in m], logs  # fmt: skip
    assert order.status is OrderStatus.REJECTED and order.rejection_code == "lost"
    broker.close()
