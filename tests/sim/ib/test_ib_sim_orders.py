"""Orders through real ib_async against the simulated gateway: every order type fills where
ml4t.backtest fills it on the same bars; modify, cancel, brackets, partial fills, rejections,
IB's error codes, executions with filters, completed orders, orderRef echoed everywhere."""

from __future__ import annotations

import asyncio

import pytest

from ib_async import ExecutionFilter, LimitOrder, MarketOrder, Order, StopLimitOrder, StopOrder
from ibsim_support import Planned, advance, backtest_commission, backtest_fills, stock, until
from ml4t.backtest import BacktestConfig, CommissionType, OrderSide, OrderType

BUY, SELL = OrderSide.BUY, OrderSide.SELL
N_BARS = 10

PLAN = [
    Planned(0, "AAPL", BUY, 10),
    Planned(0, "AAPL", BUY, 10, OrderType.LIMIT, limit_price=98.5),
    Planned(0, "AAPL", BUY, 5, OrderType.STOP, stop_price=102.8),
    Planned(1, "AAPL", SELL, 5, OrderType.STOP_LIMIT, limit_price=99.0, stop_price=99.5),
    Planned(1, "AAPL", SELL, 5, OrderType.TRAILING_STOP, trail_amount=2.0),
    Planned(2, "AAPL", BUY, 3, OrderType.MOC),
    Planned(4, "MSFT", BUY, 2),
]


def _ib_order(p: Planned, ref: str) -> Order:
    action = "BUY" if p.side is BUY else "SELL"
    match p.order_type:
        case OrderType.MARKET:
            return MarketOrder(action, p.quantity, orderRef=ref)
        case OrderType.LIMIT:
            return LimitOrder(action, p.quantity, p.limit_price, orderRef=ref)
        case OrderType.STOP:
            return StopOrder(action, p.quantity, p.stop_price, orderRef=ref)
        case OrderType.STOP_LIMIT:
            return StopLimitOrder(action, p.quantity, p.limit_price, p.stop_price, orderRef=ref)
        case OrderType.TRAILING_STOP:
            return Order(action=action, totalQuantity=p.quantity, orderType="TRAIL",
                         auxPrice=p.trail_amount, orderRef=ref)  # fmt: skip
        case OrderType.MOC:
            return Order(action=action, totalQuantity=p.quantity, orderType="MOC", orderRef=ref)
    raise AssertionError(p)


async def _replay(ib, plan: list[Planned], n_bars: int = N_BARS):
    """Place each planned order while its bar is current; step through every bar."""
    contracts = {s: await stock(ib, s) for s in ("AAPL", "MSFT")}
    rt = ib.reqRealTimeBars(contracts["AAPL"], 5, "TRADES", False)
    trades = []
    for bar in range(n_bars):
        await advance(ib, rt)  # bar `bar` is now fully received
        for i, p in enumerate(plan):
            if p.bar == bar:
                trades.append(ib.placeOrder(contracts[p.asset], _ib_order(p, f"ref-{i}")))
    await ib.reqCurrentTimeAsync()  # release the last bar (its MOC / close)
    await until(lambda: all(t.isDone() or t.orderStatus.status in ("Submitted", "PreSubmitted")
                            for t in trades))  # fmt: skip
    return trades


def _commission_config() -> BacktestConfig:
    return BacktestConfig(calendar=None, commission_type=CommissionType.PERCENTAGE, commission_rate=0.001)


def _same_bar_config() -> BacktestConfig:
    from ml4t.backtest.config import ExecutionPrice
    from ml4t.backtest.types import ExecutionMode

    return BacktestConfig(calendar=None, execution_mode=ExecutionMode.SAME_BAR,
                          execution_price=ExecutionPrice.CLOSE)  # fmt: skip


@pytest.mark.parametrize(
    "config", [None, _commission_config, _same_bar_config], ids=["default", "commission", "same_bar"]
)
def test_each_order_type_fills_where_the_backtest_fills_it(config, gateway_factory, client_factory, bars):
    cfg = config() if config else None
    gateway = gateway_factory(config=cfg)
    client = client_factory(1, port=gateway.port)
    expected = backtest_fills(bars, PLAN, config() if config else None)

    async def scenario(ib):
        await _replay(ib, PLAN)
        await until(lambda: len(ib.fills()) >= len(expected) and all(
            f.commissionReport.execId for f in ib.fills()), what="all fills with commissions")  # fmt: skip
        fills = ib.fills()
        got = sorted(
            (f.execution.time, f.contract.symbol, f.execution.side, f.execution.shares,
             round(f.execution.price, 6))
            for f in fills
        )  # fmt: skip
        return got, {f.execution.orderRef for f in fills}, sum(f.commissionReport.commission for f in fills)

    got, refs, commission = client.run(scenario, timeout=30)
    assert len(expected) >= 6  # the plan really exercises the order types
    assert got == expected
    assert refs <= {f"ref-{i}" for i in range(len(PLAN))} and len(refs) == len(expected)
    assert gateway.wait_finished(5)
    venue_side = sorted((f.time, f.info.symbol, f.side, f.shares, round(f.price, 6)) for f in gateway.fills)
    assert venue_side == expected
    expected_commission = backtest_commission(bars, PLAN, config() if config else None)
    assert commission == pytest.approx(expected_commission, abs=1e-9)
    assert (commission > 0) == (config is _commission_config)


def test_modify_moves_a_resting_limit(client, gateway):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        order = LimitOrder("BUY", 10, 95.0, orderRef="mod-1")
        trade = ib.placeOrder(aapl, order)
        await advance(ib, rt)
        order.lmtPrice = 98.5
        ib.placeOrder(aapl, order)
        await until(lambda: any(e.message == "Modified" for e in trade.log), what="Modified ack")
        for _ in range(3):
            await advance(ib, rt)
        await until(trade.isDone, what="fill")
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.avgFillPrice == 98.5
    assert trade.fills[0].execution.time.minute == 33  # bar 3 is the first with low <= 98.5
    received = gateway.orders_received
    assert [r.modify for r in received] == [False, True] and received[1].lmt_price == 98.5


def test_cancel_sends_cancelled_then_202(client, ib_errors):
    ib_errors.expect(r"Error 202, reqId \d+: Order Canceled")
    codes: list[int] = []

    async def scenario(ib):
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 90.0, orderRef="cxl"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        ib.cancelOrder(trade.order)
        await until(trade.isDone, what="cancel")
        await until(lambda: 202 in codes, what="202")
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "Cancelled"


def test_bracket_child_fill_cancels_the_sibling(client, bars, ib_errors):
    ib_errors.expect(r"Error 202, reqId \d+: Order Canceled - reason:")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        bracket = ib.bracketOrder("BUY", 10, 101.2, takeProfitPrice=103.5, stopLossPrice=97.5)
        trades = [ib.placeOrder(aapl, o) for o in bracket]
        await until(lambda: all(t.orderStatus.status != "PendingSubmit" for t in trades))
        held = trades[2].orderStatus.status
        for _ in range(5):
            await advance(ib, rt)
        await until(lambda: all(t.isDone() for t in trades), what="bracket done")
        return trades, held

    (parent, take_profit, stop_loss), held = client.run(scenario)
    [(_, _, _, _, entry)] = backtest_fills(bars, [Planned(0, "AAPL", BUY, 10, OrderType.LIMIT, 101.2)])
    assert held == "PreSubmitted"  # children wait for the parent
    assert parent.orderStatus.status == "Filled" and parent.orderStatus.avgFillPrice == entry
    assert stop_loss.orderStatus.status == "Filled" and stop_loss.orderStatus.avgFillPrice == 97.5
    assert take_profit.orderStatus.status == "Cancelled"


def test_partial_fill_then_complete(client, gateway):
    gateway.inject("partial_fill", parts=2)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="part"))
        await advance(ib, rt)
        mid = (trade.orderStatus.status, trade.orderStatus.filled, trade.orderStatus.remaining)
        await advance(ib, rt)
        await until(trade.isDone)
        return trade, mid

    trade, mid = client.run(scenario)
    assert mid == ("Submitted", 5.0, 5.0)
    assert [f.execution.shares for f in trade.fills] == [5.0, 5.0]
    assert [f.execution.cumQty for f in trade.fills] == [5.0, 10.0]
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 10.0
    assert all(f.commissionReport.execId for f in trade.fills)


def test_rejection_is_201_then_inactive(client, gateway, ib_errors):
    ib_errors.expect(r"Error 201, reqId \d+: Order rejected - reason:no shares to borrow")
    gateway.inject("reject_next", reason="no shares to borrow")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="rej"))
        await until(lambda: trade.orderStatus.status == "Inactive", what="Inactive")
        return trade

    trade = client.run(scenario)
    assert any(e.errorCode == 201 for e in trade.log)


def test_duplicate_order_id_is_103_and_unknown_cancel_is_10147(client, ib_errors):
    ib_errors.expect(r"Error 103, reqId \d+: Duplicate order id")
    ib_errors.expect(r"Error 10147, reqId 999: OrderId 999 that needs to be cancelled is not found")
    codes: list[tuple[int, int]] = []

    async def scenario(ib):
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append((req_id, code))
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0))
        await until(lambda: trade.orderStatus.status == "Submitted")
        ib.cancelOrder(trade.order)
        await until(trade.isDone)
        ib.client.placeOrder(trade.order.orderId, aapl, LimitOrder("BUY", 1, 91.0))
        ib.client.cancelOrder(999)
        await until(lambda: {c for _, c in codes} >= {103, 10147}, what="103 and 10147")

    ib_errors.expect(r"Error 202")
    client.run(scenario)
    assert (999, 10147) in codes


def test_executions_with_filters_and_completed_orders(client, client_factory, gateway, ib_errors):
    ib_errors.expect(r"Error 202")
    plan = [Planned(0, "AAPL", BUY, 10), Planned(0, "MSFT", BUY, 4), Planned(1, "AAPL", SELL, 3)]

    async def scenario(ib):
        trades = await _replay(ib, plan, n_bars=3)
        resting = ib.placeOrder(await stock(ib, "AAPL"), LimitOrder("BUY", 1, 50.0, orderRef="rest"))
        await until(lambda: resting.orderStatus.status == "Submitted")
        ib.cancelOrder(resting.order)
        await until(resting.isDone)
        out = {}
        for name, flt in {
            "all": ExecutionFilter(),
            "msft": ExecutionFilter(symbol="MSFT"),
            "sells": ExecutionFilter(side="SELL"),
            "other_client": ExecutionFilter(clientId=42),
            "since_bar2": ExecutionFilter(time="20240103 14:32:00"),
        }.items():
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(flt), 5)
            out[name] = sorted((f.contract.symbol, f.execution.side, f.execution.shares) for f in fills)
        completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 5)
        out["completed"] = sorted((t.order.orderRef, t.orderStatus.status, t.order.filledQuantity)
                                  for t in completed)  # fmt: skip
        out["refs"] = sorted(t.order.orderRef for t in trades)
        return out

    out = client.run(scenario, timeout=30)
    assert out["all"] == [("AAPL", "BOT", 10.0), ("AAPL", "SLD", 3.0), ("MSFT", "BOT", 4.0)]
    assert out["msft"] == [("MSFT", "BOT", 4.0)]
    assert out["sells"] == [("AAPL", "SLD", 3.0)]
    assert out["other_client"] == []
    assert out["since_bar2"] == [("AAPL", "SLD", 3.0)]
    assert out["completed"] == [
        ("ref-0", "Filled", 10.0), ("ref-1", "Filled", 4.0), ("ref-2", "Filled", 3.0),
        ("rest", "Cancelled", 0.0),
    ]  # fmt: skip
    # a second client sees the same executions (ExecutionFilter clientId 0 = all clients)
    other = client_factory(5)
    fills = other.run(lambda ib: asyncio.wait_for(ib.reqExecutionsAsync(), 5))
    assert sorted(f.execution.orderRef for f in fills) == ["ref-0", "ref-1", "ref-2"]


def test_fields_of_real_ib_async_orders_are_decoded(client, gateway):
    from ib_async import PriceCondition, TagValue

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        plain = LimitOrder("SELL", 7, 120.0, tif="GTC", outsideRth=True, orderRef="f-1",
                           ocaGroup="grp", ocaType=2)  # fmt: skip
        algo = LimitOrder("BUY", 3, 90.0, orderRef="f-2", algoStrategy="Adaptive",
                          algoParams=[TagValue("adaptivePriority", "Normal")])  # fmt: skip
        cond = LimitOrder("BUY", 2, 91.0, orderRef="f-3")
        cond.conditions = [PriceCondition(price=95.0, conId=aapl.conId, exch="SMART", isMore=False)]
        trades = [ib.placeOrder(aapl, o) for o in (plain, algo, cond)]
        await until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
        return [t.order.orderId for t in trades]

    ids = client.run(scenario)
    got = {r.order_id: r.request for r in gateway.orders_received}
    plain, algo, cond = (got[i] for i in ids)
    assert (plain.action, plain.quantity, plain.lmt_price, plain.tif, plain.outside_rth) == (
        "SELL", 7.0, 120.0, "GTC", True)  # fmt: skip
    assert (plain.oca_group, plain.oca_type, plain.order_ref, plain.what_if) == ("grp", 2, "f-1", False)
    assert (algo.order_ref, algo.what_if, cond.order_ref, cond.what_if) == ("f-2", False, "f-3", False)
    assert plain.contract.con_id == 265598 and plain.contract.exchange == "SMART"


def test_what_if_returns_margin_numbers(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        return await asyncio.wait_for(ib.whatIfOrderAsync(aapl, MarketOrder("BUY", 10)), 5)

    state = client.run(scenario)
    assert float(state.initMarginChange) == 502.5  # Reg T margin account: 50% of 10 x last price 100.5
    assert float(state.equityWithLoanAfter) > 0


def test_second_client_sees_all_open_orders_and_account_follows_fills(client, client_factory):
    async def first(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 1, 80.0, orderRef="resting"))
        market = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="mkt"))
        await advance(ib, rt)
        await until(market.isDone)
        await until(lambda: bool(ib.portfolio()) and ib.positions()[0].position == 10)
        wanted = {"TotalCashValue", "NetLiquidation"}
        values = {v.tag: float(v.value) for v in ib.accountValues() if v.tag in wanted}
        return resting.order.orderId, ib.portfolio()[0], values

    resting_id, item, values = client.run(first)
    assert (item.contract.symbol, item.position, item.averageCost, item.marketPrice) == ("AAPL", 10.0, 100.5, 101.0)
    assert values["TotalCashValue"] == pytest.approx(100_000.0 - 1005.0)
    assert values["NetLiquidation"] == pytest.approx(100_000.0 - 1005.0 + 1010.0)

    other = client_factory(6)
    trades = other.run(lambda ib: asyncio.wait_for(ib.reqAllOpenOrdersAsync(), 5))
    assert [(t.order.orderId, t.order.clientId, t.order.orderRef) for t in trades] == [(resting_id, 1, "resting")]
    own = other.run(lambda ib: asyncio.wait_for(ib.reqOpenOrdersAsync(), 5))
    assert own == []  # reqOpenOrders: only this client's orders


def test_oca_group_fill_cancels_the_other_member(client, ib_errors):
    ib_errors.expect(r"Error 202, reqId \d+: Order Canceled - reason:oca")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        dip = ib.placeOrder(aapl, LimitOrder("BUY", 10, 98.5, ocaGroup="entry", ocaType=1, orderRef="dip"))
        breakout = ib.placeOrder(aapl, StopOrder("BUY", 10, 103.5, ocaGroup="entry", ocaType=1,
                                                 orderRef="breakout"))  # fmt: skip
        for _ in range(3):
            await advance(ib, rt)
        await until(lambda: dip.isDone() and breakout.isDone())
        return dip, breakout

    dip, breakout = client.run(scenario)
    assert (dip.orderStatus.status, dip.orderStatus.avgFillPrice) == ("Filled", 98.5)
    assert breakout.orderStatus.status == "Cancelled" and not breakout.fills


def test_global_cancel_cancels_every_open_order(client, ib_errors):
    ib_errors.expect(r"Error 202, reqId \d+: Order Canceled")

    async def scenario(ib):
        aapl, msft = await stock(ib, "AAPL"), await stock(ib, "MSFT")
        trades = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0)), ib.placeOrder(msft, LimitOrder("BUY", 1, 250.0))]
        await until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
        ib.reqGlobalCancel()
        await until(lambda: all(t.isDone() for t in trades))
        return [t.orderStatus.status for t in trades]

    assert client.run(scenario) == ["Cancelled", "Cancelled"]


def test_a_new_trading_day_reports_only_its_own_executions_and_completed_orders(gateway_factory, client_factory):
    """TWS reports the current day's executions and completed orders only: after the replay
    crosses into a new New York date, the earlier day's are history (the gateway's views keep
    them), for a connected client's requests and for a new connection's start-up sync."""
    from datetime import timedelta

    import polars as pl
    from ibsim_support import make_bars

    day1 = make_bars(2)
    bars = pl.concat([day1, day1.with_columns(pl.col("timestamp") + timedelta(days=1))])
    gateway = gateway_factory(bars)
    client = client_factory(1, port=gateway.port)
    plan = [Planned(0, "AAPL", BUY, 10), Planned(2, "AAPL", SELL, 4)]

    async def scenario(ib):
        await _replay(ib, plan, n_bars=4)
        fills = await asyncio.wait_for(ib.reqExecutionsAsync(), 5)
        completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 5)
        return ([f.execution.orderRef for f in fills],
                [(t.order.orderRef, t.orderStatus.status) for t in completed])  # fmt: skip

    fills, completed = client.run(scenario, timeout=30)
    assert fills == ["ref-1"]
    assert completed == [("ref-1", "Filled")]
    assert sorted(f.order_ref for f in gateway.fills) == ["ref-0", "ref-1"]
    assert sorted(v.order_ref for v in gateway.completed_orders) == ["ref-0", "ref-1"]
    late = client_factory(7, port=gateway.port)  # ib_async's start-up sync on a new connection
    assert late.run(lambda ib: _refs(ib)) == (["ref-1"], ["ref-1"])


async def _refs(ib):
    return sorted(f.execution.orderRef for f in ib.fills()), sorted(t.order.orderRef for t in ib.trades())
