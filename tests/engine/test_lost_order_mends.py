"""Regressions (review of the unknown-outcome look-ups, 5f51e88, and the restart look-up):

* an order the runtime declared lost that the venue later reports working (an accepted event, or
  listed open at a reconciliation or a warm restart) is cancelled at once and followed until the
  venue confirms; its fills count once; its journal intent stays ``lost`` (never ``accepted``);
* in the session a look-up that says "filled" without its executions makes up no fill: the real
  execution, arriving later, counts once;
* the restart's look-up of an order the venue no longer lists is one miss, not a verdict, when
  the order's outcome was already unknown before the restart (the venue did not answer its
  send): it is lost only after the bounded, aged misses of the in-session look-ups. Any other
  order the restart's look-up does not find is lost at once (the earlier run sent it at least a
  restart ago), or, when its cancel had been sent, ended while away.

FakeVenue (tests/support/fakes.py) is the remote side; a fake clock drives the look-ups' spacing.
"""

from __future__ import annotations

from ml4t.backtest import OrderSide, OrderStatus, OrderType

from ml4t_live.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
)
from ml4t_live.journal.operator_access import read_only
from ml4t_live.protocols import VenueOrder
from tests.engine.fake_clock import Clock
from tests.engine.lookup_support import declared_lost, working
from tests.engine.unknown_outcome_support import (
    WHEN,
    ConfirmsCancels,
    UnknownVenue,
    at,
    run_limit_then_watch,
    start,
)


def test_a_lost_order_that_surfaces_accepted_is_cancelled_followed_and_its_fill_counts_once(logs):
    clock = Clock()
    venue, broker, order = declared_lost(clock)
    cid = order.order_id
    journal = broker.link.journal
    assert venue.cancelled == [cid]  # declared lost: a cancel for its id, in case the venue has it
    venue.events.put(OrderAccepted(cid, "V1"))  # ... it has: the order works after all
    at(broker, clock, 15.0)
    assert venue.cancelled == [cid, cid], "the surfaced lost order was not cancelled"
    assert cid in broker.book.cancelling  # followed until the venue confirms
    assert journal.intents()[cid]["status"] == "lost"  # never 'accepted' over the terminal 'lost'
    assert [m for level, m in logs if level == "ERROR" and cid in m and "declared lost but the venue works it" in m]
    assert order.status is OrderStatus.REJECTED and broker.get_pending_orders() == []  # as the strategy saw it
    # a part that beat the cancel, then the venue's confirmation
    venue.events.put(OrderPartiallyFilled(cid, "X1", "AAA", OrderSide.BUY, 4, 99.0, WHEN, 1.0, 4))
    venue.events.put(OrderPartiallyFilled(cid, "X1", "AAA", OrderSide.BUY, 4, 99.0, WHEN, 1.0, 4))  # again
    venue.events.put(OrderCancelled(cid, "cancelled"))
    at(broker, clock, 20.0)
    assert cid not in broker.book.cancelling and cid not in broker.book.open
    assert order.filled_quantity == 4 and broker.get_position("AAA").quantity == 4
    assert journal.positions() == {"AAA": 4.0}
    intent = journal.intents()[cid]
    assert (intent["status"], intent["filled"]) == ("lost", 4.0)
    assert venue.placed and len(venue.placed) == 1  # never re-sent
    broker.close()


def test_a_lost_order_listed_working_at_a_reconciliation_is_cancelled():
    clock = Clock()
    venue, broker, order = declared_lost(clock)
    cid = order.order_id
    venue.open_orders.append(working(cid))
    broker.own.check_soon()
    broker.reconcile_if_due()
    assert venue.cancelled == [cid, cid] and cid in broker.book.cancelling
    broker.reconcile_if_due("end of run")  # (not due again) nothing more
    assert venue.cancelled == [cid, cid]
    broker.close()


def test_a_lost_order_the_venue_lists_working_at_a_warm_restart_is_cancelled(tmp_path, logs):
    venue = ConfirmsCancels(reached=True, fill_on_wait=False)
    venue.lookup = lambda cids: (venue.looked_up.append(list(cids)), {})[1]  # its lists lag
    _, first = run_limit_then_watch(venue, 4, state_dir=tmp_path)
    cid = first.order.order_id
    assert first.order.rejection_code == "lost" and venue.cancelled == [cid]
    venue.open_orders.append(working(cid))  # it surfaces while the process is down
    broker, second = run_limit_then_watch(venue, 5, state_dir=tmp_path, end="cancel")
    assert venue.cancelled == [cid, cid], "the restart left a surfaced lost order working"
    assert [m for level, m in logs if level == "ERROR" and cid in m and "listed working at the restart" in m]
    assert broker.left_at_venue == []  # the cancel was confirmed
    assert second.order.status is OrderStatus.REJECTED  # the strategy sees what it saw before
    assert len(venue.placed) == 1  # never re-sent


def test_in_session_a_filled_look_up_without_executions_makes_up_no_fill():
    clock = Clock()
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    broker, order = start(venue, clock)
    cid = order.order_id
    # the look-up says filled 10, its executions did not come with it
    venue.answers[cid] = (VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 10, OrderType.LIMIT, "filled", 99.0), [])
    at(broker, clock, 5.0)
    assert order.filled_quantity == 0 and broker.get_position("AAA") is None  # nothing made up
    assert order.status is OrderStatus.PENDING and cid in broker.book.acknowledged  # the venue has it
    # the real execution arrives under its own execution id
    venue.events.put(OrderFilled(cid, "X1", "AAA", OrderSide.BUY, 10, 98.5, WHEN, 1.0, 10))
    at(broker, clock, 10.0)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10
    assert broker.get_position("AAA").quantity == 10 and len(broker.get_fills()) == 1
    journal = broker.link.journal
    assert journal.positions() == {"AAA": 10.0} and journal.intents()[cid]["status"] == "filled"
    at(broker, clock, 60.0)
    assert venue.looked_up == [[cid]]  # no longer of unknown outcome: never lost
    broker.close()


def test_the_restart_look_up_is_one_miss_and_the_order_is_lost_only_after_the_bound(tmp_path, logs):
    venue = UnknownVenue(reached=True, fill_on_wait=False)
    venue.lookup = lambda cids: (venue.looked_up.append(list(cids)), {})[1]  # its lists lag
    _, first = run_limit_then_watch(venue, 2, misses=3, spacing=3600.0, state_dir=tmp_path)  # ended before any look-up
    cid = first.order.order_id
    assert venue.looked_up == [] and first.order.status is OrderStatus.PENDING
    _, second = run_limit_then_watch(venue, 6, misses=3, state_dir=tmp_path)
    # the restart's look-up, then the in-session ones; the third miss is the bound
    assert len(venue.looked_up) == 3
    assert second.seen[0] is OrderStatus.PENDING, "the restart declared the order lost after one miss"
    assert second.seen[-1] is OrderStatus.REJECTED and second.order.rejection_code == "lost"
    assert "3 look-ups" in second.order.rejection_reason
    alerts = [m for level, m in logs if level == "ERROR" and m.startswith(f"ALERT order {cid} is lost")]
    assert len(alerts) == 1
    assert len(venue.placed) == 1  # never re-sent


def test_a_restored_cancelling_order_never_found_ends_cancelled_not_lost(tmp_path, logs):
    venue = UnknownVenue(reached=False, fill_on_wait=False)
    venue.armed = False  # (every order reaches the venue; the limit keeps working)
    venue.lookup = lambda cids: (venue.looked_up.append(list(cids)), {})[1]
    _, first = run_limit_then_watch(venue, 2, state_dir=tmp_path, end="cancel")  # its end-of-run cancel is never confirmed
    cid = first.order.order_id
    assert venue.cancelled == [cid]
    # the venue no longer lists it when the run ends: the end's check looks it up, not found
    assert venue.looked_up == [[cid]] and first.order.status is OrderStatus.CANCELLED
    # the venue acted on that cancel after the process ended and no longer lists the order
    broker, second = run_limit_then_watch(venue, 5, state_dir=tmp_path)
    assert len(venue.looked_up) == 2 and second.order.status is OrderStatus.CANCELLED
    assert broker.left_at_venue == [] and cid not in broker.book.cancelling
    journal = read_only(next(tmp_path.glob("*.journal")))
    intent = journal.intents()[cid]
    journal.close()
    assert intent["status"] == "cancelled" and intent["reason"].startswith("ended while away")
    assert not [m for level, m in logs if level == "ERROR" and cid in m]
    assert [m for level, m in logs if level == "WARNING" and cid in m and "ended while away" in m]


def test_an_order_the_venue_took_and_no_longer_knows_after_a_restart_is_lost_at_once(tmp_path, logs):
    """Its outcome was known (the venue took it): the restart's look-up is the verdict, as the
    fault suite's kill-before-send scenario needs (a restart a second later must not leave it
    pending for the in-session look-ups' half minute)."""
    venue = UnknownVenue(reached=False, fill_on_wait=False)
    venue.armed = False  # (the order reaches the venue: no unknown outcome)
    venue.lookup = lambda cids: (venue.looked_up.append(list(cids)), {})[1]
    _, first = run_limit_then_watch(venue, 2, state_dir=tmp_path, misses=3, spacing=3600.0)
    cid = first.order.order_id
    assert first.order.status is OrderStatus.PENDING and venue.looked_up == []
    venue.open_orders = [o for o in venue.open_orders if o.client_order_id != cid]  # the venue forgot it
    _, second = run_limit_then_watch(venue, 5, state_dir=tmp_path, misses=3, spacing=3600.0)
    assert venue.looked_up == [[cid]]
    # seen[0] is the replayed bar (as the first run saw it); every live bar sees it lost
    assert second.seen[0] is OrderStatus.PENDING and len(second.seen) == 4
    assert set(second.seen[1:]) == {OrderStatus.REJECTED} and second.order.rejection_code == "lost"
    assert [m for level, m in logs if level == "ERROR" and m.startswith(f"ALERT order {cid} is lost")]
    journal = read_only(next(tmp_path.glob("*.journal")))
    assert journal.intents()[cid]["status"] == "lost"
    journal.close()
    assert len(venue.placed) == 1  # never re-sent
