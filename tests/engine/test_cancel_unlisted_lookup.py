"""A cancelling order the venue no longer lists is looked up by client order id in the session.

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar, the next bar cancels its working limit order (t=30 s of the fake clock, 30 s a
bar). The venue carries the cancel out without ever confirming it (the order leaves its open
orders, no event comes: a dropped stream message). At the first check (t=60 s) the runtime finds
it no longer listed and asks the venue by client order id: the end the venue gives it ends it now.
Before, it stayed cancelling for the rest of the run (CANCELLED for the strategy, but counted as
working by ``max_open_orders``) and ended in an ALERT; only a warm restart looked it up.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml4t.backtest import OrderStatus, OrderType

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import LookupIncomplete
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import (
    HaltedLimits,
    alert_lines,
    drive,
    journal_of,
    run,
)
from tests.engine.cancel_venues import LooksUp


def test_an_unlisted_cancelling_order_the_venue_says_cancelled_ends_at_the_first_check(tmp_path):
    venue = LooksUp(fill_on_wait=False)
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.looked_up == [[cid]]  # once, at the first check; it ended there
    assert venue.times == [30.0]  # nothing sent again
    assert not alert_lines(lines, cid)
    assert cid not in broker.book.cancelling and broker.left_at_venue == []
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled"


def test_an_unlisted_cancelling_order_the_venue_says_filled_takes_its_fill_once(tmp_path):
    venue = LooksUp(fill_on_wait=False, answer="filled")
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    order = strategy.orders[0]
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 5
    intents, positions, fills = journal_of(tmp_path)
    assert intents[order.order_id]["status"] == "filled" and fills == 1
    assert positions == {"AAA": 5.0}
    assert not alert_lines(lines, order.order_id) and broker.left_at_venue == []


def test_an_unlisted_cancelling_order_not_found_stays_cancelling_to_its_alert(tmp_path):
    for answer in (None, "fail"):
        path = tmp_path / str(answer)
        venue = LooksUp(fill_on_wait=False, answer=answer)
        strategy, broker, lines = run(venue, 70, path, end="keep")
        cid = strategy.orders[0].order_id
        # at each check: 60, 120, 240, 480, 960 s, the ALERT's at 1440 s, then every 480 s (1920 s)
        assert venue.looked_up == [[cid]] * 7
        alert = alert_lines(lines, cid)
        assert len(alert) == 1 and "no longer lists it working" in alert[0], alert
        assert [o.order_id for o in broker.left_at_venue] == [cid]


def test_an_order_the_look_up_finds_working_gets_its_cancel_again(tmp_path):
    # the venue's list leaves it out (Alpaca's list is capped at 500 orders; IB's is ib_async's
    # cache), but a look-up by client order id says it works: a review probe of 6b1a52e found it
    # skipped, never sent again, and ALERTed as "no longer lists it"
    venue = LooksUp(fill_on_wait=False, answer="open")
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.times == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0]  # the halt's and 5 repeats
    alert = alert_lines(lines, cid)
    assert len(alert) == 1 and "sent again 5 time(s)) and still listed it working" in alert[0], alert
    assert [o.order_id for o in broker.left_at_venue] == [cid]


@dataclass
class LooksUpLate(LooksUp):
    """LooksUp whose look-ups fail until ``back`` s (fake clock), then find the order cancelled."""

    back: float = 1900.0

    def lookup(self, cids):
        self.answer = "cancelled" if self.clock.now - 1000.0 >= self.back else "fail"
        return super().lookup(cids)


class HaltedThenBuying(HaltedLimits):
    """HaltedLimits (one order); the operator resumes at 300 s; from then on a limit buy is tried
    every bar until one leaves."""

    def __init__(self, journal, clock) -> None:
        super().__init__(journal, clock, 1)
        self.tries: list[object] = []

    def on_data(self, timestamp, data, context, broker):
        now = self.clock.now - 1000.0
        if now == 300.0:
            set_trading_state(self.journal, "ACTIVE", "operator")
        if now > 300.0 and not any(o.status is OrderStatus.PENDING for o in self.tries):
            self.tries.append(broker.submit_order("AAA", 1, order_type=OrderType.LIMIT, limit_price=80.0))
        super().on_data(timestamp, data, context, broker)


def test_a_stuck_cancelling_order_frees_its_max_open_orders_place_once_a_later_look_up_ends_it(tmp_path):
    # a review probe of aebbd5f + 6b1a52e: after the ALERT the order was never looked up again,
    # and max_open_orders = 1 refused every new order for the rest of the run (118 of 118)
    venue = LooksUpLate(fill_on_wait=False)
    strategy = HaltedThenBuying(tmp_path / "fake-DU0001-cr.journal", venue.clock)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, risk={"max_open_orders": 1})
    broker.cancel_resends = CancelResends(clock=venue.clock)
    drive(strategy, broker, 70, "keep")
    cid = strategy.orders[0].order_id
    assert cid not in broker.book.cancelling  # the look-up at 1920 s found it cancelled
    refused = [o for o in strategy.tries if o.status is OrderStatus.REJECTED]
    assert refused and all(o.rejection_code == "max_open_orders" for o in refused)
    assert strategy.tries[-1].status is OrderStatus.PENDING  # one left once the place was free
    assert len(venue.placed) == 2


def test_an_order_found_filled_whose_executions_never_come_is_alerted_as_found_filled(tmp_path):
    # a review probe of d4de163: a WARNING at every check (every 480 s for ever), the ALERT saying
    # "how it ended is unknown", and the order counted by max_open_orders for the rest of the run.
    # Since 8224f41 the reconciliation after the next one makes its fill up and ends it
    # (tests/engine/test_owed_executions.py); this test passed only because no second
    # reconciliation came within its real time (reconcile_every is 300 s of the real clock).
    # Here none can come, whatever the machine's speed: reconcile_every is out of reach and the
    # venue's position agrees with the strategy's (no 5 s recheck); only the end of the run
    # reconciles, the first one after the finding. The order stays owed and cancelling to its
    # ALERT, which says it was found filled.
    venue = LooksUp(fill_on_wait=False, answer="filled, no executions")
    strategy = HaltedLimits(tmp_path / "fake-DU0001-cr.journal", venue.clock, 1)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path, reconcile_every=1e9)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    lines = drive(strategy, broker, 70, "keep")
    order = strategy.orders[0]
    cid = order.order_id
    assert len(venue.looked_up) == 7  # looked up at each check, as any unlisted one; never by a reconciliation
    said = [line for line in lines if line.startswith("WARNING") and cid in line and "executions decide" in line]
    assert len(said) == 1, said  # said once
    alert = alert_lines(lines, cid)
    assert len(alert) == 1 and "found it filled, but its executions have not all come" in alert[0], alert
    assert broker.cancel_resends.overdue(broker.book.cancelling) == 0  # not a working order
    assert cid in broker.book.cancelling and order.filled_quantity == 0  # nothing made up
    assert journal_of(tmp_path)[2] == 0


def test_the_look_ups_of_many_unlisted_orders_go_round(tmp_path):
    # a review probe of e10f596: with 12 unlisted orders and 10 look-ups a check, the same 10 were
    # looked up at every check and the other 2 never
    venue = LooksUp(fill_on_wait=False, answer=None)  # not found: they stay cancelling
    strategy, _, _ = run(venue, 40, tmp_path, n=12, end="keep")
    ids = {o.order_id for o in strategy.orders}
    asked = [cid for batch in venue.looked_up for cid in batch]
    assert all(len(batch) <= 10 for batch in venue.looked_up), venue.looked_up
    assert set(asked) == ids, ids - set(asked)  # each one in its turn


def test_found_filled_is_kept_across_a_restart(tmp_path):
    # a whole-change review of e10f596: the flag was not journaled, so after a restart the order
    # counted toward max_open_orders again and its ALERT lost the "found it filled" words
    venue = LooksUp(fill_on_wait=False, answer="filled, no executions")
    run(venue, 5, tmp_path, end="keep")  # the first check (60 s) finds it filled
    venue.answer = "fail"  # (after the restart the look-ups fail: the journaled flag alone says it)
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert cid in broker.book.cancelling
    assert broker.cancel_resends.overdue(broker.book.cancelling) == 0
    alert = alert_lines(lines, cid)
    assert len(alert) == 1 and "found it filled" in alert[0], alert


@dataclass
class CannotReadFirst(LooksUp):
    """LooksUp that cannot read the first order placed and answers for the others (a gateway that
    asks each id on its own, as Alpaca's does): LookupIncomplete carrying what it found."""

    def lookup(self, cids):
        first = self.placed[0].client_order_id
        found = super().lookup([c for c in cids if c != first])
        self.looked_up[-1:] = [list(cids)]
        if first not in cids:
            return found
        unread = {first: f"look-up of {first} found it, but its report failed (RuntimeError: a report that breaks)"}
        raise LookupIncomplete(f"could not read 1 of {len(cids)} order(s): {unread[first]}", found, unread)


def test_one_unreadable_order_leaves_the_others_of_the_look_up_taken(tmp_path):
    # the review of 09dffa1: one order whose look-up raised made the whole look-up fail, so the
    # other cancelling orders stayed cancelling (and were not looked up at that check), and the
    # unreadable one's ALERT said the venue had not found it ("nor found it")
    venue = CannotReadFirst(fill_on_wait=False)
    strategy, broker, lines = run(venue, 70, tmp_path, n=2, end="keep")
    unread, other = (o.order_id for o in strategy.orders)
    assert venue.looked_up[0] == [unread, other]  # the first check asked both
    assert other not in broker.book.cancelling  # ended (cancelled) at the first check
    assert journal_of(tmp_path)[0][other]["status"] == "cancelled"
    said = [line for line in lines if line.startswith("WARNING") and "could not read 1 of 2" in line]
    assert said and all(f"looked up by client order id: {unread} (" in line for line in said), said
    assert unread in broker.book.cancelling and not alert_lines(lines, other)
    alert = alert_lines(lines, unread)
    assert len(alert) == 1 and "its look-up by client order id could not read it" in alert[0], alert
    assert "nor found it" not in alert[0]
