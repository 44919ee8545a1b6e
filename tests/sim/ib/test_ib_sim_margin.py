"""IB's pre-trade margin check at submission, through the real ib_async client: an order over
the limit gets 201 before any bar advances, one under it is accepted, working orders count, a
fully invested rebalance is accepted on the (default) margin account and filled as the backtest
fills it, a cash account refuses the buys its pending sells would fund (as a TWS cash account
does), and the fill keeps the backtest's own rule for what only the fill knows."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import polars as pl
import pytest
from ib_async import LimitOrder, MarketOrder
from ibsim_support import (
    SLOTS,
    START,
    Planned,
    advance,
    backtest_fills,
    make_bars,
    stock,
    until,
)
from ml4t.backtest import BacktestConfig, OrderSide

from ml4t_live.errors import ConfigError
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.sim.ib.account import account_values
from ml4t_live.sim.ib.admission import margin_problem
from ml4t_live.sim.ib.margin import AccountModel, Intent, worst_case

REJECTED = r"Error 201, reqId \d+: Order rejected - reason:YOUR ORDER IS NOT ACCEPTED"


def _errors(ib) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


def test_an_order_over_the_margin_limit_gets_201_at_submission(client, gateway, ib_errors):
    ib_errors.expect(REJECTED)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        seen = _errors(ib)
        # Reg T: 50% of 2001 x 100 = 100,050 > the equity of 100,000 (no price yet: the limit's)
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 2001, 100.0, orderRef="over"))
        await until(lambda: any(code == 201 for _, code, _ in seen), what="the 201")
        await until(lambda: trade.orderStatus.status == "Inactive", what="Inactive")
        return trade, seen

    trade, seen = client.run(scenario)
    [(req_id, _, text)] = seen
    assert req_id == trade.order.orderId
    assert text == (
        "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
        "POSITION YOUR EQUITY WITH LOAN VALUE [100000.00 USD] MUST EXCEED THE INITIAL MARGIN "
        "[100050.00 USD]"
    )
    assert gateway.bars_replayed == 0  # decided at submission: no bar has advanced
    assert gateway.account.positions == {}


def test_an_order_under_the_limit_is_accepted_and_working_orders_count(client, gateway, ib_errors):
    ib_errors.expect(REJECTED)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        seen = _errors(ib)
        first = ib.placeOrder(aapl, LimitOrder("BUY", 1000, 100.0, orderRef="a"))
        second = ib.placeOrder(aapl, LimitOrder("BUY", 999, 100.0, orderRef="b"))  # 99,950: just under
        await until(lambda: first.orderStatus.status == second.orderStatus.status == "Submitted",
                    what="both accepted")  # fmt: skip
        third = ib.placeOrder(aapl, LimitOrder("BUY", 10, 100.0, orderRef="c"))  # the working two count
        sell = ib.placeOrder(aapl, LimitOrder("SELL", 10, 100.0, orderRef="d"))  # reduces: never refused
        await until(lambda: third.orderStatus.status == "Inactive" and sell.orderStatus.status == "Submitted",
                    what="the third refused, the sell accepted")  # fmt: skip
        return seen

    seen = client.run(scenario)
    [(_, code, text)] = seen
    assert code == 201 and "MUST EXCEED THE INITIAL MARGIN [100450.00 USD]" in text  # (1000 + 999 + 10) x 100 x 50%
    assert gateway.bars_replayed == 0


AAPL_Q, SELL_Q, MSFT_Q = 990, 500, 150


def _rebalance(entry: int = AAPL_Q):
    """Bar 0: buy ``entry`` AAPL (fills at bar 1's open; 990: ~99.5% invested). Bar 1: sell 500 AAPL and buy
    150 MSFT (~45,000, far beyond the ~500 of cash) in the same bar. Returns the buy's status
    when it was answered, how many 5-second bars had arrived by then, and the buy's trade."""

    async def scenario(ib):
        aapl, msft = await stock(ib, "AAPL"), await stock(ib, "MSFT")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)  # bar 0 published
        trade = ib.placeOrder(aapl, MarketOrder("BUY", entry, orderRef="entry"))
        await until(lambda: trade.orderStatus.status == "Submitted", what="entry accepted")
        await advance(ib, rt)  # bar 1: the entry filled at its open
        await until(trade.isDone, what="the entry filled")
        sell = ib.placeOrder(aapl, MarketOrder("SELL", SELL_Q, orderRef="sell"))
        buy = ib.placeOrder(msft, MarketOrder("BUY", MSFT_Q, orderRef="buy"))
        await until(lambda: buy.orderStatus.status in ("Submitted", "Inactive"), what="the buy's answer")
        answered_before_bar = (buy.orderStatus.status, len(rt))
        await advance(ib, rt)  # bar 2: sells first, then the buy
        await until(lambda: sell.isDone() and buy.isDone(), what="the rebalance done")
        return answered_before_bar, buy

    return scenario


def test_a_fully_invested_rebalance_is_accepted_on_a_margin_account_and_fills_as_the_backtest(
    client, gateway
):
    (status, slots), buy = client.run(_rebalance())
    assert (status, slots) == ("Submitted", 2 * SLOTS)  # accepted at submission, before bar 2
    assert buy.orderStatus.status == "Filled"
    plan = [Planned(0, "AAPL", OrderSide.BUY, AAPL_Q), Planned(1, "AAPL", OrderSide.SELL, SELL_Q),
            Planned(1, "MSFT", OrderSide.BUY, MSFT_Q)]  # fmt: skip
    sim = sorted((f.time, f.info.symbol, f.side, f.shares, round(f.price, 6)) for f in gateway.fills)
    assert sim == backtest_fills(make_bars(), plan)
    assert len(sim) == 3


def test_a_cash_account_refuses_the_buy_its_pending_sale_would_fund(gateway_factory, client_factory, ib_errors):
    ib_errors.expect(REJECTED)
    gw = gateway_factory(account_type="cash")
    client = client_factory(1, port=gw.port)
    # 940: a cash account's market buy needs a 5% cushion (990 x 100.5 x 1.05 > 100,000)
    (status, slots), buy = client.run(_rebalance(940))
    assert (status, slots) == ("Inactive", 2 * SLOTS)  # refused at submission: the sale had not filled
    [text] = [e.message for e in buy.log if e.errorCode == 201]
    assert "YOUR ORDER IS NOT ACCEPTED" in text
    assert set(gw.account.positions) == {"AAPL"}


def test_the_fill_keeps_the_backtests_rule_for_a_price_that_moved(gateway_factory, client_factory, ib_errors):
    ib_errors.expect(r"Error 201, reqId \d+: Order rejected - reason:Insufficient cash")
    rows = [(0, 100.0), (1, 110.0), (2, 110.0)]  # the price gaps up between bar 0 and bar 1
    bars = pl.DataFrame([  # MSFT too: one subscription does not release the first bar by itself
        {"timestamp": START + timedelta(minutes=i), "symbol": sym, "open": p, "high": p,
         "low": p, "close": p, "volume": 1000.0} for i, p in rows for sym in ("AAPL", "MSFT")
    ])  # fmt: skip
    gw = gateway_factory(bars, account_type="cash")
    client = client_factory(1, port=gw.port)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        # 940 x 100 x 1.05 (a cash account's market-order cushion) = 98,700: within the cash
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 940, orderRef="gap"))
        await until(lambda: trade.orderStatus.status == "Submitted", what="accepted")
        await advance(ib, rt)  # fills at 110: 103,400 > 100,000, refused at the fill
        await until(trade.isDone, what="the fill-time answer")
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "Inactive"
    assert gw.account.positions == {}


def test_what_if_returns_the_margin_accounts_numbers(gateway_factory, client_factory):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        return await ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 10))

    margin = client_factory(1).run(scenario)
    cash_gw = gateway_factory(account_type="cash")
    cash = client_factory(2, port=cash_gw.port).run(scenario)
    assert float(margin.initMarginChange) == pytest.approx(502.5)  # 50% of 10 x 100.5
    assert float(margin.maintMarginChange) == pytest.approx(251.25)
    assert float(cash.initMarginChange) == pytest.approx(1005.0)  # a cash account: the full value
    assert float(margin.equityWithLoanAfter) == pytest.approx(100_000.0)


# ----------------------------------------------------------------------------- the pure model
def test_account_model_rates_and_choices():
    assert AccountModel.for_account("margin") == AccountModel("margin", 0.5, 0.25)
    assert AccountModel.for_account("cash") == AccountModel("cash", 1.0, 1.0)
    levered = BacktestConfig(allow_leverage=True, allow_short_selling=True, initial_margin=0.4,
                             long_maintenance_margin=0.3)  # fmt: skip
    assert AccountModel.for_account("margin", levered) == AccountModel("margin", 0.4, 0.3)
    with pytest.raises(ConfigError, match="account_type must be one of margin, cash"):
        AccountModel.for_account("portfolio")
    with pytest.raises(ConfigError, match="account_type"):
        SimulatedIBGateway(make_bars(2), account_type="reg-t")


def test_working_orders_that_reduce_are_not_credited_and_reversals_count():
    working = [Intent("A", -100), Intent("A", 50), Intent("B", -30)]
    assert worst_case({"A": 100.0}, working) == {"A": 150.0, "B": 30.0}
    model, prices = AccountModel(), {"A": 10.0, "B": 20.0}
    # long 100 reversed to short 200 by a sell of 300: margin on the 200 short
    assert model.requirement_after({"A": 100.0}, [], Intent("A", -300), prices) == pytest.approx(1000.0)
    assert model.requirement_after({"A": 100.0}, [], Intent("A", -150), prices) is None  # |-50| < 100
    assert model.requirement_after({}, [], Intent("C", 10), prices) is None  # no price at all
    assert model.requirement_after({}, [], Intent("C", 10, "LMT", 5.0), prices) == pytest.approx(25.0)
    cash = AccountModel.for_account("cash")
    assert cash.requirement_after({}, [], Intent("A", 10, "MKT"), prices) == pytest.approx(105.0)
    assert cash.requirement_after({}, [], Intent("A", 10, "LMT", 10.0), prices) == pytest.approx(100.0)


def test_an_order_on_the_other_side_of_a_working_order_is_charged_its_own_worst_case():
    # review: a working buy used to make a larger sell look "reducing", and so unchecked
    model, prices = AccountModel(), {"A": 100.0}
    assert model.requirement_after({}, [Intent("A", 1900, "LMT", 50.0)], Intent("A", -3800, "LMT", 150.0),
                                   prices) == pytest.approx(190_000.0)  # fmt: skip
    assert model.requirement_after({}, [Intent("A", -1500, "LMT", 200.0)], Intent("A", 3000, "LMT", 101.0),
                                   prices) == pytest.approx(150_000.0)  # fmt: skip
    # covered by the other side: the worst case does not grow, never refused
    assert model.requirement_after({}, [Intent("A", 2000)], Intent("A", -10), prices) is None
    # working orders on an asset without a price count at their own limit
    assert model.requirement_after({}, [Intent("M", 1500, "LMT", 100.0)], Intent("A", 1500, "LMT", 100.0),
                                   {}) == pytest.approx(150_000.0)  # fmt: skip
    assert margin_problem(model, Intent("A", 2000), {}, [], prices, 100_000.0) is not None  # equal: refused
    assert margin_problem(model, Intent("A", 1999), {}, [], prices, 100_000.0) is None


def test_account_values_carry_the_models_margin_numbers():
    rows = {k: v for k, v, _ in account_values(50_000.0, 150_000.0, {"A": (1000.0, 90.0)},
                                               {"A": 100.0}, AccountModel())}  # fmt: skip
    assert rows["GrossPositionValue"] == "100000.00"
    assert (rows["FullInitMarginReq"], rows["FullMaintMarginReq"]) == ("50000.00", "25000.00")
    assert (rows["AvailableFunds"], rows["ExcessLiquidity"]) == ("100000.00", "125000.00")
    assert rows["BuyingPower"] == "200000.00"  # Reg T: available funds / 50%
    cash = {k: v for k, v, _ in account_values(50_000.0, 150_000.0, {"A": (1000.0, 90.0)},
                                               {"A": 100.0}, AccountModel.for_account("cash"))}  # fmt: skip
    assert cash["AvailableFunds"] == cash["BuyingPower"] == "50000.00"  # the cash


def test_a_modify_that_grows_an_order_beyond_the_limit_is_refused_and_the_order_kept(client, ib_errors):
    ib_errors.expect(REJECTED)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        seen = _errors(ib)
        order = LimitOrder("BUY", 1000, 100.0, orderRef="grow")
        trade = ib.placeOrder(aapl, order)
        await until(lambda: trade.orderStatus.status == "Submitted", what="accepted")
        order.totalQuantity = 2500  # 50% of 250,000 > 100,000
        ib.placeOrder(aapl, order)
        await until(lambda: any(code == 201 for _, code, _ in seen), what="the modify's 201")
        working = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 5)
        return seen, [(t.order.orderRef, t.order.totalQuantity) for t in working]

    seen, working = client.run(scenario)
    [(_, _, text)] = seen
    assert "MUST EXCEED THE INITIAL MARGIN [125000.00 USD]" in text
    assert working == [("grow", 1000.0)]  # the order works on as it was
