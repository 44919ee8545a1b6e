"""The order-rate limit: the 60 s window, the per-second burst cap, and what counts."""

from __future__ import annotations

from ml4t.backtest import OrderSide

from ml4t_live.risk import OrderRate, PreTradeRisk, RiskConfig


def _sent(rate: OrderRate, now: float) -> bool:
    if rate.refusal(now) is not None:
        return False
    rate.record(now)
    return True


def test_the_burst_cap_is_a_half_open_one_second_window():
    rate = OrderRate(per_minute=12, per_second=2)
    assert _sent(rate, 0.0) and _sent(rate, 0.5)
    reason = rate.refusal(0.99)
    assert reason == ("max_orders_per_minute (burst): 2 orders in the last second, the burst cap is "
                      "ceil(12 / 6) = 2 per second")  # fmt: skip
    assert _sent(rate, 1.0)  # the order of t=0 left the window (now - 1, now] exactly now
    assert not _sent(rate, 1.4)
    assert _sent(rate, 1.5)


def test_the_minute_window_just_under_at_and_over():
    rate = OrderRate(per_minute=12, per_second=2)
    for i in range(11):  # just under: one order every 2 s never meets the burst cap
        assert _sent(rate, 2.0 * i)
    assert rate.in_last_minute(20.0) == 11
    assert _sent(rate, 22.0)  # at: the 12th order in the minute leaves
    reason = rate.refusal(24.0)  # over: the 13th is refused
    assert reason == ("max_orders_per_minute: 12 orders in the last 60 s = the cap of 12; "
                      "the next order may leave in 36.0 s")  # fmt: skip
    assert not _sent(rate, 59.99)
    assert _sent(rate, 60.0)  # the order of t=0 expired
    assert not _sent(rate, 61.0)  # t=2 is still inside (1, 61]
    assert _sent(rate, 62.0)


def test_no_limit_never_refuses_and_keeps_nothing():
    rate = OrderRate(per_minute=None, per_second=None)
    assert all(_sent(rate, 0.0) for _ in range(1_000))
    assert rate.in_last_minute(0.0) == 0


def test_refused_orders_use_no_budget_and_exits_are_counted_too():
    risk = PreTradeRisk(RiskConfig(max_orders_per_minute=6, max_order_quantity=10))  # burst 1 per second
    risk.exposure.set_position("A", 100)
    risk.exposure.set_price("A", 10.0, 0.0)
    kw = {"equity": 1e6, "open_orders": 0}
    assert risk.check("A", OrderSide.BUY, 11, now=0.0, **kw).code == "max_order_quantity"  # refused: not counted
    assert risk.check("A", OrderSide.BUY, 5, now=0.0, **kw) is None
    # an exit is rate-limited like any order: the limit bounds the message flow to the venue
    refusal = risk.check("A", OrderSide.SELL, 100, now=0.5, **kw)
    assert refusal.code == "max_orders_per_minute" and "burst" in refusal.reason
    assert risk.check("A", OrderSide.SELL, 100, now=1.0, **kw) is None
    assert risk.rate.in_last_minute(1.0) == 2
