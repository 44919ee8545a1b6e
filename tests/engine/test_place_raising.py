"""An order whose ``place`` raised something other than a venue's or the bridge's error (a bug in
the order path) has an unknown outcome: it stays pending, never re-sent, is not waited for by
the fill barrier, and the hook gets SendFailed. The journal keeps the error, so a warm restart
raises it at the same order (the replayed hook stops where the live one did) and goes on, under
either error policy (the run that journaled it already failed or counted it).

FakeVenue (tests/support/fakes.py) is the remote side: the real clients do not raise from
``place`` (IB refuses by an error event after placeOrder returned)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import BacktestConfig, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import SendFailed, StrategyError
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


@dataclass
class RaisesOnce(FakeVenue):
    """``place`` of the first LIMIT order raises TypeError (a bug in the request's translation)."""

    armed: bool = True

    def place(self, request):
        if self.armed and request.order_type is OrderType.LIMIT:
            self.armed = False
            raise TypeError("bad field in translation")
        super().place(request)


def test_an_unexpected_error_from_place_raises_and_leaves_nothing_in_flight():
    venue = RaisesOnce(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="demo")
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, {"AAA": 100.0}))
    with pytest.raises(SendFailed, match="fake.place raised TypeError: bad field in translation"):
        broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=99.0)
    assert broker.settle(5.0) == 0 and venue.events.waits == []  # the barrier does not wait for it
    [order] = broker.get_pending_orders()  # its outcome is unknown: never re-sent
    assert broker.link.journal.intents()[order.order_id]["status"] == "unknown"


class LimitThenBuys(Strategy):
    """Bar 1: a limit order (its place raises), then a market order the raise prevents; later
    bars: a market buy each."""

    def on_data(self, timestamp, data, context, broker):
        if timestamp == T0:
            broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=99.0)
            broker.submit_order("AAA", 2)  # never made: the line above raised
        else:
            broker.submit_order("AAA", 1)


@pytest.mark.parametrize("policy", ["log", "raise"])
def test_a_warm_restart_raises_the_journaled_error_where_it_was_and_trades_on(policy):
    venue = RaisesOnce(fill_on_wait=True)

    def run(n: int):
        feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)])
        return LiveEngine(LimitThenBuys(), VenueBroker(venue, strategy_id="raiser"), feed, session_dir=False,
                          settle_timeout=0.5, error_policy=policy).run()  # fmt: skip

    if policy == "raise":
        with pytest.raises(StrategyError, match="SendFailed"):
            run(2)  # the run fails at bar 1
    else:
        assert run(2).metrics["num_strategy_errors"] == 1
    sent = [(r.order_type, r.quantity) for r in venue.placed]
    assert (OrderType.MARKET, 2) not in sent  # the hook stopped at the raise
    again = run(4)  # bar 1 (and bar 2 under 'log') replayed from the journal, then live bars
    new = [(r.order_type, r.quantity) for r in venue.placed][len(sent):]
    assert (OrderType.LIMIT, 5) not in new and (OrderType.MARKET, 2) not in new  # nothing re-sent
    assert new == [(OrderType.MARKET, 1)] * (3 if policy == "raise" else 2)
    assert again.metrics["num_strategy_errors"] == 0  # the replayed error is not counted again


class OneBracket(Strategy):
    def __init__(self) -> None:
        self.raised: list[str] = []

    def on_data(self, timestamp, data, context, broker):
        if timestamp == T0:
            try:
                broker.submit_bracket("AAA", 10, take_profit=110.0, stop_loss=95.0)
            except SendFailed as exc:
                self.raised.append(str(exc))


def test_a_take_profit_whose_place_raises_still_sends_the_stop_loss_also_across_a_warm_restart():
    venue = RaisesOnce(fill_on_wait=True)  # the take-profit is the bracket's LIMIT order

    def run(n: int) -> OneBracket:
        strategy = OneBracket()
        feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)])
        LiveEngine(strategy, VenueBroker(venue, strategy_id="brk"), feed, session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
        return strategy

    first = run(2)
    assert len(first.raised) == 1 and "place raised TypeError" in first.raised[0]
    sent = [(r.order_type, r.quantity) for r in venue.placed]
    assert sent == [(OrderType.MARKET, 10), (OrderType.STOP, 10)]  # the entry is protected
    again = run(3)  # bars 1-2 replayed: the same raise at the same order, nothing sent again
    assert len(again.raised) == 1 and [(r.order_type, r.quantity) for r in venue.placed] == sent
