"""A bug in a gateway's cancel (not the venue's answer) where the strategy cancels its own order
and where the runtime cancels an order it declared lost: neither ends the run, as in the runtime's
cancels (tests/engine/test_cancel_one_bug.py). The strategy's cancel answers False (the order
PENDING, followed as a refused runtime cancel, its first check due at once, also after a warm
restart); a lost order's cancel is the expected "not taken"; a surfaced lost order's cancel is
followed as sent, its first check due at once. Before, the bug went out of ``cancel_order``
(failing the run in ``on_data``) and out of the lost order's cancels (failing the fill barrier);
then (f0d6c3b) the strategy's cancel answered True though it may never have gone out."""

from __future__ import annotations

from dataclasses import dataclass

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import CancelUnsure
from ml4t_live.events import OrderAccepted
from ml4t_live.order_commands import STRATEGY_CANCEL
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import drive, journal_of
from tests.engine.cancel_support import run as run_halted
from tests.engine.cancel_venues import BugOnCancel, TimedVenue
from tests.engine.fake_clock import Clock
from tests.engine.lookup_support import declared_lost, working
from tests.engine.unknown_outcome_support import at

_BUG = "'NoneType' object is not subscriptable"


class CancelsItsLimit(Strategy):
    """A limit buy (never reached) on its first bar, cancelled on the second; each bar moves the
    clock on 10 s (a cancel's first check is due 30 s after it, at once when unsure). ``seen``:
    the order's status at each bar after the cancel (the first: as ``cancel_order`` left it)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.order = None
        self.answers: list[bool] = []
        self.seen: list[OrderStatus] = []

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
        elif not self.answers:
            self.answers.append(broker.cancel_order(self.order.order_id))
        if self.answers:
            self.seen.append(self.order.status)
        self.clock.now += 10.0


@dataclass
class WentOutThenBug(BugOnCancel):
    """BugOnCancel whose buggy cancel raises after it reached the venue (the order cancelled there,
    its OrderCancelled on the way); ``always``: every cancel raises (before it reaches the venue)."""

    always: bool = False

    def cancel(self, client_order_id):
        if self.always:
            self.times.append(self.clock.now - 1000.0)
            raise TypeError(_BUG)
        self.calls += 1
        if self.calls == self.bug_at:
            TimedVenue.cancel(self, client_order_id)  # (noted, cancelled and confirmed)
            raise TypeError(_BUG)
        super().cancel(client_order_id)


def _cancels(venue, tmp_path, bars=5):
    strategy = CancelsItsLimit(venue.clock)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    return strategy, broker, drive(strategy, broker, bars, "keep")


def _warned(lines, cid):
    return [line for line in lines if line.startswith("WARNING") and f"the strategy's cancel of {cid} raised a "
            "bug (TypeError)" in line and "it stays pending (cancel_order returned False)" in line]  # fmt: skip


def test_the_strategys_cancel_that_raises_a_bug_answers_false_and_is_followed_until_a_repeat_is_taken(tmp_path):
    # a review probe of f0d6c3b: cancel_order answered True (CANCELLED for the strategy) though the
    # cancel may never have gone out; the order could then fill after a replacement was placed
    venue = BugOnCancel(fill_on_wait=False, lost=0, bug_at=1)
    strategy, broker, lines = _cancels(venue, tmp_path)
    order = strategy.order
    cid = order.order_id
    assert strategy.answers == [False]
    assert strategy.seen[0] is OrderStatus.PENDING and strategy.seen[1] is OrderStatus.CANCELLED, strategy.seen
    assert venue.times == [10.0, 20.0], venue.times  # the bug; the next bar's check, not 30 s later
    assert venue.cancelled == [cid]  # the repeat was taken
    assert order.status is OrderStatus.CANCELLED and order.cancellation_reason == STRATEGY_CANCEL
    assert [line for line in lines if line.startswith("ERROR") and cid in line and "raised TypeError" in line]
    assert _warned(lines, cid), lines
    assert not broker.book.cancelling and broker.left_at_venue == []
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled"


def test_the_strategys_cancel_that_went_out_before_its_bug_ends_pending_to_cancelled_by_the_venue(tmp_path):
    venue = WentOutThenBug(fill_on_wait=False, lost=0, bug_at=1)
    strategy, broker, _ = _cancels(venue, tmp_path)
    order = strategy.order
    cid = order.order_id
    assert strategy.answers == [False] and strategy.seen[:2] == [OrderStatus.PENDING, OrderStatus.CANCELLED]
    assert venue.times == [10.0] and venue.cancelled == [cid]  # not listed working: not sent again
    assert cid not in broker.cancel_resends.refused_open and broker.left_at_venue == []
    assert journal_of(tmp_path)[0][cid]["status"] == "cancelled"


def test_the_strategys_cancel_whose_bug_repeats_stays_pending_and_replays_false_after_a_warm_restart(tmp_path):
    venue = WentOutThenBug(fill_on_wait=False, lost=0, always=True)
    strategy, broker, _ = _cancels(venue, tmp_path)
    order = strategy.order
    cid = order.order_id
    assert strategy.answers == [False] and set(strategy.seen) == {OrderStatus.PENDING}
    assert len(venue.times) > 1 and venue.cancelled == []  # sent again while listed working: the bug again
    assert broker.left_at_venue == [order] and cid in broker.cancel_resends.refused_open
    assert journal_of(tmp_path)[0][cid]["status"] != "cancelled"
    venue.always = False  # the next run's gateway has no bug: its first check sends the cancel again
    tries = len(venue.times)
    strategy, broker, _ = _cancels(venue, tmp_path, bars=8)
    assert strategy.answers == [False]  # replayed from the journal: the same answer (no divergence)
    assert venue.cancelled == [cid] and len(venue.times) == tries + 1  # the restored follow-up's repeat
    assert strategy.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
    assert journal_of(tmp_path)[0][cid]["status"] == "cancelled"


def test_the_cancel_of_an_order_declared_lost_that_raises_a_bug_is_not_taken_and_fails_nothing(logs):
    clock = Clock()
    venue, broker, order = declared_lost(clock, raise_on={"cancel": TypeError(_BUG)})
    cid = order.order_id
    assert venue.cancelled == [] and order.rejection_code == "lost"
    assert [m for level, m in logs if level == "ERROR" and f"cancel of {cid} raised TypeError" in m]
    assert [m for level, m in logs if level == "INFO" and cid in m and "was not taken" in m]
    broker.close()


def test_the_cancel_of_a_surfaced_lost_order_that_raises_a_bug_is_followed_and_sent_again_at_once(logs):
    clock = Clock()
    venue, broker, order = declared_lost(clock)
    broker.cancel_resends = CancelResends(clock=clock)
    cid = order.order_id
    assert venue.cancelled == [cid]
    venue.raise_on["cancel"] = TypeError(_BUG)
    venue.open_orders.append(working(cid))
    venue.events.put(OrderAccepted(cid, "V1"))  # the venue works it after all
    at(broker, clock, 15.0)  # surfaced: its cancel raises the bug; the same barrier's check sends it again
    assert venue.cancelled == [cid, cid] and cid in broker.book.cancelling  # followed (the venue has not confirmed)
    assert [m for level, m in logs if level == "WARNING" and f"surfaced lost order {cid} raised a bug (TypeError)"
            in m], logs  # fmt: skip
    assert order.status is OrderStatus.REJECTED and order.rejection_code == "lost"
    broker.close()


_UNSURE = "cancel of the order: no answer, the connection reset while it was sent"


def test_a_cancel_unsure_without_a_bug_as_cause_is_said_as_such_not_as_a_bug_of_type_nonetype(tmp_path, logs):
    # a review probe of f0d6c3b: a gateway raising CancelUnsure itself (no __cause__) was logged
    # "raised a bug (NoneType)" by the strategy's cancel and by a surfaced lost order's
    venue = BugOnCancel(fill_on_wait=False, lost=0, bug_at=0)
    venue.raise_on["cancel"] = CancelUnsure(_UNSURE)
    strategy, _, _ = _cancels(venue, tmp_path)
    cid = strategy.order.order_id
    assert strategy.answers == [False] and strategy.order.status is OrderStatus.CANCELLED  # the repeat taken
    assert [m for level, m in logs if level == "WARNING" and f"the strategy's cancel of {cid} was unsure "
            f"({_UNSURE}); whether it went out is unknown" in m], logs  # fmt: skip
    clock = Clock()
    venue, broker, order = declared_lost(clock)
    broker.cancel_resends = CancelResends(clock=clock)
    cid = order.order_id
    venue.raise_on["cancel"] = CancelUnsure(_UNSURE)
    venue.open_orders.append(working(cid))
    venue.events.put(OrderAccepted(cid, "V1"))
    at(broker, clock, 15.0)  # surfaced: its cancel is unsure
    assert [m for level, m in logs if level == "WARNING" and f"surfaced lost order {cid} was unsure ({_UNSURE})"
            in m], logs  # fmt: skip
    broker.close()
    # and a runtime cancel's (a review probe of dba146d: the halt's cancel still said "raised a bug (NoneType)")
    venue = BugOnCancel(fill_on_wait=False, lost=0, bug_at=0)
    venue.raise_on["cancel"] = CancelUnsure(_UNSURE)
    strategy, _, _ = run_halted(venue, 4, tmp_path / "halt", n=1, end="keep")
    cid = strategy.orders[0].order_id
    assert [m for level, m in logs if level == "WARNING" and f"the cancel of {cid} was unsure ({_UNSURE}); "
            "whether it went out is unknown: it is cancelling" in m], logs  # fmt: skip
    assert not [m for _, m in logs if "NoneType" in m]


@dataclass
class AlwaysUnsure(BugOnCancel):
    """BugOnCancel whose every cancel raises CancelUnsure itself (no bug as its cause)."""

    def cancel(self, client_order_id):
        raise CancelUnsure(_UNSURE)


def test_the_alert_of_a_strategys_cancel_unsure_without_a_bug_does_not_say_it_raised_a_bug(tmp_path):
    # a review probe of 8f77d89: the strategy's cancel was followed as one that raised a bug
    # (bug=True) whatever the CancelUnsure; one the gateway raised itself (no __cause__) was
    # ALERTed "the strategy's cancel raised a bug in the gateway"
    venue = AlwaysUnsure(fill_on_wait=False, lost=0, bug_at=0)
    strategy, broker, _ = _cancels(venue, tmp_path, bars=3)
    cid = strategy.order.order_id
    assert strategy.answers == [False] and cid in broker.cancel_resends.refused_open
    alert = broker.cancel_resends.alert(cid)
    assert "raised a bug" not in alert and _UNSURE in alert, alert
    broker.close()


def test_the_alert_of_a_strategys_cancel_that_raised_a_bug_says_so_not_that_the_venue_refused_it():
    # a review probe of 158a9c2: the ALERT said "the venue refused its cancel (strategy cancel; ...)
    # ...; the venue's last refusal: cancel of ... raised TypeError: ... (a bug in the venue
    # gateway, not the venue's answer)", contradicting itself
    text = f"cancel of c1 raised TypeError: {_BUG} (a bug in the venue gateway, not the venue's answer)"
    resends = CancelResends(clock=Clock())
    resends.refused("c1", STRATEGY_CANCEL, text, bug=True)
    resends.checked("c1", listed=True)
    alert = resends.alert("c1")
    assert alert.startswith("ALERT order c1: the strategy's cancel raised a bug in the gateway (sent again 0 "
                            "time(s)); whether it went out is unknown, and the venue still listed it working")
    assert f"; the last error: {text}" in alert and "refus" not in alert, alert
    restored = CancelResends(clock=Clock())  # a warm restart carries it
    restored.restore(resends.snapshot(), [], ["c1"], [STRATEGY_CANCEL])
    assert restored.alert("c1").startswith(alert), restored.alert("c1")
    refusal = "IB refused the cancel of c1: error 10148"  # a later check's repeat the venue refused
    resends.checked("c1", listed=True, sent=True, refused=refusal)
    alert = resends.alert("c1")
    assert "the strategy's cancel raised a bug in the gateway" in alert
    assert f"; the venue's last refusal: {refusal}" in alert and "the last error" not in alert, alert
