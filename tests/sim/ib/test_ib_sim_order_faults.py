"""Order-side fault knobs of the simulated IB Gateway, seen through the real ib_async client:
black-holed orders, a rolled-back nextValidId, repeated status frames, late / missing / sentinel
commission reports, 201 after Inactive, scripted cancel answers, 103 and 100 refusals."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder
from ibsim_support import advance, stock, until

from ml4t_live.errors import ConfigError


async def _started(ib: IB):
    """AAPL qualified and real-time bars subscribed (step mode: the first bar is released)."""
    aapl = await stock(ib, "AAPL")
    rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    await advance(ib, rt)
    return aapl, rt


async def _disconnect(ib: IB) -> None:
    ib.disconnect()


def test_black_holed_order_gets_no_answer_and_is_absent_from_every_query(client, gateway):
    gateway.inject("black_hole_next", count=1)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        lost = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0, orderRef="bh-1"))
        later = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0, orderRef="bh-2"))
        await until(lambda: later.orderStatus.status == "Submitted")  # answers are in order
        opened = await asyncio.wait_for(ib.reqOpenOrdersAsync(), 5)
        completed = await asyncio.wait_for(ib.reqCompletedOrdersAsync(False), 5)
        executions = await asyncio.wait_for(ib.reqExecutionsAsync(), 5)
        refs = {t.order.orderRef for t in opened + completed} | {f.execution.orderRef for f in executions}
        return lost.orderStatus.status, lost.order.orderId, refs, lost.log

    status, order_id, refs, log = client.run(scenario)
    assert status == "PendingSubmit" and len(log) == 1  # nothing ever came back
    assert "bh-1" not in refs and "bh-2" in refs
    assert gateway.black_holed == [(1, order_id, "bh-1")]
    assert [r.order_ref for r in gateway.orders_received] == ["bh-1", "bh-2"]


def test_rolled_back_next_valid_id_makes_a_naive_client_reuse_an_id_and_get_103(
    client_factory, gateway, ib_errors
):
    ib_errors.expect(r"Error 103, reqId \d+: Duplicate order id")
    first = client_factory(1)

    async def fill_one(ib):
        aapl, rt = await _started(ib)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 2, orderRef="before-restart"))
        await advance(ib, rt)
        await until(trade.isDone, what="fill")
        return trade.order.orderId

    used = first.run(fill_one)
    first.run(_disconnect)
    gateway.inject("rollback_next_valid_id", to=1)
    second = client_factory(1)

    async def reuse(ib):
        msft = await stock(ib, "MSFT")  # another contract: a reused id is 103 (same one: 104)
        trades = []
        while not trades or trades[-1].order.orderId < used:
            trades.append(ib.placeOrder(msft, LimitOrder("BUY", 1, 50.0, orderRef=f"after-{len(trades)}")))
        await until(lambda: trades[-1].isDone(), what="103")
        return trades[-1]

    trade = second.run(reuse)
    assert trade.order.orderId == used
    assert [e.errorCode for e in trade.log if e.errorCode] == [103]
    assert trade.orderStatus.status == "Cancelled"


def test_next_valid_id_without_a_rollback_is_above_every_id_used(client_factory, gateway):
    first = client_factory(1)

    async def one(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="kept"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        return trade.order.orderId

    used = first.run(one)
    first.run(_disconnect)
    second = client_factory(1)

    async def next_id(ib):
        aapl = await stock(ib, "AAPL")
        return ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="next")).order.orderId

    assert second.run(next_id) > used


def test_duplicate_status_frames_and_a_filled_echo_with_zero_average_price(client, gateway):
    gateway.inject("duplicate_order_status", count=1, times=3)

    async def scenario(ib):
        aapl, rt = await _started(ib)
        opens: list[str] = []
        ib.openOrderEvent += lambda t: opens.append(t.orderStatus.status)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 5, orderRef="dup-status"))
        await until(lambda: len(opens) >= 3, what="3 openOrder echoes")
        await advance(ib, rt)
        await until(trade.isDone, what="fill")
        await until(lambda: trade.orderStatus.avgFillPrice == 0.0, what="the zero echo")
        return opens, trade

    opens, trade = client.run(scenario)
    assert len(opens) >= 3
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.avgFillPrice == 0.0
    assert [f.execution.price for f in trade.fills] == [gateway.fills[0].price]  # not 0


def test_late_commission_comes_after_other_frames(client, gateway):
    gateway.inject("late_commission", count=1, seconds=0.2)

    async def scenario(ib):
        aapl, rt = await _started(ib)
        seen: list[str] = []
        ib.execDetailsEvent += lambda t, f: seen.append("exec")
        ib.positionEvent += lambda p: seen.append("position")
        ib.commissionReportEvent += lambda t, f, r: seen.append("commission")
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 5, orderRef="late-comm"))
        await advance(ib, rt)
        await until(lambda: "commission" in seen, what="the late commission")
        return seen, trade.fills[0].commissionReport.commission

    seen, commission = client.run(scenario)
    assert seen.index("exec") < seen.index("position") < seen.index("commission")
    assert commission == pytest.approx(gateway.fills[0].commission)


@pytest.mark.parametrize(
    ("value", "parsed"), [("-1", -1.0), ("", 0.0), ("1.7976931348623157E308", 1.7976931348623157e308)]
)
def test_commission_sentinel_then_the_real_report(gateway_factory, client_factory, value, parsed):
    from ml4t.backtest import BacktestConfig
    from ml4t.backtest.config import CommissionType

    sim = gateway_factory(
        config=BacktestConfig(commission_type=CommissionType.PER_SHARE, commission_per_share=0.1)
    )
    sim.inject("commission_sentinel", count=1, value=value, correct_after=0.1)

    async def scenario(ib):
        aapl, rt = await _started(ib)
        reports: list[float] = []
        ib.commissionReportEvent += lambda t, f, r: reports.append(r.commission)
        ib.placeOrder(aapl, MarketOrder("BUY", 5, orderRef="sentinel"))
        await advance(ib, rt)
        await until(lambda: len(reports) >= 2, what="sentinel then real")
        return reports

    reports = client_factory(1, port=sim.port).run(scenario)
    assert reports[0] == parsed and reports[1] == pytest.approx(0.5)


def test_missing_commission_report(client, gateway):
    gateway.inject("missing_commission", count=1)

    async def scenario(ib):
        aapl, rt = await _started(ib)
        first = ib.placeOrder(aapl, MarketOrder("BUY", 5, orderRef="no-comm"))
        await advance(ib, rt)
        await until(first.isDone, what="first fill")
        second = ib.placeOrder(aapl, MarketOrder("SELL", 5, orderRef="with-comm"))
        await advance(ib, rt)
        await until(lambda: bool(second.fills) and bool(second.fills[0].commissionReport.execId))
        return first.fills[0].commissionReport.execId

    assert client.run(scenario) == ""


@pytest.mark.parametrize("status_first", [False, True])
def test_rejection_201_and_inactive_in_either_order(client, gateway, ib_errors, status_first):
    ib_errors.expect(r"Error 201, reqId \d+: Order rejected - reason:margin")
    gateway.inject("reject_next", reason="margin", status_first=status_first)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        seen: list[object] = []
        ib.orderStatusEvent += lambda t: seen.append(t.orderStatus.status)
        ib.errorEvent += lambda req_id, code, msg, c: seen.append(code)
        ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="rej"))
        await until(lambda: 201 in seen and "Inactive" in seen, what="201 and Inactive")
        return seen

    seen = client.run(scenario)
    assert (seen.index("Inactive") < seen.index(201)) is status_first


@pytest.mark.parametrize("reply", ["10147", "10148"])
def test_scripted_cancel_refusal_leaves_the_order_working(client, gateway, ib_errors, reply):
    ib_errors.expect(rf"Error {reply}, reqId \d+: OrderId \d+ that needs to be cancelled")
    gateway.inject("cancel_reply", reply=reply)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="keep"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, c: codes.append(code)
        ib.cancelOrder(trade.order)
        await until(lambda: int(reply) in codes, what=reply)
        opened = await asyncio.wait_for(ib.reqOpenOrdersAsync(), 5)
        return [t.order.orderRef for t in opened]

    assert client.run(scenario) == ["keep"]


def test_cancel_of_a_filled_order_is_10148_with_its_state(client, gateway, ib_errors):
    ib_errors.expect(r"Error 10148, reqId \d+: .*cannot be cancelled, state: Filled")

    async def scenario(ib):
        aapl, rt = await _started(ib)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef="done"))
        await advance(ib, rt)
        await until(trade.isDone)
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, c: codes.append(code)
        ib.client.cancelOrder(trade.order.orderId, "")
        await until(lambda: 10148 in codes, what="10148")
        return trade.orderStatus.status

    assert client.run(scenario) == "Filled"


def test_late_cancel_confirmation(client, gateway, ib_errors):
    ib_errors.expect(r"Error 202")
    gateway.inject("cancel_reply", reply="late", seconds=0.3)

    async def scenario(ib):
        loop = asyncio.get_running_loop()
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="slow-cancel"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        t0 = loop.time()
        ib.cancelOrder(trade.order)
        await until(lambda: trade.orderStatus.status == "Cancelled", what="late cancel")
        return loop.time() - t0

    assert client.run(scenario) >= 0.29


def test_a_second_cancel_while_the_first_is_unconfirmed_gets_10148_pending_cancel(client, gateway, ib_errors):
    """As IB answers it: "cannot be cancelled, state: PendingCancel."; the first cancel's
    confirmation still comes."""
    ib_errors.expect(r"Error 202")
    ib_errors.expect(r"Error 10148")
    gateway.inject("cancel_reply", reply="late", seconds=0.5)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="twice"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        heard: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, code, msg, c: heard.append((code, msg))
        ib.client.cancelOrder(trade.order.orderId, "")
        ib.client.cancelOrder(trade.order.orderId, "")
        await until(lambda: any(code == 202 for code, _ in heard), what="the late confirmation")
        return heard

    heard = client.run(scenario)
    assert [code for code, _ in heard] == [10148, 202]
    assert heard[0][1].endswith("cannot be cancelled, state: PendingCancel.")


@pytest.mark.parametrize(("kind", "code"), [("duplicate_order_id", 103), ("rate_exceeded", 100)])
def test_refused_placements_are_not_placed(client, gateway, ib_errors, kind, code):
    ib_errors.expect(rf"Error {code}, reqId \d+")
    gateway.inject(kind, count=1)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="refused"))
        await until(trade.isDone, what=str(code))
        opened = await asyncio.wait_for(ib.reqOpenOrdersAsync(), 5)
        return [e.errorCode for e in trade.log if e.errorCode], opened

    codes, opened = client.run(scenario)
    assert codes == [code] and opened == []


def test_a_lost_cancel_is_never_answered_and_the_order_works_on(client, gateway, ib_errors):
    ib_errors.expect(r"Error 202")  # the second cancel's confirmation
    gateway.inject("cancel_reply", reply="lost")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="lost-cancel"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, c: codes.append(code)
        ib.client.cancelOrder(trade.order.orderId, "")
        # answered after the cancel was handled (one socket, requests in order)
        opened = await asyncio.wait_for(ib.reqOpenOrdersAsync(), 5)
        heard = list(codes)
        ib.cancelOrder(trade.order)  # a second cancel is acted on
        await until(lambda: trade.orderStatus.status == "Cancelled", what="second cancel")
        return [t.order.orderRef for t in opened], heard

    assert client.run(scenario) == (["lost-cancel"], [])
    assert gateway.request_count("CancelOrder") == 2


def test_cancel_reply_rejects_an_unknown_reply(gateway):
    with pytest.raises(ConfigError, match="10147, 10148, late or lost"):
        gateway.inject("cancel_reply", reply="999")


def test_new_kinds_load_from_a_scenario_list():
    from ml4t_live.sim.ib.faults import load_faults

    faults = load_faults([{"kind": "black_hole_next", "count": 2, "at_bar": 3},
                          {"kind": "commission_sentinel", "value": ""}])  # fmt: skip
    assert [(f.kind, f.at_bar) for f in faults] == [("black_hole_next", 3), ("commission_sentinel", None)]
    assert faults[0].params["count"] == 2 and faults[1].params["correct_after"] == 0.2


def test_gateway_restart_drops_refuses_then_rolls_next_valid_id_back(client_factory, gateway, ib_errors):
    ib_errors.expect(r"Peer closed connection|API connection failed|Make sure API port|Error 202|Error 103")
    first = client_factory(1)

    async def place_and_cancel(ib):
        aapl = await stock(ib, "AAPL")
        trades = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef=f"pre-{i}")) for i in range(5)]
        await until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
        for t in trades:
            ib.cancelOrder(t.order)
        await until(lambda: all(t.isDone() for t in trades), what="cancelled")
        return max(t.order.orderId for t in trades)

    used = first.run(place_and_cancel)
    gateway.inject("gateway_restart", seconds=0.3, rollback_to=1)
    first.run(lambda ib: until(lambda: not ib.isConnected(), what="dropped"))
    assert gateway.listening is False  # refused while it restarts
    assert gateway.wait_listening(5)
    second = client_factory(1)

    async def next_id(ib):
        aapl = await stock(ib, "AAPL")
        return ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0, orderRef="post")).order.orderId

    assert second.run(next_id) <= used  # rolled back: a naive client reuses an id (then 103)


def test_modify_of_a_filled_order_is_104(client, gateway, ib_errors):
    ib_errors.expect(r"Error 104, reqId \d+: Can't modify a filled order")

    async def scenario(ib):
        aapl, rt = await _started(ib)
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 200.0, orderRef="mod-filled"))
        await advance(ib, rt)
        await until(trade.isDone, what="fill")
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, c: codes.append(code)
        ib.client.placeOrder(trade.order.orderId, aapl, LimitOrder("BUY", 2, 200.0, orderRef="mod-filled"))
        await until(lambda: 104 in codes, what="104")
        return trade.orderStatus.status

    assert client.run(scenario) == "Filled"

