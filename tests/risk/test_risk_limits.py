"""PreTradeRisk.check: every limit just under / at / over, reducing orders, flips, brackets.

"At" a limit passes, over it is refused; a refusal's code is the limit's name and its reason
gives the numbers.
"""

from __future__ import annotations

import pytest
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.risk import ACTIVE, HALTED, REDUCING, PreTradeRisk, RiskConfig

BUY, SELL = OrderSide.BUY, OrderSide.SELL
NOW = 1_000.0


def make(position: float = 0.0, price: float | None = 100.0, *, multiplier: float = 1.0, **limits) -> PreTradeRisk:
    limits.setdefault("max_orders_per_minute", None)
    risk = PreTradeRisk(RiskConfig(**limits))
    risk.exposure.set_position("A", position, multiplier)
    if price is not None:
        risk.exposure.set_price("A", price, NOW)
    return risk


def check(risk: PreTradeRisk, side: OrderSide, quantity: float, order_type: OrderType = OrderType.MARKET,
          limit_price: float | None = None, stop_price: float | None = None, *, asset: str = "A",
          now: float = NOW, equity: float = 1e9, open_orders: int = 0, **kw):  # fmt: skip
    return risk.check(asset, side, quantity, order_type, limit_price, stop_price, now=now, equity=equity,
                      open_orders=open_orders, **kw)  # fmt: skip


def codes(risk: PreTradeRisk, side: OrderSide, quantities, **kw) -> list[str | None]:
    out = []
    for q in quantities:
        refusal = check(risk, side, q, **kw)
        out.append(None if refusal is None else refusal.code)
    return out


# ---------------------------------------------------------------- each limit: under / at / over
def test_max_order_notional():
    risk = make(price=200.0, max_order_notional=25_000)
    assert codes(risk, BUY, [124, 125, 126]) == [None, None, "max_order_notional"]
    assert check(risk, BUY, 150).reason == "max_order_notional: 150 x 200.00 = 30,000.00 > 25,000.00"


def test_max_order_notional_counts_the_contract_multiplier():
    risk = make(price=4_500.0, multiplier=50, max_order_notional=450_000)
    assert codes(risk, BUY, [1, 2, 3]) == [None, None, "max_order_notional"]
    assert check(risk, BUY, 3).reason == "max_order_notional: 3 x 4,500.00 x 50 = 675,000.00 > 450,000.00"


def test_notional_uses_the_highest_of_last_limit_and_stop_price():
    risk = make(price=200.0, max_order_notional=25_000)
    assert check(risk, BUY, 100, OrderType.LIMIT, limit_price=250.0) is None  # 25,000: at
    refusal = check(risk, BUY, 100, OrderType.LIMIT, limit_price=260.0)
    assert refusal.reason == "max_order_notional: 100 x 260.00 = 26,000.00 > 25,000.00"
    assert check(risk, BUY, 100, OrderType.STOP, stop_price=251.0).code == "max_order_notional"


def test_max_order_quantity():
    risk = make(max_order_quantity=1_000)
    assert codes(risk, BUY, [999, 1_000, 1_001]) == [None, None, "max_order_quantity"]
    assert check(risk, BUY, 1_000.5).reason == "max_order_quantity: 1,000.5 > 1,000"


def test_max_position_notional_is_the_position_after_the_order():
    risk = make(position=400, max_position_notional=50_000)  # 40,000 now
    assert codes(risk, BUY, [99, 100, 101]) == [None, None, "max_position_notional"]
    assert check(risk, BUY, 101).reason == (
        "max_position_notional: A 501 x 100.00 = 50,100.00 after the order > 50,000.00"
    )


def test_max_position_notional_counts_working_orders_on_the_same_side():
    risk = make(position=400, max_position_notional=50_000)
    risk.exposure.order_working("o1", "A", BUY, 50)
    risk.exposure.order_working("o2", "A", SELL, 30, contingent=True)  # an exit leg: not counted
    assert codes(risk, BUY, [49, 50, 51]) == [None, None, "max_position_notional"]
    risk.exposure.order_filled("o1", 20)  # 20 of the 50 filled: the position moves, the working shrinks
    risk.exposure.set_position("A", 420)
    assert codes(risk, BUY, [50, 51]) == [None, "max_position_notional"]
    risk.exposure.order_closed("o1")  # the other 30 were cancelled
    assert codes(risk, BUY, [80, 81]) == [None, "max_position_notional"]


def test_max_gross_exposure_is_after_the_order_over_equity():
    risk = make(price=50.0, max_gross_exposure=1.5)
    risk.exposure.set_position("B", 1_000)
    risk.exposure.set_price("B", 100.0, NOW)  # 100,000 gross in B
    kw = {"equity": 100_000.0}
    assert codes(risk, BUY, [999, 1_000, 1_001], **kw) == [None, None, "max_gross_exposure"]
    assert check(risk, BUY, 1_001, **kw).reason == (
        "max_gross_exposure: gross 150,050.00 after the order / equity 100,000.00 = 1.50x > 1.5x"
    )
    assert check(risk, BUY, 1, equity=0.0).reason == "max_gross_exposure: equity is 0.00: no new exposure"


def test_max_gross_exposure_replaces_the_assets_own_contribution():
    risk = make(position=-500, price=100.0, max_gross_exposure=1.0, allow_short=True)  # 50,000 short
    assert check(risk, SELL, 500, equity=100_000.0) is None  # -1,000 x 100 = 100,000: at
    assert check(risk, SELL, 501, equity=100_000.0).code == "max_gross_exposure"


def test_max_open_orders_counts_this_order():
    risk = make(max_open_orders=20)
    results = [check(risk, BUY, 1, open_orders=n) for n in (18, 19, 20)]
    assert [r and r.code for r in results] == [None, None, "max_open_orders"]
    assert results[2].reason == "max_open_orders: 20 working + this one = 21 > 20"


def test_price_collar_on_limit_and_stop_prices():
    risk = make(price=100.0, price_collar=0.05)
    limit = [check(risk, BUY, 1, OrderType.LIMIT, limit_price=p) for p in (104.99, 105.0, 105.01)]
    assert [r and r.code for r in limit] == [None, None, "price_collar"]
    assert limit[2].reason == "price_collar: limit 105.01 is 5.01% from the last price 100.00 > 5.00%"
    stop = [check(risk, BUY, 1, OrderType.STOP, stop_price=p) for p in (95.01, 95.0, 94.99)]
    assert [r and r.code for r in stop] == [None, None, "price_collar"]
    both = check(risk, BUY, 1, OrderType.STOP_LIMIT, limit_price=101.0, stop_price=94.0)
    assert both.reason.startswith("price_collar: stop 94.00")
    assert check(risk, BUY, 1_000_000) is None  # a market order has no price to collar


def test_price_collar_without_a_last_price_refuses_new_risk():
    risk = make(price=None, price_collar=0.05)
    refusal = check(risk, BUY, 1, OrderType.LIMIT, limit_price=100.0)
    assert refusal.code == "price_collar" and "no last price for A" in refusal.reason


def test_max_data_age():
    risk = make(max_data_age=120.0)  # the price is valid for NOW
    results = [check(risk, BUY, 1, now=NOW + age) for age in (119.0, 120.0, 121.0)]
    assert [r and r.code for r in results] == [None, None, "max_data_age"]
    assert results[2].reason == ("max_data_age: the last A price is 121.0 s old > 120 s: "
                                 "no new risk on stale prices")  # fmt: skip


def test_max_data_age_without_a_price_time_refuses_new_risk():
    risk = make(price=None, max_data_age=120.0)
    risk.exposure.set_price("A", 100.0)  # a price without its market time
    assert check(risk, BUY, 1).code == "max_data_age"


def test_allow_short():
    risk = make(allow_short=False)
    refusal = check(risk, SELL, 1)
    assert refusal.code == "allow_short"
    assert refusal.reason == "allow_short is false: A position 0 - 1 would be -1 (short)"
    assert check(make(allow_short=True), SELL, 1) is None


def test_allow_short_counts_working_sells():
    risk = make(position=100, allow_short=False)
    risk.exposure.order_working("stop", "A", SELL, 100)
    assert check(risk, SELL, 100) is None  # an exit: never blocked by the strategy's own working stop
    risk.exposure.set_position("A", 150)
    assert check(risk, SELL, 160).code == "allow_short"  # new risk: 150 - 100 working - 160 < 0


def test_new_risk_without_any_price_is_refused_when_a_notional_limit_is_set():
    risk = make(price=None, max_position_notional=50_000)
    refusal = check(risk, BUY, 1)
    assert refusal.code == "no_price" and "no price for A yet" in refusal.reason
    assert check(risk, BUY, 1, OrderType.LIMIT, limit_price=100.0) is None  # the limit price is a price
    assert check(make(price=None), BUY, 1) is None  # no price-based limit: nothing to check


# ---------------------------------------------------------------- reducing orders and states
def test_a_reducing_order_is_exempt_from_size_price_exposure_and_data_limits():
    risk = make(position=1_000, price=100.0, max_order_notional=25_000, max_order_quantity=10,
                max_position_notional=1_000, max_gross_exposure=0.1, price_collar=0.01, max_data_age=1.0,
                max_open_orders=1)  # fmt: skip
    late = NOW + 3_600
    assert check(risk, SELL, 1_000, now=late, open_orders=5, equity=1.0) is None
    assert check(risk, SELL, 10, OrderType.LIMIT, limit_price=50.0, now=late, open_orders=5) is None
    assert check(risk, BUY, 1, now=late, open_orders=5).code == "max_open_orders"  # they stop new risk
    assert check(risk, BUY, 1, now=late).code == "max_data_age"


def test_a_reducing_order_passes_without_any_price():
    risk = make(position=-100, price=None, max_order_notional=25_000, max_data_age=60.0)
    assert check(risk, BUY, 100) is None


def test_reducing_state_lets_only_reducing_orders_through():
    risk = make(position=100)
    kw = {"state": REDUCING, "state_reason": "max_daily_loss: ..."}
    assert check(risk, SELL, 40, **kw) is None
    assert check(risk, SELL, 100, **kw) is None
    more = check(risk, BUY, 1, **kw)
    assert more.code == "reducing"
    assert more.reason == ("trading is REDUCING (max_daily_loss: ...): only orders that reduce a position "
                           "leave; a buy of 1 would increase the A position of 100")  # fmt: skip
    flip = check(risk, SELL, 150, **kw)
    assert flip.code == "reducing"
    assert flip.reason.endswith("a sell of 150 would take the A position of 100 through zero to -50; "
                                "at most 100 closes it")  # fmt: skip
    opening = check(make(), BUY, 1, state=REDUCING)
    assert opening.reason == ("trading is REDUCING: only orders that reduce a position leave; "
                              "A is flat, so a buy of 1 opens a position")  # fmt: skip


def test_a_flip_in_active_is_checked_as_new_risk_on_what_it_leaves():
    risk = make(position=100, max_order_quantity=1_000, max_position_notional=5_000, allow_short=True)
    assert check(risk, SELL, 150) is None  # leaves -50 x 100 = 5,000: at
    assert check(risk, SELL, 151).code == "max_position_notional"
    assert check(make(position=100), SELL, 150).code == "allow_short"
    assert check(make(position=100, max_order_quantity=120), SELL, 150).code == "max_order_quantity"


def test_halted_refuses_every_order_even_an_exit():
    risk = make(position=100)
    refusal = check(risk, SELL, 100, state=HALTED, state_reason="halted by the operator")
    assert refusal.code == "halted"
    assert refusal.reason == "trading is HALTED (halted by the operator): no order leaves"
    assert refusal.as_tuple() == ("halted", refusal.reason)


def test_bracket_legs_are_exits_of_their_live_entry():
    risk = make(allow_short=False)
    assert check(risk, BUY, 100) is None  # the entry
    risk.exposure.order_working("entry", "A", BUY, 100)
    risk.exposure.order_working("tp", "A", SELL, 100, contingent=True)
    risk.exposure.order_working("sl", "A", SELL, 100, contingent=True)
    for leg in (OrderType.LIMIT, OrderType.STOP):
        price = {"limit_price": 110.0} if leg is OrderType.LIMIT else {"stop_price": 90.0}
        assert check(risk, SELL, 100, leg, **price, parent_quantity=100, state=REDUCING) is None
    assert risk.exposure.view("A").working_sell == 0  # the legs never count as working sells
    assert risk.exposure.working_orders == 3
    # the entry was refused (nothing working): its legs are judged on the flat position, shorts
    assert check(make(allow_short=False), SELL, 100, OrderType.LIMIT, limit_price=110.0).code == "allow_short"


def test_a_protective_stop_placed_with_its_unfilled_entry_is_not_a_short():
    risk = make(allow_short=False)
    risk.exposure.order_working("entry", "A", BUY, 100)  # a market buy, not filled yet
    assert check(risk, SELL, 100, OrderType.STOP, stop_price=90.0) is None
    refused = check(risk, SELL, 150, OrderType.STOP, stop_price=90.0)
    assert refused.code == "allow_short" and "would be -50" in refused.reason


@pytest.mark.parametrize("quantity", [0, -5, float("nan")])
def test_a_quantity_that_is_not_positive_is_refused(quantity):
    assert check(make(), BUY, quantity).code == "invalid_quantity"


def test_usage_shows_each_per_order_limit_and_what_is_used():
    risk = make(position=100, price=100.0, max_open_orders=20, max_gross_exposure=1.5, max_orders_per_minute=60)
    assert check(risk, BUY, 1) is None
    rows = {name: (limit, used) for name, limit, used in risk.usage(now=NOW, equity=20_000.0, open_orders=3)}
    assert rows["max_open_orders"] == ("20", "3")
    assert rows["max_orders_per_minute"] == ("60 (burst 10/s)", "1 in the last 60 s")
    assert rows["max_gross_exposure"] == ("1.5", "0.50x (10,000.00)")
    assert rows["max_order_notional"] == ("none", "per order")
    assert "max_daily_loss" not in rows  # the trading state reports its own triggers
    assert ACTIVE == "ACTIVE"


def test_usage_shows_the_largest_position_and_the_oldest_price():
    risk = make(position=100, price=100.0, max_position_notional=50_000, max_data_age=120)
    risk.exposure.set_position("B", -3, 50.0)
    risk.exposure.set_price("B", 20.0, NOW - 30)

    def rows():
        return {name: (limit, used) for name, limit, used in risk.usage(now=NOW + 5, equity=1e6, open_orders=0)}

    assert rows()["max_position_notional"] == ("50,000", "largest A 10,000.00")  # B: 3 x 20 x 50 = 3,000
    assert rows()["max_data_age"] == ("120s", "oldest held B 35.0 s")
    risk.exposure.set_position("C", 1)
    assert rows()["max_position_notional"] == ("50,000", "largest A 10,000.00; no price for C")
    assert rows()["max_data_age"] == ("120s", "oldest held B 35.0 s; no price time for C")
    risk.exposure.set_position("B", 0)  # an asset no longer held: its price's age is not the limit's use
    assert rows()["max_data_age"] == ("120s", "oldest held A 5.0 s; no price time for C")
    risk.exposure.set_position("A", 0)
    assert rows()["max_position_notional"] == ("50,000", "no priced position; no price for C")
    assert rows()["max_data_age"] == ("120s", "no price time for C")
    risk.exposure.set_position("C", 0)
    risk.exposure.set_prices({"A": 100.0, "B": 20.0}, NOW - 2)  # a bar's prices, nothing held
    assert rows()["max_data_age"] == ("120s", "last bar 7.0 s")
    unpriced = make(max_data_age=120, price=None).usage(now=NOW, equity=1e6, open_orders=0)
    assert {name: used for name, _, used in unpriced}["max_data_age"] == "no price yet"


def test_usage_says_the_prices_age_is_unknown_when_no_arrival_was_journaled():
    # the usage row behind age_unknown (set by RiskGate.clock_from on a bar replayed from a journal
    # that does not say when it arrived) had no test when usage became a function of what it reads
    risk = make(position=100, price=100.0, max_data_age=120)
    risk.age_unknown = True
    rows = {name: used for name, _, used in risk.usage(now=NOW + 5, equity=1e6, open_orders=0)}
    assert rows["max_data_age"] == "unknown (the last bar's arrival was not journaled)"


def test_only_the_prices_the_order_type_uses_are_checked():
    risk = make(price=100.0, price_collar=0.05, max_order_notional=10_000)
    assert check(risk, BUY, 100, OrderType.MARKET, limit_price=500.0, stop_price=1.0) is None
    assert check(risk, BUY, 1, OrderType.LIMIT, limit_price=101.0, stop_price=1.0) is None
    assert check(risk, BUY, 1, OrderType.STOP, limit_price=1.0, stop_price=101.0) is None
    assert check(risk, BUY, 1, OrderType.STOP, stop_price=200.0).code == "price_collar"


def test_a_change_replaces_its_order_rather_than_adding_to_it():
    risk = make(position=400, max_position_notional=50_000, max_open_orders=2)
    risk.exposure.order_working("o1", "A", BUY, 60)
    risk.exposure.order_working("o2", "A", BUY, 20)
    # o1 60 -> 80: 400 + 20 (o2) + 80 = 500 x 100 = 50,000: at, and it adds no open order
    assert check(risk, BUY, 80, open_orders=2, replacing="o1") is None
    assert check(risk, BUY, 81, open_orders=2, replacing="o1").code == "max_position_notional"
    assert check(risk, BUY, 1, open_orders=2).code == "max_open_orders"  # a new order would
    assert check(risk, BUY, 61, open_orders=1, replacing="unknown").code == "max_position_notional"
    assert risk.exposure.remaining("o1", "A", SELL) == 0.0


def test_an_unknown_trading_state_is_a_programming_error_not_active():
    with pytest.raises(ValueError, match="trading state must be one of ACTIVE, REDUCING, HALTED, got 'halted'"):
        check(make(), BUY, 1, state="halted")
