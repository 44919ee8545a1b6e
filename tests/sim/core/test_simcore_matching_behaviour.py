"""SimExchange venue semantics on top of the backtest fills: OCA, brackets, TIF, faults, errors."""

from __future__ import annotations

from datetime import datetime

import pytest
from ml4t.backtest import BacktestConfig, OrderSide, OrderType
from tests.sim.core.simcore_support import make_bars

from ml4t_live.sim.bars import SimBar, bar_groups
from ml4t_live.sim.matching import (
    OrderActivated,
    OrderCanceled,
    OrderExecuted,
    OrderExpired,
    OrderNotCancelable,
    OrderNotReplaceable,
    OrderRejected,
    OrderReplaced,
    SimExchange,
    SimOrderSpec,
    UnknownOrder,
)

BUY, SELL = OrderSide.BUY, OrderSide.SELL
T = [datetime(2024, 3, day) for day in range(4, 12)]


def bar(asset: str, ts: datetime, o: float, h: float, lo: float, c: float) -> dict[str, SimBar]:
    return {asset: SimBar(asset, ts, o, h, lo, c, 1000.0)}


def step(ex: SimExchange, i: int, o: float, h: float, lo: float, c: float, asset: str = "AAA"):
    """Open and close one bar with no client action; returns (open events, close events)."""
    opened = ex.open_bar(T[i], bar(asset, T[i], o, h, lo, c))
    return opened, ex.close_bar()


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def ex() -> SimExchange:
    exchange = SimExchange(BacktestConfig(calendar=None, initial_cash=100_000.0))
    step(exchange, 0, 100, 101, 99, 100)
    return exchange


def test_market_order_fills_at_next_open_and_updates_account(ex: SimExchange) -> None:
    order, events = ex.submit(SimOrderSpec("AAA", BUY, 10, client_order_id="c-1"))
    assert (order.status, events) == ("new", [])
    opened, _ = step(ex, 1, 102, 104, 101, 103)
    (executed,) = opened
    assert isinstance(executed, OrderExecuted)
    assert executed.order.status == "filled"
    x = executed.execution
    assert (x.price, x.quantity, x.timestamp, x.client_order_id) == (102.0, 10.0, T[1], "c-1")
    assert (x.cumulative_quantity, x.remaining_quantity) == (10.0, 0.0)
    assert ex.positions == {"AAA": (10.0, 102.0)}
    assert ex.cash == pytest.approx(100_000 - 1020)
    assert ex.equity == pytest.approx(100_000 - 1020 + 10 * 103)
    assert ex.last_price("AAA") == 103.0
    assert ex.order_by_client_id("c-1") is ex.orders[order.order_id]
    assert ex.order_by_client_id("nope") is None
    assert ex.open_orders() == []


def test_validation_failures_are_rejections_not_exceptions(ex: SimExchange) -> None:
    bad = [
        SimOrderSpec("AAA", BUY, 0),
        SimOrderSpec("AAA", BUY, float("nan")),
        SimOrderSpec("AAA", BUY, 5, OrderType.LIMIT),
        SimOrderSpec("AAA", BUY, 5, OrderType.STOP, stop_price=-1.0),
        SimOrderSpec("AAA", BUY, 5, OrderType.TRAILING_STOP),
        SimOrderSpec("AAA", BUY, 5, time_in_force="gtd"),
        SimOrderSpec("AAA", BUY, 5, OrderType.LIMIT, limit_price=99.0, time_in_force="cls"),
        SimOrderSpec("AAA", BUY, 5, parent_id=999),
    ]
    for spec in bad:
        order, events = ex.submit(spec)
        assert order.status == "rejected" and order.reject_reason
        assert kinds(events) == ["OrderRejected"] and events[0].reason == order.reject_reason
    assert ex.open_orders() == [] and ex.broker.orders == []
    with pytest.raises(TypeError):
        ex.submit("AAA")  # type: ignore[arg-type]
    ex.submit(SimOrderSpec("AAA", BUY, 1), order_id=50)
    with pytest.raises(ValueError, match="already used"):
        ex.submit(SimOrderSpec("AAA", BUY, 1), order_id=50)
    assert ex.submit(SimOrderSpec("AAA", BUY, 1))[0].order_id == 51


def test_unknown_assets_are_rejected_when_the_universe_is_known() -> None:
    exchange = SimExchange(BacktestConfig(calendar=None), known_assets={"AAA"})
    order, events = exchange.submit(SimOrderSpec("ZZZ", BUY, 1))
    assert order.status == "rejected" and "unknown asset" in events[0].reason


def test_cash_rejection_arrives_at_fill_time(ex: SimExchange) -> None:
    order, events = ex.submit(SimOrderSpec("AAA", BUY, 5000))
    assert order.status == "new" and events == []
    opened, _ = step(ex, 1, 100, 101, 99, 100)
    (rejected,) = opened
    assert isinstance(rejected, OrderRejected) and "insufficient" in rejected.reason.lower()


def test_reject_next_rejects_exactly_one_order(ex: SimExchange) -> None:
    ex.reject_next("scripted: margin")
    first, events = ex.submit(SimOrderSpec("AAA", BUY, 1))
    second, _ = ex.submit(SimOrderSpec("AAA", BUY, 1))
    assert (first.status, first.reject_reason, events[0].reason) == ("rejected", "scripted: margin", "scripted: margin")
    assert second.status == "new"


def test_cancel_replace_and_their_errors(ex: SimExchange) -> None:
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=90.0))
    replaced, events = ex.replace(order.order_id, quantity=20, limit_price=95.0)
    assert isinstance(events[0], OrderReplaced)
    assert (replaced.spec.quantity, replaced.spec.limit_price) == (20, 95.0)
    opened, _ = step(ex, 1, 100, 101, 94, 96)  # low 94 <= 95: fills at the replaced limit
    assert [(e.execution.quantity, e.execution.price) for e in opened] == [(20.0, 95.0)]
    with pytest.raises(OrderNotCancelable, match="filled"):
        ex.cancel(order.order_id)
    with pytest.raises(OrderNotReplaceable, match="filled"):
        ex.replace(order.order_id, limit_price=1.0)
    with pytest.raises(UnknownOrder):
        ex.cancel(12345)
    with pytest.raises(UnknownOrder):
        ex.replace(12345, quantity=1)

    other, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=50.0))
    with pytest.raises(OrderNotReplaceable, match="limit price"):
        ex.replace(other.order_id, limit_price=-3.0)
    assert ex.orders[other.order_id].spec.limit_price == 50.0
    canceled, events = ex.cancel(other.order_id)
    assert canceled.status == "canceled" and kinds(events) == ["OrderCanceled"]
    assert events[0].reason == "user"
    opened, _ = step(ex, 2, 50, 51, 40, 45)  # would have filled; it is gone
    assert opened == [] and ex.positions["AAA"][0] == 20.0


def test_oca_full_fill_cancels_the_group_on_the_same_bar(ex: SimExchange) -> None:
    ex.submit(SimOrderSpec("AAA", BUY, 10))
    step(ex, 1, 100, 101, 99, 100)
    tp, _ = ex.submit(SimOrderSpec("AAA", SELL, 10, OrderType.LIMIT, limit_price=110.0, oca_group="g"))
    sl, _ = ex.submit(SimOrderSpec("AAA", SELL, 10, OrderType.STOP, stop_price=95.0, oca_group="g"))
    opened, _ = step(ex, 2, 100, 112, 90, 100)  # both levels touched; the first one wins
    assert kinds(opened) == ["OrderExecuted", "OrderCanceled"]
    assert opened[0].order.order_id == tp.order_id and opened[1].order.order_id == sl.order_id
    assert opened[1].reason == "oca"
    assert ex.positions == {}
    assert ex.orders[sl.order_id].status == "canceled"


def test_bracket_children_are_held_until_the_parent_fills(ex: SimExchange) -> None:
    parent, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=98.0))
    tp, ev = ex.submit(SimOrderSpec("AAA", SELL, 10, OrderType.LIMIT, limit_price=105.0, oca_group="b", parent_id=parent.order_id))
    sl, _ = ex.submit(SimOrderSpec("AAA", SELL, 10, OrderType.STOP, stop_price=90.0, oca_group="b", parent_id=parent.order_id))
    assert (tp.status, sl.status, ev) == ("held", "held", [])
    assert len(ex.broker.pending_orders) == 1  # children never reached the backtest broker
    opened, _ = step(ex, 1, 100, 106, 97, 104)  # parent fills at 98; children go live
    assert kinds(opened) == ["OrderExecuted", "OrderActivated", "OrderActivated"]
    assert {tp.status, sl.status} == {"new"}
    opened, _ = step(ex, 2, 104, 106, 103, 105)  # take-profit fills, stop-loss canceled (OCA)
    assert kinds(opened) == ["OrderExecuted", "OrderCanceled"]
    assert (tp.status, sl.status, ex.positions) == ("filled", "canceled", {})


def test_canceling_a_parent_cancels_its_held_children(ex: SimExchange) -> None:
    parent, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=50.0))
    child, _ = ex.submit(SimOrderSpec("AAA", SELL, 10, OrderType.LIMIT, limit_price=60.0, parent_id=parent.order_id))
    _, events = ex.cancel(parent.order_id)
    assert kinds(events) == ["OrderCanceled", "OrderCanceled"]
    assert events[1].reason == "parent canceled" and child.status == "canceled"


def test_rejected_parent_cancels_children_and_late_children_are_rejected(ex: SimExchange) -> None:
    parent, _ = ex.submit(SimOrderSpec("AAA", BUY, 5000))  # cash rejection at the next open
    child, _ = ex.submit(SimOrderSpec("AAA", SELL, 5000, OrderType.LIMIT, limit_price=150.0, parent_id=parent.order_id))
    opened, _ = step(ex, 1, 100, 101, 99, 100)
    assert kinds(opened) == ["OrderRejected", "OrderCanceled"] and child.status == "canceled"
    late, events = ex.submit(SimOrderSpec("AAA", SELL, 1, parent_id=parent.order_id))
    assert late.status == "rejected" and "rejected" in events[0].reason


def test_split_next_fill_reports_two_executions_on_consecutive_bars(ex: SimExchange) -> None:
    ex.split_next_fill(2)
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 11))
    opened, _ = step(ex, 1, 100, 101, 99, 100.5)
    (first,) = opened
    assert first.order.status == "partially_filled" and first.execution.quantity == 5.0
    assert order.is_open and order.filled_quantity == 5.0 and order.remaining == 6.0
    assert ex.positions == {"AAA": (5.0, 100.0)}
    assert ex.cash == pytest.approx(100_000 - 500)
    assert ex.equity == pytest.approx(100_000 - 500 + 5 * 100.5)
    with pytest.raises(OrderNotCancelable, match="already executing"):
        ex.cancel(order.order_id)
    opened, _ = step(ex, 2, 90, 91, 89, 90)
    (second,) = opened
    assert second.order.status == "filled" and order.status == "filled"
    assert (second.execution.quantity, second.execution.price, second.execution.timestamp) == (6.0, 100.0, T[2])
    assert second.execution.cumulative_quantity == 11.0
    assert ex.positions == {"AAA": (11.0, 100.0)} and ex.cash == pytest.approx(100_000 - 1100)
    assert order.avg_fill_price == 100.0


def test_split_keeps_total_commission() -> None:
    exchange = SimExchange(BacktestConfig.from_preset("realistic"))
    step(exchange, 0, 100, 101, 99, 100)
    exchange.split_next_fill(3)
    exchange.submit(SimOrderSpec("AAA", BUY, 9))
    step(exchange, 1, 100, 101, 99, 100)
    step(exchange, 2, 100, 101, 99, 100)
    fill = exchange.broker.fills[0]
    parts = exchange.executions
    assert [p.quantity for p in parts] == [3.0, 3.0, 3.0]
    assert sum(p.commission for p in parts) == pytest.approx(fill.commission)
    assert {p.price for p in parts} == {fill.price}
    assert [p.timestamp for p in parts] == [T[1], T[1], T[2]]
    assert exchange.cash == pytest.approx(exchange.broker.cash)


def test_ioc_remainder_is_canceled_after_its_first_chance(ex: SimExchange) -> None:
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=90.0, time_in_force="ioc"))
    opened, closed = step(ex, 1, 100, 101, 95, 100)  # not reached
    assert opened == [] and kinds(closed) == ["OrderCanceled"] and closed[0].reason == "ioc"
    assert order.status == "canceled" and ex.broker.pending_orders == []
    filled, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, time_in_force="ioc"))
    opened, closed = step(ex, 2, 100, 101, 95, 100)
    assert kinds(opened) == ["OrderExecuted"] and closed == [] and filled.status == "filled"


def test_day_orders_expire_at_end_session_gtc_orders_stay(ex: SimExchange) -> None:
    day, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=50.0, time_in_force="day"))
    gtc, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=50.0))
    step(ex, 1, 100, 101, 99, 100)
    events = ex.end_session()
    assert kinds(events) == ["OrderExpired"] and events[0].order.order_id == day.order_id
    assert isinstance(events[0], OrderExpired) and day.status == "expired"
    assert [o.order_id for o in ex.open_orders()] == [gtc.order_id]
    assert [o.order_id for o in ex.broker.pending_orders] == ["ORD-2"]


def test_cls_is_market_on_close_of_the_current_bar_and_opg_only_the_open(ex: SimExchange) -> None:
    ex.open_bar(T[1], bar("AAA", T[1], 100, 101, 99, 100.5))
    cls, _ = ex.submit(SimOrderSpec("AAA", BUY, 3, time_in_force="cls"))
    closed = ex.close_bar()
    assert kinds(closed) == ["OrderExecuted"] and closed[0].execution.price == 100.5
    assert cls.status == "filled"
    missed, _ = ex.submit(SimOrderSpec("AAA", BUY, 3, OrderType.LIMIT, limit_price=95.0, time_in_force="opg"))
    taken, _ = ex.submit(SimOrderSpec("AAA", BUY, 2, OrderType.LIMIT, limit_price=101.0, time_in_force="opg"))
    market, _ = ex.submit(SimOrderSpec("AAA", BUY, 1, time_in_force="opg"))
    # The opening print is 100: the 95 limit misses it (even though the bar later trades at 94).
    opened, _ = step(ex, 2, 100, 101, 94, 100)
    assert kinds(opened) == ["OrderExpired", "OrderExecuted", "OrderExecuted"]
    assert (missed.status, taken.status, market.status) == ("expired", "filled", "filled")
    # ml4t.backtest fills a marketable limit at its limit price (101), a market order at the open.
    assert [e.execution.price for e in opened[1:]] == [101.0, 100.0]
    assert ex.broker.pending_orders == []


def test_same_bar_mode_fills_on_close_bar() -> None:
    from ml4t.backtest.config import ExecutionPrice
    from ml4t.backtest.types import ExecutionMode

    exchange = SimExchange(
        BacktestConfig(calendar=None, execution_mode=ExecutionMode.SAME_BAR, execution_price=ExecutionPrice.CLOSE)
    )
    exchange.open_bar(T[0], bar("AAA", T[0], 100, 101, 99, 100.5))
    exchange.submit(SimOrderSpec("AAA", BUY, 2))
    closed = exchange.close_bar()
    assert [(e.execution.price, e.execution.timestamp) for e in closed] == [(100.5, T[0])]


def test_open_bar_must_advance_and_close_bar_needs_a_bar() -> None:
    exchange = SimExchange()
    with pytest.raises(ValueError, match="before any open_bar"):
        exchange.close_bar()
    exchange.open_bar(T[1], bar("AAA", T[1], 1, 1, 1, 1))
    with pytest.raises(ValueError, match="does not advance"):
        exchange.open_bar(T[0], bar("AAA", T[0], 1, 1, 1, 1))


def test_events_carry_snapshots_and_the_exchange_keeps_the_live_order(ex: SimExchange) -> None:
    ex.split_next_fill(2)
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 4))
    (first,), _ = step(ex, 1, 100, 101, 99, 100)
    (second,), _ = step(ex, 2, 100, 101, 99, 100)
    assert first.order.status == "partially_filled" and first.order.filled_quantity == 2.0
    assert second.order.status == "filled" and ex.orders[order.order_id] is order


def test_bars_from_the_helper_drive_a_multi_asset_exchange() -> None:
    bars = make_bars(4, ("AAA", "BBB"), seed=9)
    exchange = SimExchange()
    groups = bar_groups(bars)
    exchange.open_bar(*groups[0])
    exchange.submit(SimOrderSpec("BBB", BUY, 3))
    exchange.close_bar()
    events = exchange.open_bar(*groups[1])
    assert [e.execution.price for e in events] == [groups[1][1]["BBB"].open]
    assert isinstance(events[0], OrderExecuted)
    assert not any(isinstance(e, (OrderCanceled, OrderActivated)) for e in events)


def test_a_split_ioc_fill_is_not_canceled_while_its_last_part_is_pending(ex: SimExchange) -> None:
    ex.split_next_fill(2)
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 4, time_in_force="ioc"))
    opened, closed = step(ex, 1, 100, 101, 99, 100)
    assert kinds(opened) == ["OrderExecuted"] and closed == [] and order.status == "partially_filled"
    opened, _ = step(ex, 2, 100, 101, 99, 100)
    assert kinds(opened) == ["OrderExecuted"] and order.status == "filled"
    assert order.filled_quantity == 4.0 and ex.positions == {"AAA": (4.0, 100.0)}


def test_held_day_children_expire_and_held_oca_siblings_are_canceled(ex: SimExchange) -> None:
    parent, _ = ex.submit(SimOrderSpec("AAA", BUY, 10, OrderType.LIMIT, limit_price=50.0))
    child, _ = ex.submit(SimOrderSpec("AAA", SELL, 10, time_in_force="day", parent_id=parent.order_id))
    assert kinds(ex.end_session()) == ["OrderExpired"] and child.status == "expired"
    live, _ = ex.submit(SimOrderSpec("AAA", BUY, 1, oca_group="x"))
    held, _ = ex.submit(SimOrderSpec("AAA", BUY, 1, oca_group="x", parent_id=parent.order_id))
    opened, _ = step(ex, 1, 100, 101, 99, 100)
    assert kinds(opened) == ["OrderExecuted", "OrderCanceled"]
    assert (live.status, held.status, opened[1].reason) == ("filled", "canceled", "oca")
    assert parent.status == "new"


def test_integer_share_truncation_reports_a_complete_fill(ex: SimExchange) -> None:
    order, _ = ex.submit(SimOrderSpec("AAA", BUY, 10.7))
    (executed,), _ = step(ex, 1, 100, 101, 99, 100)
    x = executed.execution
    assert (x.quantity, x.cumulative_quantity, x.remaining_quantity) == (10.0, 10.0, 0.0)
    assert order.status == "filled" and order.remaining == 0.0 and ex.positions == {"AAA": (10.0, 100.0)}
