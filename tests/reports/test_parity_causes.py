"""Classification and attribution on order records built by hand (pure functions, no run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml4t_live.reports.causes import (
    BarClock,
    classify_pair,
    rejection_cause,
    slippage_bps,
)
from ml4t_live.reports.orders import OrderRecord, match_orders
from ml4t_live.reports.parity import _pair_parts, compare, contribution
from ml4t_live.reports.rerun import BacktestRun
from ml4t_live.reports.session_files import SessionData

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
CLOCK = BarClock([T0 + timedelta(minutes=i) for i in (0, 1, 2, 4, 5)])  # 14:33 never delivered


def _order(oid="X-b1", *, side="buy", qty=10.0, status="filled", fills=(), reason=None, code=None,
           exit_reason="", created=T0) -> OrderRecord:  # fmt: skip
    record = OrderRecord(oid, "AAPL", side, created, qty, status, rejection_reason=reason, rejection_code=code)
    for minute, quantity, price in fills:
        ts = T0 + timedelta(minutes=minute)
        record.filled += quantity
        record.notional += quantity * price
        record.fill_times.append(ts)
        record.parts.append((ts, quantity, price))
    record.exit_reason = exit_reason
    return record


@pytest.mark.parametrize(("reason", "code", "cause"), [
    ("risk: max position 1,000 AAPL exceeded", "risk_limit", "risk_limit"),
    ("risk: daily loss limit reached", None, "risk_limit"),
    ("catch-up bar 2024-03-04 14:31: it arrived late", "catch_up", "catch_up"),
    ("Order rejected - reason:insufficient margin", "venue_rejected", "venue_rejection"),
])  # fmt: skip
def test_rejections_are_classified_by_their_reason(reason, code, cause):
    live = _order(status="rejected", reason=reason, code=code)
    bt = _order("ORD-1", fills=[(1, 10, 100.0)])
    assert rejection_cause(live) == cause
    assert classify_pair(live, bt, CLOCK)[0] == [cause]


def test_a_fill_on_a_bar_the_feed_never_delivered_is_a_missing_bar():
    live = _order(created=T0 + timedelta(minutes=2), fills=[(3, 10, 100.0)])
    bt = _order("ORD-1", created=T0 + timedelta(minutes=2), fills=[(4, 10, 100.5)])
    causes, detail = classify_pair(live, bt, CLOCK)
    assert causes == ["missing_bar"] and "never delivered" in detail


def test_a_later_fill_is_latency_and_a_different_price_on_the_same_bar_is_slippage():
    bt = _order("ORD-1", fills=[(1, 10, 100.0)])
    assert classify_pair(_order(fills=[(2, 10, 100.2)]), bt, CLOCK)[0] == ["latency"]
    same_bar = _order(fills=[(1, 10, 100.05)])
    assert classify_pair(same_bar, bt, CLOCK)[0] == ["price"]
    assert slippage_bps(same_bar, bt) == pytest.approx(5.0)  # a buy 5 bps dearer
    sell = _order(side="sell", fills=[(1, 10, 100.05)])
    assert slippage_bps(sell, _order("ORD-1", side="sell", fills=[(1, 10, 100.0)])) == pytest.approx(-5.0)


def test_a_rule_exit_filled_later_at_the_venue_is_a_position_rule_exit():
    bt = _order("ORD-1", side="sell", fills=[(2, 10, 97.9)], exit_reason="stop_loss")
    live = _order(side="sell", fills=[(4, 10, 97.1)])
    assert classify_pair(live, bt, CLOCK)[0] == ["position_rule_exit"]


def test_an_order_the_venue_never_filled_is_unfilled_and_costs_what_the_backtest_made():
    bt = _order("ORD-1", fills=[(1, 10, 100.0)])
    live = _order(status="cancelled")
    causes, detail = classify_pair(live, bt, CLOCK)
    assert causes == ["unfilled"] and "filled none" in detail
    assert _pair_parts(live, bt, causes, {"AAPL": 101.0}) == {"unfilled": pytest.approx(-10.0)}


def test_a_fill_after_the_sessions_last_bar_is_named_so():
    """An order made on the last bar: the venue filled it on a bar the session ended before."""
    last = T0 + timedelta(minutes=5)
    live = _order(created=last, fills=[(6, 10, 100.0)])
    bt = _order("ORD-1", created=last, status="pending")
    causes, detail = classify_pair(live, bt, CLOCK)
    assert causes == ["after_end"] and "after the session's last bar" in detail


def test_pair_parts_add_up_to_the_difference_of_the_two_orders_pnl():
    marks = {"AAPL": 101.0}
    bt = _order("ORD-1", fills=[(1, 10, 100.0)])
    live = _order(fills=[(1, 4, 100.1), (2, 2, 100.3)], status="cancelled")
    live.commission, bt.commission = 1.5, 1.0
    causes, _ = classify_pair(live, bt, CLOCK)
    assert causes[0] == "partial_fill"
    parts = _pair_parts(live, bt, causes, marks)
    assert sum(parts.values()) == pytest.approx(contribution(live, marks) - contribution(bt, marks))
    assert parts["partial_fill"] == pytest.approx(-4 * (101.0 - 100.0))  # 4 shares never bought
    assert parts["commission"] == pytest.approx(-0.5)


def test_orders_are_matched_by_bar_asset_side_and_sequence_not_by_id():
    live = [_order("S-20240304T143000-AAPL-b2"), _order("S-20240304T143000-AAPL-b1", qty=5)]
    bt = [_order("ORD-7", qty=5), _order("ORD-8"), _order("ORD-9", side="sell")]
    matched = match_orders(live, bt)
    assert [(a.order_id, b.order_id) for a, b in matched.pairs] == [
        ("S-20240304T143000-AAPL-b1", "ORD-7"), ("S-20240304T143000-AAPL-b2", "ORD-8")]
    assert [o.order_id for o in matched.backtest_only] == ["ORD-9"] and not matched.live_only


def test_a_smaller_order_filled_in_full_is_not_a_partial_fill():
    """A fill is partial when the live order filled less than its own quantity, not less than the
    backtest's order (the review's repro: 111 filled of 111, the backtest 112)."""
    bt = _order("ORD-1", qty=112.0, fills=[(1, 112, 100.0)])
    causes, detail = classify_pair(_order(qty=111.0, fills=[(1, 111, 100.0)]), bt, CLOCK)
    assert causes == ["unexplained"] and "sized differently" in detail  # no earlier difference: see below
    causes, detail = classify_pair(_order(qty=112.0, fills=[(1, 100, 100.0)], status="cancelled"), bt, CLOCK)
    assert causes == ["partial_fill"] and "filled 100 of its 112" in detail


def _session(orders: list[dict], fills: list[dict], final_value: float) -> SessionData:
    bars = pl.DataFrame({"timestamp": [T0 + timedelta(minutes=i) for i in range(5)], "asset": ["AAPL"] * 5,
                         "close": [100.0, 100.0, 100.0, 100.0, 101.0]})  # fmt: skip
    return SessionData(path=Path("."), bars=bars, signals=None, context=None, orders=pl.DataFrame(orders),
                       fills=pl.DataFrame(fills), equity=pl.DataFrame(), command={}, external=[],
                       summary={"initial_cash": 100_000.0, "final_value": final_value})  # fmt: skip


def _rows(prefix: str, specs: list[tuple]) -> tuple[list[dict], list[dict]]:
    """(minute made, quantity, status, filled, rejection) -> order rows, and fills a bar later at 100."""
    orders, fills = [], []
    for i, (minute, qty, status, filled, rejection) in enumerate(specs, 1):
        made = T0 + timedelta(minutes=minute)
        orders.append({"order_id": f"{prefix}{i}", "asset": "AAPL", "side": "buy", "created_at": made,
                       "quantity": qty, "status": status, "rejection_reason": rejection,
                       "rejection_code": "venue_rejected" if rejection else None})  # fmt: skip
        if filled:
            fills.append({"order_id": f"{prefix}{i}", "asset": "AAPL", "side": "buy", "quantity": filled,
                          "timestamp": made + timedelta(minutes=1), "price": 100.0, "commission": 0.0})  # fmt: skip
    return orders, fills


@pytest.mark.parametrize(("venue_rejection_first", "sizing_cause"), [(True, "knock_on"), (False, "unexplained")])
def test_an_order_sized_differently_after_an_earlier_difference_follows_it(venue_rejection_first, sizing_cause):
    """Live: the venue refuses the first buy, so the strategy has more cash on the next one and buys
    20 where the backtest buys 15 (each filled in full: a knock-on, not a partial fill); then the
    venue fills 6 of an order for 10 (a partial fill). Without the earlier rejection the sizing
    difference has nothing to follow: unexplained. The causes add up to the gap either way."""
    first = [(0, 10.0, "rejected", 0, "Order rejected - insufficient margin")] if venue_rejection_first else []
    live_orders, live_fills = _rows("S-b", [*first, (2, 20.0, "filled", 20, None), (3, 10.0, "cancelled", 6, None)])
    bt_first = [(0, 10.0, "filled", 10, None)] if venue_rejection_first else []
    bt_orders, bt_fills = _rows("ORD-", [*bt_first, (2, 15.0, "filled", 15, None), (3, 10.0, "filled", 10, None)])
    bt_pnl = 35.0 if venue_rejection_first else 25.0  # each share bought at 100, marked at 101
    session = _session(live_orders, live_fills, 100_026.0)
    backtest = BacktestRun(pl.DataFrame(bt_orders), pl.DataFrame(bt_fills), pl.DataFrame(), 100_000.0 + bt_pnl,
                           100_000.0)  # fmt: skip
    result = compare(session, backtest)
    by_minute = {int((d.decided_at - T0).total_seconds() // 60): d for d in result.differences}
    assert by_minute[2].cause == sizing_cause and by_minute[2].parts == {sizing_cause: pytest.approx(5.0)}
    assert by_minute[3].cause == "partial_fill" and by_minute[3].parts == {"partial_fill": pytest.approx(-4.0)}
    assert "unexplained" not in result.counts() if venue_rejection_first else result.counts()["unexplained"] == 1
    assert sum(result.attribution.values()) == pytest.approx(result.gap) and abs(result.residual) < 1e-9
