"""Exactly once across restarts (engine + VenueBroker + journal against the in-memory FakeVenue).

A "crash" here is a run that ends with ``open_orders_at_end="keep"`` (nothing is cancelled, the
journal is left as a killed process leaves it); the real ``kill -9`` runs are in the CLI tests.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import LookupIncomplete, ReconciliationError
from ml4t_live.events import BarClosed
from ml4t_live.venue_broker import VenueBroker
from tests.engine.warm_restart_support import T0, Stepper, bars, run
from tests.support.fakes import FakeVenue, ListFeed, bar


def test_a_restart_replays_the_journal_and_sends_nothing_twice():
    venue = FakeVenue(fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")  # "killed" after bar 3
    assert len(venue.placed) == 2 and venue.positions["AAA"].quantity == 10
    second = Stepper()
    # the feed re-delivers the 3 bars it had (warm-up) and then 2 new ones
    result = run(second, venue, bars(5))
    assert second.n == 5  # state rebuilt: 3 replayed bars + 2 live ones
    assert len(venue.placed) == 2, "a replayed decision reached the venue again"
    assert venue.cancelled == [first.limit.order_id]  # bar 4's cancel is new: it was sent
    assert second.limit.order_id == first.limit.order_id and second.cancelled is True
    assert second.orders[0].status is OrderStatus.FILLED and second.orders[0].filled_quantity == 10
    assert result.metrics["num_fills"] == 0  # this run's own fills: none (the buy filled before)


def test_a_catch_up_bar_updates_the_strategy_but_its_orders_do_not_leave():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Stepper()
    result = run(strategy, venue, bars(1, catch_up=True) + bars(2, start=1))
    assert strategy.n == 3
    buy = strategy.orders[0]
    assert buy.status is OrderStatus.REJECTED and "catch-up bar" in buy.rejection_reason
    assert [r.quantity for r in venue.placed] == [5]  # only bar 2's limit left
    assert result.metrics["num_rejected_orders"] == 1
    assert result.metrics["num_rejected_catch_up"] == 1  # the summary says why (by design, never sent)


def test_catch_up_bars_may_trade_when_the_operator_says_so():
    venue = FakeVenue(fill_on_wait=True)
    run(Stepper(), venue, bars(2, catch_up=True), broker={"catch_up": "trade"})
    assert len(venue.placed) == 2


class Coin(Strategy):
    """Not deterministic: buys a random quantity on every bar."""

    def on_data(self, timestamp, data, context, broker):
        broker.submit_order("AAA", random.randint(1, 10_000))


def test_a_strategy_that_decides_differently_on_replay_fails_closed():
    venue = FakeVenue(fill_on_wait=True)
    run(Coin(), venue, bars(3), open_orders_at_end="keep")
    placed = len(venue.placed)
    with pytest.raises(ReconciliationError, match="did not repeat its journaled decisions"):
        run(Coin(), venue, bars(5))
    assert len(venue.placed) == placed  # nothing was sent
    # the operator may accept the journal's decisions and go on
    run(Coin(), venue, bars(5), broker={"on_divergence": "continue"})
    assert len(venue.placed) == placed + 2


def test_two_strategies_on_one_account_never_share_ids_and_own_only_their_positions():
    venue = FakeVenue(fill_on_wait=True)
    run(Stepper(), venue, bars(2), strategy_id="alpha")
    run(Stepper(), venue, bars(2, start=2), strategy_id="beta")
    ids = [r.client_order_id for r in venue.placed]
    assert len(ids) == len(set(ids)) == 4
    assert {i.split("-")[0] for i in ids} == {"alpha", "beta"}
    beta = VenueBroker(venue, strategy_id="beta")
    engine = LiveEngine(Stepper(), beta, ListFeed(bars(2, start=2)), session_dir=False)
    engine.run()
    assert beta.get_position("AAA").quantity == 10  # its own 10, not the account's 20
    assert venue.positions["AAA"].quantity == 20


def test_the_end_of_a_run_settles_the_last_bar_and_cancels_what_is_left():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Stepper()
    result = run(strategy, venue, bars(2))  # bar 2's limit is still working at the end
    assert venue.cancelled == [strategy.limit.order_id]
    assert strategy.limit.status is OrderStatus.CANCELLED
    assert result.metrics["num_open_orders"] == 0
    kept = FakeVenue(fill_on_wait=True)
    strategy = Stepper()
    run(strategy, kept, bars(2), open_orders_at_end="keep", strategy_id="kept")
    assert kept.cancelled == [] and strategy.limit.status is OrderStatus.PENDING


def test_a_fill_that_races_a_cancel_wins_in_the_records():
    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="race")
    from ml4t.backtest import BacktestConfig

    broker.connect(BacktestConfig())
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    assert broker.cancel_order(order.order_id) is True
    finished, _ = broker.take_new_records()
    assert finished == []  # not recorded as cancelled until the venue says what happened
    venue.fill(venue.placed[0])
    broker.settle(0)
    finished, fills = broker.take_new_records()
    assert [(o.order_id, o.status, o.filled_quantity) for o in finished] == [
        (order.order_id, OrderStatus.FILLED, 10)
    ]
    assert len(fills) == 1 and broker.get_position("AAA").quantity == 10
    broker.close()


def test_an_order_declared_lost_that_turns_up_filled_ends_filled():
    from ml4t.backtest import BacktestConfig

    from ml4t_live.events import OrderLost

    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="lost")
    broker.connect(BacktestConfig())
    order = broker.submit_order("AAA", 10)
    venue.events.put(OrderLost(order.order_id, "not found after 5 look-ups"))
    broker.settle(0)
    assert order.status is OrderStatus.REJECTED and "lost" in order.rejection_reason
    venue.fill(venue.placed[0])
    broker.settle(0)
    finished, fills = broker.take_new_records()
    assert order.status is OrderStatus.FILLED and order.rejection_reason is None
    assert [o.status for o in finished][-1] is OrderStatus.FILLED and len(fills) == 1
    assert broker.get_position("AAA").quantity == 10
    intent = broker.link.journal.intents()[order.order_id]
    assert (intent["status"], intent["filled"]) == ("filled", 10.0)
    broker.close()


def test_fills_re_reported_under_other_ids_count_once_by_cumulative_quantity():
    """After a restart a venue's REST view names an order's fills by cumulative quantity (a
    reconstructed execution), the stream named them by execution id: only what goes beyond the
    applied fills counts. Real executions count whole, in whatever order they come."""
    from ml4t.backtest import BacktestConfig, OrderSide

    from ml4t_live.events import OrderFilled, OrderPartiallyFilled

    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="cum")
    broker.connect(BacktestConfig())
    order = broker.submit_order("AAA", 20, order_type=OrderType.LIMIT, limit_price=99.0)
    when = datetime(2024, 1, 2, tzinfo=UTC)
    cid = order.order_id
    venue.events.put(OrderPartiallyFilled(cid, "exec-1", "AAA", OrderSide.BUY, 5, 99.0, when, 0.0, 5))
    venue.events.put(OrderPartiallyFilled(cid, "V1:5", "AAA", OrderSide.BUY, 5, 99.0, when, 0.0, 5, True))
    venue.events.put(OrderFilled(cid, "V1:20", "AAA", OrderSide.BUY, 20, 99.0, when, 0.0, 20, True))
    broker.settle(0)
    assert order.filled_quantity == 20 and order.status is OrderStatus.FILLED
    assert broker.get_position("AAA").quantity == 20
    assert [f.quantity for f in broker.fills] == [5, 15]
    assert broker.link.journal.positions() == {"AAA": 20.0}
    # real executions whose cumulative quantities arrive out of order (IB: a late commission
    # report holds the first one back) both count
    second = broker.submit_order("BBB", 100, order_type=OrderType.LIMIT, limit_price=49.0)
    venue.events.put(OrderFilled(second.order_id, "B", "BBB", OrderSide.BUY, 50, 49.0, when, 0.0, 100))
    venue.events.put(OrderPartiallyFilled(second.order_id, "A", "BBB", OrderSide.BUY, 50, 49.0, when, 0.0, 50))
    broker.settle(0)
    assert broker.get_position("BBB").quantity == 100 and second.filled_quantity == 100
    broker.close()


class _TimedFeed(ListFeed):
    """A live feed of 60-second bars."""

    bar_seconds = 60


def test_a_live_bar_that_waited_longer_than_its_interval_is_a_catch_up_bar():
    import time as _time

    venue = FakeVenue(fill_on_wait=True)
    now = _time.monotonic()
    fresh, stale, fresh2 = (bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(3))
    feed = _TimedFeed([
        BarClosed(fresh.timestamp, fresh.data, received_at=now),
        BarClosed(stale.timestamp, stale.data, received_at=now - 66.0),  # 60 s bar + more than the grace
        BarClosed(fresh2.timestamp, fresh2.data, received_at=now),
    ])  # fmt: skip
    strategy = Stepper()
    LiveEngine(strategy, VenueBroker(venue, strategy_id="late"), feed, session_dir=False,
               settle_timeout=0.5).run()  # fmt: skip
    assert strategy.orders[0].status is OrderStatus.FILLED  # bar 1 was fresh
    assert strategy.limit.status is OrderStatus.REJECTED and "catch-up" in strategy.limit.rejection_reason


class _LookupVenue(FakeVenue):
    """A FakeVenue that answers look-ups by client order id (``answers``: cid -> VenueOrder,
    or an exception to raise once)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.answers: dict = {}
        self.fail_next: Exception | None = None
        self.looked_up: list[list[str]] = []

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        return {c: self.answers[c] for c in cids if c in self.answers}


def test_an_order_that_ended_while_away_takes_the_venues_end_and_a_failed_look_up_is_retried():
    from ml4t.backtest import OrderSide

    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.protocols import VenueOrder

    venue = _LookupVenue(fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")  # killed with bar 2's limit working
    cid = first.limit.order_id
    venue.answers[cid] = VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 5, 5, OrderType.LIMIT, "filled", 50.0)
    venue.fail_next = ConnectionFailed("look-up timed out")
    second = Stepper()
    run(second, venue, bars(5))
    assert len(venue.looked_up) == 2  # failed at the restart, asked again at the first bar
    assert second.limit.status is OrderStatus.FILLED and second.limit.filled_quantity == 5
    assert second.cancelled is False  # bar 4 found it filled: nothing to cancel
    assert len(venue.placed) == 2 and venue.cancelled == []  # nothing sent again


def test_a_failed_restart_look_up_makes_the_next_reconciliation_due():
    """A look-up after the restart that gets no answer makes the next reconciliation due at
    once (it looks up again there), also when a reconciliation has just run (here: the end of
    the run's, with the next one ``reconcile_every`` away). No test held this before the
    look-up became a composed object whose failure the broker schedules."""
    from ml4t.backtest import OrderSide

    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.protocols import VenueOrder

    venue = _LookupVenue(fill_on_wait=True)
    first = Stepper()
    run(first, venue, bars(3), open_orders_at_end="keep")  # killed with bar 2's limit working
    cid = first.limit.order_id
    venue.answers[cid] = VenueOrder(cid, "V9", "AAA", OrderSide.BUY, 5, 0, OrderType.LIMIT, "open", 50.0)
    broker = VenueBroker(venue, strategy_id="stepper")
    LiveEngine(Stepper(), broker, ListFeed(bars(3)), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    assert venue.looked_up == [[cid]] and cid in broker.book.open  # found working at the restart
    assert not broker.own.due()  # the end of run's reconciliation: the next in reconcile_every
    broker.restart_lookups.cids = [cid]
    venue.fail_next = ConnectionFailed("look-up timed out")
    assert broker._look_up_unresolved() == set()  # the restart's look-up, failing
    assert venue.looked_up == [[cid], [cid]] and broker.restart_lookups.cids == [cid]  # kept to look up again
    assert broker.own.due()


class _TwoLimits(Stepper):
    """Stepper with a second limit (``other``, limit 49) placed with the first on bar 2."""

    def on_data(self, timestamp, data, context, broker):
        super().on_data(timestamp, data, context, broker)
        if self.n == 2:
            self.other = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=49.0)


class _CannotReadOne(_LookupVenue):
    """_LookupVenue asking for each id on its own (Alpaca's): ``unreadable`` is never read; a
    look-up that asks for it answers for the others and raises LookupIncomplete."""

    unreadable = ""

    def lookup(self, cids):
        found = super().lookup([c for c in cids if c != self.unreadable])
        self.looked_up[-1:] = [list(cids)]
        if self.unreadable not in cids:
            return found
        raise LookupIncomplete("could not read 1 order", found, {self.unreadable: "its report failed"})


def test_a_restart_look_up_that_cannot_read_one_order_takes_the_others_ends():
    # before, LookupIncomplete was a failed look-up of both: the other order, which the venue
    # says was cancelled while away, stayed open for the whole run (each retry failing alike)
    from ml4t.backtest import OrderSide

    from ml4t_live.protocols import VenueOrder

    venue = _CannotReadOne(fill_on_wait=True)
    first = _TwoLimits()
    run(first, venue, bars(3), open_orders_at_end="keep")  # killed with both limits working
    a, b = first.limit.order_id, first.other.order_id
    venue.answers[b] = VenueOrder(b, "V9", "AAA", OrderSide.BUY, 5, 0, OrderType.LIMIT, "cancelled", 49.0)
    venue.unreadable = a
    broker = VenueBroker(venue, strategy_id="stepper")
    LiveEngine(_TwoLimits(), broker, ListFeed(bars(3)), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    assert venue.looked_up[0] == [a, b]  # the restart's look-up asked both
    assert b not in broker.book.open and broker.book.get(b).status is OrderStatus.CANCELLED
    assert a in broker.book.open and broker.restart_lookups.cids == [a]  # not read: kept to look up again
