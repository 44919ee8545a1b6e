"""The rails' fast paths give the answers of the paths they shortcut (docs/performance.md, "The risk rails").

* ``OrderRate.admit(now)`` == ``refusal(now)`` and, when there is none, ``record(now)``.
* ``Exposure.order_ended(id, filled)`` == ``order_filled(id, filled)`` (when filled > 0) then
  ``order_closed(id)``.
* ``PreTradeRisk.check`` with no new-risk limit (the safe defaults: the rate alone in ACTIVE)
  refuses exactly what the full path refuses when a new-risk limit that never binds is set.
"""

from __future__ import annotations

import random

from ml4t.backtest import OrderSide, OrderType

from ml4t_live.risk import (
    ACTIVE,
    HALTED,
    REDUCING,
    Exposure,
    OrderRate,
    PreTradeRisk,
    RiskConfig,
)

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_admit_answers_and_records_as_refusal_then_record():
    rng = random.Random(7)
    fast, slow = OrderRate(12, 2), OrderRate(12, 2)
    now, answers = 0.0, []
    for _ in range(3_000):
        now += rng.choice((0.0, 0.01, 0.3, 0.9, 1.0, 5.0, 20.0))
        expected = slow.refusal(now)
        if expected is None:
            slow.record(now)
        got = fast.admit(now)
        assert got == expected
        assert fast.in_last_minute(now) == slow.in_last_minute(now)
        answers.append(got is None)
    assert any(answers) and not all(answers)  # both answers were exercised


def test_admit_without_a_limit_never_refuses_and_keeps_nothing():
    rate = OrderRate(None, None)
    assert all(rate.admit(float(t)) is None for t in range(100))
    assert rate.in_last_minute(100.0) == 0


def test_order_ended_is_the_last_fill_then_closed():
    rng = random.Random(11)
    for _ in range(500):
        one, two = Exposure(), Exposure()
        orders = []
        for n in range(rng.randint(1, 6)):
            args = (f"o{n}", rng.choice("AB"), rng.choice((BUY, SELL)), rng.choice((1.0, 2.5, 10.0, 0.1)))
            contingent = rng.random() < 0.2
            one.order_working(*args, contingent=contingent)
            two.order_working(*args, contingent=contingent)
            orders.append(args[0])
        for oid in orders:
            if rng.random() < 0.4:  # an earlier partial fill, seen on a previous bar
                part = rng.choice((0.1, 0.5, 1.0))
                one.order_filled(oid, part)
                two.order_filled(oid, part)
        rng.shuffle(orders)
        for oid in orders + ["unknown"]:
            last = rng.choice((0.0, 0.1, 0.3, 1.0, 2.5, 7.0, 50.0))
            if last > 0:
                one.order_filled(oid, last)
            one.order_closed(oid)
            two.order_ended(oid, last)
            for asset in "AB":
                a, b = one.view(asset), two.view(asset)
                assert (a.working_buy, a.working_sell) == (b.working_buy, b.working_sell)
            assert one.working_orders == two.working_orders


def _orders(rng: random.Random, n: int):
    for _ in range(n):
        yield (rng.choice("AB"), rng.choice((BUY, SELL)), rng.choice((1.0, 5.0, 50.0, -1.0, 0.0, float("nan"))),
               rng.choice((ACTIVE, ACTIVE, REDUCING, HALTED)), rng.choice((0.0, 0.05, 0.2, 1.0)))  # fmt: skip


def test_the_defaults_fast_path_refuses_what_the_full_path_refuses():
    rng = random.Random(3)
    # the safe defaults, shorting allowed (a shadow run whose backtest allows it): the rate alone
    fast = PreTradeRisk(RiskConfig(max_orders_per_minute=30, allow_short=True))
    full = PreTradeRisk(RiskConfig(max_orders_per_minute=30, allow_short=True, max_order_quantity=1e12))
    assert not fast.judges_new_risk and full.judges_new_risk
    for risk in (fast, full):
        risk.exposure.set_position("A", 10.0)
        risk.exposure.set_position("B", -5.0)
    now, codes = 0.0, set()
    for asset, side, quantity, state, step in _orders(rng, 4_000):
        now += step
        kw = {"now": now, "equity": 1e6, "open_orders": 0, "state": state, "state_reason": "test"}
        got = fast.check(asset, side, quantity, OrderType.MARKET, **kw)
        expected = full.check(asset, side, quantity, OrderType.MARKET, **kw)
        assert got == expected
        codes.add(None if got is None else got.code)
    assert codes == {None, "max_orders_per_minute", "reducing", "halted", "invalid_quantity"}


def test_a_new_risk_refusal_gives_way_to_the_rate_limit_and_uses_no_budget():
    risk = PreTradeRisk(RiskConfig(max_orders_per_minute=6, max_order_quantity=10))
    kw = {"now": 100.0, "equity": 1e6, "open_orders": 0}
    assert risk.check("A", BUY, 1.0, **kw) is None  # the burst cap is ceil(6 / 6) = 1 per second
    assert risk.check("A", BUY, 50.0, **kw).code == "max_orders_per_minute"  # both break: the rate's
    kw["now"] = 101.5
    assert risk.check("A", BUY, 50.0, **kw).code == "max_order_quantity"
    assert risk.check("A", BUY, 1.0, **kw) is None  # the refused order used no budget
