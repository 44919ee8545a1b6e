"""A venue strategy's hook that raises after its commands left (error policy 'log', the venue
default): nothing is rolled back, because a venue cannot take an order back. The backtest (and
so the shadow) undoes such a hook; a venue run keeps what left, and keeps it *known*: the book,
the journal, the venue and the rails (working quantities, positions, open orders, the order
rate) stay exactly as after the same commands without the raise, and a warm restart replays the
hook without sending anything again. What can raise in one broker call raises before any of
its orders leaves (a bracket with a bad exit price sends no entry: the backtest keeps none).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
RISK = {"allow_short": False, "max_orders_per_minute": 100, "max_open_orders": 10}


def bars(n: int) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)]


class Script(Strategy):
    """Bar n (from 1): records what is working (``look``), runs ``steps[n]``, then raises when
    n is in ``raise_on``."""

    def __init__(self, steps: dict[int, Any], raise_on: set[int], look: Any = None) -> None:
        self.steps, self.raise_on, self.look = steps, raise_on, look
        self.n, self.seen, self.orders = 0, [], {}

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.look is not None:
            self.seen.append(self.look(broker))
        step = self.steps.get(self.n)
        if step is not None:
            step(broker, self)
        if self.n in self.raise_on:
            raise RuntimeError(f"after the commands of bar {self.n}")


def short(cid: str) -> str:
    """A client order id without the strategy and the journal's generation (they differ per run)."""
    return cid.split("-", 2)[2]


def working(venue: FakeVenue):
    """What is working at ``venue`` and in the broker's book and rails, with comparable ids."""

    def look(broker: VenueBroker) -> dict[str, Any]:
        gate = broker.gate
        view = gate.exposure.assets.get("AAA")
        held = broker.book.positions.get("AAA")
        at_venue = venue.positions.get("AAA")
        return {
            "sent": [(short(r.client_order_id), r.quantity) for r in venue.placed],  # places and changes
            "cancelled": [short(c) for c in venue.cancelled],
            "open": sorted(short(c) for c in broker.book.open),
            "position": held.quantity if held else 0.0,
            "venue position": at_venue.quantity if at_venue else 0.0,
            "rails": (view.quantity, view.working_buy, view.working_sell) if view else None,
            "rails orders": gate.exposure.working_orders,
            "sends": gate.limits.rate.in_last_minute(gate.now()),
        }

    return look


def run(steps: dict[int, Any], raise_on: set[int], n: int, sid: str) -> tuple[Script, VenueBroker, FakeVenue]:
    venue = FakeVenue(fill_on_wait=True)
    strategy = Script(steps, raise_on, working(venue))
    broker = VenueBroker(venue, strategy_id=sid, risk=RISK)
    LiveEngine(strategy, broker, ListFeed(bars(n)), session_dir=False, settle_timeout=0.5, error_policy="log").run()
    return strategy, broker, venue


def buy_and_limit(broker, strategy) -> None:
    strategy.orders["market"] = broker.submit_order("AAA", 10)
    strategy.orders["limit"] = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)


def sell(broker, strategy) -> None:
    strategy.orders["sell"] = broker.submit_order("AAA", -12, order_type=OrderType.LIMIT, limit_price=150.0)


def test_orders_sent_before_a_raise_stay_known_and_counted_as_without_the_raise():
    steps = {1: buy_and_limit, 2: sell}
    raised, broker, venue = run(steps, {1}, 3, "raised")
    clean, _, _ = run(steps, set(), 3, "clean")
    assert raised.seen[1:] == clean.seen[1:]  # bars 2 and 3 see the same venue, book and rails
    market, limit, sale = (raised.orders[k] for k in ("market", "limit", "sell"))
    assert market.status is OrderStatus.FILLED
    bar2 = raised.seen[1]
    assert bar2["sent"] == [("20240102T143000-AAA-b1", 10.0), ("20240102T143000-AAA-b2", 5.0)]
    assert bar2["open"] == ["20240102T143000-AAA-b2"] and bar2["rails orders"] == 1
    assert bar2["position"] == bar2["venue position"] == 10.0
    assert bar2["rails"] == (10.0, 5.0, 0.0) and bar2["sends"] == 2
    # bar 2's sale of 12 against a position of 10 is covered by the working buy of 5: it leaves
    assert raised.seen[2]["rails"] == (10.0, 5.0, 12.0)
    assert sale.order_id not in (market.order_id, limit.order_id)
    assert sorted(venue.cancelled) == sorted([limit.order_id, sale.order_id])  # the end of run knew both
    assert broker.gate.state.consecutive_errors == 0  # bar 1's error was counted, then reset
    journal = read_only(journal_path(None, "fake", "DU0001", "raised"))
    try:
        intents = journal.intents()
    finally:
        journal.close()
    assert [intents[o.order_id]["status"] for o in (market, limit, sale)] == ["filled", "cancelled", "cancelled"]


def change_and_cancel(broker, strategy) -> None:
    limit, other = strategy.orders["limit"], strategy.orders["other"]
    assert broker.update_order(limit.order_id, quantity=8)
    assert broker.cancel_order(other.order_id)


def two_limits(broker, strategy) -> None:
    strategy.orders["limit"] = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
    strategy.orders["other"] = broker.submit_order("AAA", 7, order_type=OrderType.LIMIT, limit_price=60.0)


def test_a_change_and_a_cancel_made_before_a_raise_stand_at_the_venue_and_in_the_rails():
    steps = {1: two_limits, 2: change_and_cancel}
    raised, _, venue = run(steps, {2}, 3, "raised")
    clean, _, _ = run(steps, set(), 3, "clean")
    assert raised.seen == clean.seen
    limit, other = raised.orders["limit"], raised.orders["other"]
    assert limit.quantity == 8 and other.status is OrderStatus.CANCELLED
    bar3 = raised.seen[2]
    assert bar3["sent"][-1] == (short(limit.order_id), 8.0)  # the change reached the venue
    assert bar3["cancelled"] == [short(other.order_id)] and venue.cancelled[0] == other.order_id
    assert bar3["open"] == [short(limit.order_id)] and bar3["rails orders"] == 1
    assert bar3["rails"] == (0.0, 8.0, 0.0)


def test_a_warm_restart_replays_a_raised_hook_without_sending_its_orders_again():
    steps = {n: lambda b, s, q=q: b.submit_order("AAA", q) for n, q in ((1, 10), (2, 3), (3, 1))}
    venue = FakeVenue(fill_on_wait=True)

    def once(n: int) -> VenueBroker:
        # on_divergence: fail; 2 errors journaled + 2 replayed would halt before bar 3's order
        broker = VenueBroker(venue, strategy_id="again", risk=RISK | {"max_strategy_errors": 3})
        LiveEngine(Script(steps, {1, 2}), broker, ListFeed(bars(n)), session_dir=False, settle_timeout=0.5,
                   error_policy="log").run()  # fmt: skip
        return broker

    once(2)
    assert [r.quantity for r in venue.placed] == [10.0, 3.0]
    broker = once(3)  # bars 1-2 replayed (both raise again): answered from the journal
    assert [r.quantity for r in venue.placed] == [10.0, 3.0, 1.0]
    assert broker.book.positions["AAA"].quantity == venue.positions["AAA"].quantity == 14.0
    assert broker.gate.exposure.assets["AAA"].quantity == 14.0


# ---------------------------------------------------------------------- one call, several orders
def frame(n: int) -> pl.DataFrame:
    return pl.DataFrame([{"timestamp": T0 + timedelta(minutes=i), "asset": "AAA", "open": 100.0, "high": 100.0,
                          "low": 100.0, "close": 100.0, "volume": 1e6} for i in range(n)])  # fmt: skip


@pytest.mark.parametrize(("take_profit", "stop_loss"), [(110.0, -1.0), (0.0, 90.0), (110.0, math.nan), (math.inf, 90.0)],
                         ids=["bad-stop", "bad-take-profit-whose-warning-raises-first", "nan-stop", "inf-take-profit"])
def test_a_bracket_with_a_bad_exit_price_sends_nothing_as_the_backtest_keeps_nothing(take_profit, stop_loss):
    """The backtest raises on the bad exit leg and rolls the hook back (the entry with it); a venue
    cannot take the entry back, so the legs are checked before it leaves."""
    steps = {1: lambda b, s: b.submit_bracket("AAA", 10, take_profit=take_profit, stop_loss=stop_loss)}
    shadow = ShadowBroker(BacktestConfig())
    backtest = Script(steps, set())
    result = LiveEngine(backtest, shadow, ReplayFeed(frame(3)), session_dir=False, error_policy="log").run()
    assert result.metrics["num_strategy_errors"] == 1 and not shadow.strategy_broker.orders
    venue = FakeVenue(fill_on_wait=True)
    strategy = Script(steps, set())
    result = LiveEngine(strategy, VenueBroker(venue, strategy_id="brk"), ListFeed(bars(3)), session_dir=False,
                        settle_timeout=0.5, error_policy="log").run()  # fmt: skip
    assert result.metrics["num_strategy_errors"] == 1
    assert venue.placed == [] and venue.positions == {} and result.fills == []
