"""Classification and attribution on order records built by hand (pure functions, no run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml4t_live.reports.causes import (
    BarClock,
    classify_pair,
    rejection_cause,
    slippage_bps,
)
from ml4t_live.reports.orders import OrderRecord, match_orders
from ml4t_live.reports.parity import _pair_parts, contribution

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
