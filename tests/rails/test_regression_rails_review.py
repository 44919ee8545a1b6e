"""Regressions found by a review of the rails (each failed before its fix)."""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from datetime import UTC, date, datetime, timedelta

import polars as pl
from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.shadow import ShadowBroker
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar
from tests.support.market import aaa_minutes

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def operator(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def meta(sid: str, key: str) -> str | None:
    journal = read_only(journal_path(None, "fake", "DU0001", sid))
    try:
        return journal.meta(key)
    finally:
        journal.close()


def minutes(prices: list[float], start: datetime = T0) -> list:
    return [bar(start + timedelta(minutes=i), {"AAA": float(p)}) for i, p in enumerate(prices)]


class HaltDuringLoss(Strategy):
    """Buys 100; the operator halts on bar 3, whose close also trips the daily loss."""

    def __init__(self) -> None:
        self.n, self.after = 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n == 3:
            operator("halt", "--strategy-id", "lost", "--reason", "desk: stop everything")
        if self.n >= 4:
            self.after.append(broker.submit_order("AAA", 1).rejection_code)


def test_an_operators_halt_is_not_overwritten_by_a_loss_limit_and_does_not_lift_the_next_day():
    strategy = HaltDuringLoss()
    feed = ListFeed(minutes([100, 100, 90, 90, 90]) + minutes([90] * 3, T0 + timedelta(days=1)))
    LiveEngine(strategy, VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="lost", risk={"max_daily_loss": 500}),
               feed, session_dir=False, settle_timeout=0.2).run()  # fmt: skip
    assert strategy.after == ["halted"] * 5
    assert meta("lost", "trading_state") == "HALTED" and meta("lost", "trading_state_reason") == "desk: stop everything"


class HoldAndFlattenLater(Strategy):
    def __init__(self, flatten_on: int = 0) -> None:
        self.n, self.flatten_on = 0, flatten_on

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n == self.flatten_on:
            operator("halt", "--strategy-id", "col", "--flatten")


def test_a_halt_flatten_after_an_end_of_run_flatten_does_not_collide_in_the_journal():
    venue = FakeVenue(fill_on_wait=False)  # the end-of-run flatten's order does not fill
    LiveEngine(HoldAndFlattenLater(), VenueBroker(venue, strategy_id="col"), ListFeed(minutes([100] * 3)),
               session_dir=False, settle_timeout=0.2, open_orders_at_end="flatten").run()  # fmt: skip
    venue.fill_on_wait = True
    LiveEngine(HoldAndFlattenLater(flatten_on=4), VenueBroker(venue, strategy_id="col"),
               ListFeed(minutes([100] * 6)), session_dir=False, settle_timeout=0.2).run()  # fmt: skip
    ids = [r.client_order_id for r in venue.placed]
    assert len(ids) == len(set(ids))  # every order its own client id


class ChangeThenAdd(Strategy):
    def __init__(self) -> None:
        self.n, self.second = 0, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.first = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
        if self.n == 2:
            assert broker.update_order(self.first.order_id, quantity=90)
            self.second = broker.submit_order("AAA", 90, order_type=OrderType.LIMIT, limit_price=90.0)


def test_a_changed_working_order_counts_with_its_new_quantity():
    risk = {"max_position_notional": 10_000}  # 90 + 90 working x 100 = 18,000
    shadow = ChangeThenAdd()
    frame = aaa_minutes([100.0] * 3)
    LiveEngine(shadow, ShadowBroker(BacktestConfig(), risk=risk), ReplayFeed(frame), session_dir=False).run()
    at_venue = ChangeThenAdd()
    LiveEngine(at_venue, VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="chg", risk=risk),
               ListFeed(minutes([100] * 3)), session_dir=False, settle_timeout=0.2).run()  # fmt: skip
    assert shadow.second.rejection_code == at_venue.second.rejection_code == "max_position_notional"


class RacyVenue(FakeVenue):
    """The stop triggers just as its cancel arrives: it fills, the cancel comes too late."""

    def cancel(self, client_order_id: str) -> None:
        self.cancelled.append(client_order_id)
        for request in [r for r in self.placed if r.client_order_id == client_order_id]:
            if request.order_type is OrderType.STOP:
                self._unfilled = deque(r for r in self._unfilled if r.client_order_id != client_order_id)
                self.fill(request)
                return


class StopThenFlatten(Strategy):
    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n == 2:
            broker.submit_order("AAA", 100, OrderSide.SELL, order_type=OrderType.STOP, stop_price=95.0)
            operator("halt", "--strategy-id", "race", "--flatten")


def test_the_operators_flatten_waits_for_its_cancels_so_a_racing_fill_never_leaves_a_short():
    venue = RacyVenue(fill_on_wait=True)
    broker = VenueBroker(venue, strategy_id="race")
    LiveEngine(StopThenFlatten(), broker, ListFeed(minutes([100] * 5)), session_dir=False, settle_timeout=0.2).run()
    assert {a: p.quantity for a, p in venue.positions.items()} == {}
    assert [(r.side, r.order_type) for r in venue.placed].count((OrderSide.SELL, OrderType.MARKET)) == 0


class ManyOrders(Strategy):
    def __init__(self, count: int) -> None:
        self.count, self.done = count, False

    def on_data(self, timestamp, data, context, broker):
        if not self.done:
            self.done = True
            for _ in range(self.count):
                broker.submit_order("AAA", 1)


def test_without_a_risk_table_a_wide_rebalance_fills_as_in_the_backtest():
    frame = aaa_minutes([100.0] * 3)
    result = LiveEngine(ManyOrders(400), ShadowBroker(BacktestConfig()), ReplayFeed(frame), session_dir=False).run()
    assert len(result.fills) == 400 and result.metrics["num_risk_refusals"] == 0


class Daily(Strategy):
    def on_data(self, timestamp, data, context, broker):
        broker.submit_order("AAA", 1)


def test_daily_bars_with_date_timestamps_pass_the_rails():
    frame = pl.DataFrame([{"timestamp": date(2024, 1, 2 + i), "asset": "AAA", "open": 100.0, "high": 100.0,
                           "low": 100.0, "close": 100.0, "volume": 1e6} for i in range(3)])  # fmt: skip
    result = LiveEngine(Daily(), ShadowBroker(BacktestConfig(calendar=None)), ReplayFeed(frame), session_dir=False).run()
    assert len(result.fills) == 2


class LimitThenErrors(Strategy):
    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if 2 <= self.n <= 3:
            raise RuntimeError("bad state")


def test_a_halt_by_strategy_errors_in_shadow_cancels_the_working_orders_as_at_the_venue():
    prices = [100.0, 100.0, 100.0, 40.0, 40.0]  # the limit would fill on bar 4
    frame = aaa_minutes(prices)
    strategy = LimitThenErrors()
    result = LiveEngine(strategy, ShadowBroker(BacktestConfig(), risk={"max_strategy_errors": 2}), ReplayFeed(frame),
                        session_dir=False, error_policy="log").run()  # fmt: skip
    assert strategy.limit.status is OrderStatus.CANCELLED and result.metrics["trading_state"] == "HALTED"


class RefusedBracket(Strategy):
    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_bracket("AAA", 500, take_profit=110.0, stop_loss=90.0)


def test_a_refused_bracket_is_counted_the_same_in_shadow_and_at_the_venue():
    risk = {"max_order_notional": 10_000}
    frame = aaa_minutes([100.0] * 3)
    shadow = LiveEngine(RefusedBracket(), ShadowBroker(BacktestConfig(), risk=risk), ReplayFeed(frame),
                        session_dir=False).run()  # fmt: skip
    venue = LiveEngine(RefusedBracket(), VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="brk", risk=risk),
                       ListFeed(minutes([100] * 3)), session_dir=False, settle_timeout=0.2).run()  # fmt: skip
    expected = {"max_order_notional": 1, "bracket_entry_refused": 2}
    assert shadow.metrics["risk_refusals"] == venue.metrics["risk_refusals"] == expected


class Refuser(Strategy):
    def on_data(self, timestamp, data, context, broker):
        broker.submit_order("AAA", 1_000)


def test_shadow_refusal_ids_never_repeat_when_old_records_are_forgotten(tmp_path):
    frame = aaa_minutes([100.0] * 4)
    result = LiveEngine(Refuser(), ShadowBroker(BacktestConfig(), risk={"max_order_quantity": 10}),
                        ReplayFeed(frame), session_dir=tmp_path / "s", retain=0).run()  # fmt: skip
    ids = pl.read_parquet(result.session_dir / "orders.parquet")["order_id"].to_list()
    assert len(ids) == 4 and len(set(ids)) == 4


def test_resume_withdraws_a_flatten_not_yet_carried_out():
    LiveEngine(HoldAndFlattenLater(), VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="col"),
               ListFeed(minutes([100] * 2)), session_dir=False, settle_timeout=0.2).run()  # fmt: skip
    operator("halt", "--strategy-id", "col", "--flatten")
    assert meta("col", "flatten_requested")
    operator("resume", "--strategy-id", "col")
    assert not meta("col", "flatten_requested")


class ErrorsAt(Strategy):
    """Raises on the bars listed; buys 1 on every other bar."""

    def __init__(self, failing: set[int]) -> None:
        self.failing, self.n, self.orders = failing, 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n in self.failing:
            raise RuntimeError(f"bad state on bar {self.n}")
        self.orders.append(broker.submit_order("AAA", 1))


def test_in_shadow_a_clean_bar_between_errors_resets_their_count():
    """3 consecutive errors halt; 2 errors, a clean bar, 2 errors do not (the clean bar's outcome
    reaches the rails, also when the shadow skips the outcome of clean bars with no errors counted)."""
    risk = {"max_strategy_errors": 3}
    reset = ErrorsAt({2, 3, 5, 6})
    result = LiveEngine(reset, ShadowBroker(BacktestConfig(), risk=risk), ReplayFeed(aaa_minutes([100.0] * 8)),
                        session_dir=False, error_policy="log").run()  # fmt: skip
    assert result.metrics["trading_state"] == "ACTIVE" and result.metrics["num_strategy_errors"] == 4
    assert [o.status for o in reset.orders[-2:]] != [OrderStatus.REJECTED] * 2
    halted = ErrorsAt({2, 3, 4})
    result = LiveEngine(halted, ShadowBroker(BacktestConfig(), risk=risk), ReplayFeed(aaa_minutes([100.0] * 6)),
                        session_dir=False, error_policy="log").run()  # fmt: skip
    assert result.metrics["trading_state"] == "HALTED"
    assert [o.rejection_code for o in halted.orders[1:]] == ["halted", "halted"]
