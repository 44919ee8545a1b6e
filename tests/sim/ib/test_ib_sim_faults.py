"""Scripted faults through real ib_async: dropped sockets, refused reconnects, nightly-reset
outages, delayed acks and fills, duplicate / early execDetails, missing orderStatus, and fault
scenarios loaded from TOML."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from ib_async import IB, LimitOrder, MarketOrder
from ibsim_support import START, advance, stock, until, watched

from ml4t_live.errors import ConfigError
from ml4t_live.sim.ib import SimulatedIBGateway


def test_dropped_connection_with_order_in_flight_fills_exactly_once(client, gateway, ib_errors):
    ib_errors.expect(r"Peer closed connection")

    async def before_drop(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="inflight-1"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        return trade.order.orderId

    order_id = client.run(before_drop)
    gateway.inject("drop_connection")

    async def after_drop(ib):
        await until(lambda: not ib.isConnected(), what="disconnect seen")
        fresh = watched(IB())
        await fresh.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=5)
        client.ib = fresh
        [trade] = fresh.openTrades()
        aapl = await stock(fresh, "AAPL")
        rt = fresh.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(fresh, rt)  # releases bar 0; bar 1 opens and fills the order
        await until(trade.isDone, what="fill after reconnect")
        return trade, list(fresh.fills())

    trade, fills = client.run(after_drop)
    assert (trade.order.orderId, trade.order.orderRef) == (order_id, "inflight-1")
    assert trade.orderStatus.status == "Filled"
    assert len(fills) == 1 and len(gateway.fills) == 1


def test_refused_reconnects_for_a_while(client_factory, gateway, ib_errors):
    ib_errors.expect(r"API connection failed: ConnectionRefusedError|Make sure API port")
    gateway.inject("refuse_connections", seconds=0.4)
    refused = client_factory(8, connect=False)
    with pytest.raises(ConnectionRefusedError):
        refused.connect(timeout=2)
    assert gateway.listening is False

    assert gateway.wait_listening(5)  # the refusal ends by itself
    assert gateway.listening is True
    later = client_factory(9)
    assert later.run(lambda ib: _value(ib.isConnected()))


def test_wait_listening_gives_up_while_connections_are_still_refused(gateway):
    gateway.inject("refuse_connections", seconds=60)
    assert gateway.wait_listening(0.05) is False
    assert gateway.listening is False


async def _value(x):
    return x


@pytest.mark.parametrize(("data_lost", "restored"), [(False, 1102), (True, 1101)])
def test_nightly_reset_1100_then_restored_and_lost_bars(data_lost, restored, client, gateway, ib_errors):
    ib_errors.expect(r"Error 110[012], reqId -1: Connectivity between IB and Trader Workstation")
    codes: list[int] = []

    async def scenario(ib):
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        return rt

    client.run(scenario)
    gateway.inject("nightly_reset", bars=2, data_lost=data_lost)

    async def after(ib):
        [rt] = [b for b in ib.realtimeBars()]
        await advance(ib, rt)
        await until(lambda: restored in codes)
        return [b.time for b in rt]

    times = client.run(after)
    assert codes.index(1100) < codes.index(restored)
    assert {2103, 2105} <= set(codes)  # farms reported broken, then OK again
    assert times[12] == START + timedelta(minutes=3)  # bars 1 and 2 were lost


def test_delayed_acks(client, gateway):
    gateway.inject("delay_acks", seconds=0.3)

    async def scenario(ib):
        loop = asyncio.get_running_loop()
        aapl = await stock(ib, "AAPL")
        t0 = loop.time()
        slow = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0, orderRef="slow-ack"))
        normal = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0, orderRef="normal-ack"))
        await until(lambda: normal.orderStatus.status == "Submitted")
        normal_ack, slow_status = loop.time() - t0, slow.orderStatus.status
        await until(lambda: slow.orderStatus.status == "Submitted")
        return normal_ack, slow_status, loop.time() - t0

    normal_ack, slow_status_then, slow_ack = client.run(scenario)
    assert slow_status_then == "PendingSubmit"  # the later order was acked first
    assert slow_ack >= 0.29 and slow_ack > normal_ack


def test_delayed_fills(client, gateway):
    gateway.inject("delay_fills", seconds=0.3)

    async def scenario(ib):
        loop = asyncio.get_running_loop()
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef="slow-fill"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        await advance(ib, rt)  # bar 1's data is here; its opening fill is held back
        t1, filled_with_the_bar = loop.time(), trade.isDone()
        await until(trade.isDone)
        return filled_with_the_bar, loop.time() - t1

    filled_with_the_bar, wait = client.run(scenario)
    assert filled_with_the_bar is False and wait >= 0.2


class _InfoCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_duplicate_exec_details_are_deduplicated_by_exec_id(client, gateway):
    capture = _InfoCapture()
    wrapper_log = logging.getLogger("ib_async.wrapper")
    old_level = wrapper_log.level
    wrapper_log.setLevel(logging.INFO)
    wrapper_log.addHandler(capture)
    gateway.inject("duplicate_exec_details")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="dup"))
        await advance(ib, rt)
        await until(trade.isDone)
        return trade

    try:
        trade = client.run(scenario)
    finally:
        wrapper_log.removeHandler(capture)
        wrapper_log.setLevel(old_level)
    seen = [m for m in capture.messages if m.startswith("execDetails Execution(")]
    assert len(seen) == 2  # the venue sent it twice ...
    assert len(trade.fills) == 1  # ... and the client kept one fill


def test_exec_details_before_open_order(client, gateway):
    gateway.inject("exec_before_open_order")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="early"))
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # releases bar 0; no ack came
        await until(lambda: len(rt) >= 24)
        await until(trade.isDone)
        return trade

    trade = client.run(scenario)
    statuses = [(e.status, e.message) for e in trade.log]
    assert statuses[0] == ("PendingSubmit", "")
    assert statuses[1] == ("PendingSubmit", "Fill 10.0@100.5")  # the fill came before any ack
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].commissionReport.execId == trade.fills[0].execution.execId


def test_missing_order_status_fills_still_arrive(client, gateway):
    gateway.inject("missing_order_status")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="quiet"))
        await advance(ib, rt)
        await until(lambda: trade.fills and trade.fills[0].commissionReport.execId)
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "PendingSubmit"  # never told by orderStatus
    assert trade.fills[0].execution.shares == 10.0 and trade.order.permId > 0


def test_faults_from_a_toml_scenario(tmp_path, bars, ib_errors):
    ib_errors.expect(r"Error 201, reqId \d+: Order rejected - reason:from file")
    scenario_file = tmp_path / "faults.toml"
    scenario_file.write_text('[[fault]]\nkind = "reject_next"\nat_bar = 1\nparams = { reason = "from file" }\n')
    from ibsim_support import IBClient

    gw = SimulatedIBGateway(bars, faults=scenario_file)
    gw.start()
    client = IBClient(gw.port, 4)
    try:
        client.connect()

        async def scenario(ib):
            aapl = await stock(ib, "AAPL")
            rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
            await advance(ib, rt)
            first = ib.placeOrder(aapl, MarketOrder("BUY", 1))  # bar 0: not armed yet
            await until(lambda: first.orderStatus.status == "Submitted")
            await advance(ib, rt)
            second = ib.placeOrder(aapl, MarketOrder("BUY", 1))  # bar 1: rejected
            await until(second.isDone)
            return first.orderStatus.status, second.orderStatus.status

        assert client.run(scenario) == ("Filled", "Inactive")
    finally:
        client.close()
        gw.close()


def test_bad_fault_scenarios_fail_at_load(tmp_path, bars):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\nkind = "explode"\n')
    with pytest.raises(ConfigError, match="unknown kind 'explode'"):
        SimulatedIBGateway(bars, faults=bad)
    with pytest.raises(ConfigError, match="unknown parameter"):
        SimulatedIBGateway(bars, faults=[{"kind": "reject_next", "colour": "red"}])


def test_order_status_before_exec_details(client, gateway):
    gateway.inject("status_before_exec")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="status-first"))
        await advance(ib, rt)
        await until(lambda: trade.fills and trade.fills[0].commissionReport.execId)
        return trade

    trade = client.run(scenario)
    messages = [(e.status, e.message) for e in trade.log]
    assert messages.index(("Filled", "")) < messages.index(("Filled", "Fill 10.0@100.5"))


def test_a_frozen_gateway_keeps_the_socket_but_answers_nothing_until_it_thaws(
    client, client_factory, gateway, ib_errors
):
    ib_errors.expect(r"API connection failed: TimeoutError|Make sure API port")

    async def time_answered(ib):
        return await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)

    client.run(time_answered)
    gateway.inject("freeze_gateway", seconds=2.0)  # outlasts the two 0.2 s probes below on a loaded machine

    async def frozen(ib):
        try:
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.2)
        except TimeoutError:
            unanswered = True
        else:
            unanswered = False
        return unanswered, ib.isConnected()

    assert client.run(frozen) == (True, True)  # socket open, nothing answered
    newcomer = client_factory(7, connect=False)
    with pytest.raises(TimeoutError):  # accepted, but no handshake answer while frozen
        newcomer.connect(timeout=0.2)

    async def thawed(ib):  # the freeze ends by itself: the same socket answers again
        return await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)

    assert client.run(thawed) is not None
    assert gateway.connected_clients == [1]


def test_a_gateway_frozen_for_good_never_answers(client, gateway):
    gateway.inject("freeze_gateway")

    async def probe(ib):
        try:
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.3)
        except TimeoutError:
            return "unanswered"
        return "answered"

    assert client.run(probe) == "unanswered"
    assert client.run(probe) == "unanswered"


def test_silenced_realtime_bars_stop_without_a_word_and_a_new_subscription_is_served(
    client, gateway
):
    async def subscribe(ib):
        aapl = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await advance(ib, rt)  # bar 0 streams
        return len(rt)

    assert client.run(subscribe) > 0
    gateway.inject("silence_realtime_bars")

    async def after(ib):
        [old] = ib.realtimeBars()
        before = len(old)
        await ib.reqCurrentTimeAsync()  # releases bar 1: nothing reaches the old subscription
        await until(lambda: gateway_bars() >= 2, what="bar 1 replayed")
        silent = len(old) == before
        fresh = ib.reqRealTimeBars(await stock(ib, "AAPL"), 5, "TRADES", False)
        await ib.reqCurrentTimeAsync()  # bar 2 goes to the new subscription
        await until(lambda: len(fresh) > 0, what="bars on the new subscription")
        return silent, ib.isConnected()

    def gateway_bars():
        return len(gateway.bar_sent_ns)

    assert client.run(after) == (True, True)


@pytest.mark.parametrize("listing", ["completedOrders", "openOrders"])
def test_a_stale_order_list_is_read_at_the_request_and_sent_late(listing, client, gateway, ib_errors):
    """``stale_order_list``: the answer is the list as the request found it (the order working),
    sent 0.3 s later, after the order was cancelled."""
    ib_errors.expect(r"Error 202, reqId \d+")  # IB confirming the cancel
    gateway.inject("stale_order_list", list=listing, seconds=0.3)

    async def scenario(ib):
        loop = asyncio.get_running_loop()
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0, orderRef="stale"))
        await until(lambda: trade.orderStatus.status == "Submitted")
        t0 = loop.time()
        if listing == "openOrders":
            answer = ib.reqOpenOrdersAsync()
        else:
            answer = ib.reqCompletedOrdersAsync(apiOnly=True)
        await ib.reqCurrentTimeAsync()  # the gateway has read the list
        ib.cancelOrder(trade.order)
        await until(lambda: trade.orderStatus.status == "Cancelled")
        listed = await asyncio.wait_for(answer, 5)
        return loop.time() - t0, [t.order.orderRef for t in listed]

    elapsed, refs = client.run(scenario)
    assert refs == ([] if listing == "completedOrders" else ["stale"])
    assert elapsed >= 0.29
