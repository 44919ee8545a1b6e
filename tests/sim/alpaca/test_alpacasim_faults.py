"""Scripted faults, step / speed pacing and secret hygiene, through the real alpaca-py clients."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import msgpack
import pytest
import requests
import websockets
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpacasim_support import (
    TIMEOUT,
    StockDataStream,
    StockHistoricalDataClient,
    StreamHarness,
    TradingClient,
    TradingStream,
    make_bars,
    settle,
    step,
)
from loguru import logger
from ml4t.backtest import BacktestConfig

from ml4t_live.bridge import LoopThread
from ml4t_live.errors import ConfigError
from ml4t_live.sim.alpaca import SimulatedAlpaca

BUY, DAY = OrderSide.BUY, TimeInForce.DAY
QUIET = 0.3  # how long a test waits to show that something does NOT arrive


def _market(cid: str | None = None, qty: float = 1) -> MarketOrderRequest:
    return MarketOrderRequest(symbol="AAPL", qty=qty, side=BUY, time_in_force=DAY, client_order_id=cid)


def test_drop_trade_stream_reconnects_and_updates_continue(sim: SimulatedAlpaca, trading: TradingClient,
                                                          trade_stream: StreamHarness) -> None:
    sim.inject("drop_trade_stream")
    state = sim.wait_until(lambda s: s["trade_connections"] >= 2 and s["trade_listeners"] == 1, TIMEOUT)
    assert ("drop_trade_stream", {}) in state["faults_applied"]
    trading.submit_order(_market("after-drop"))
    assert trade_stream.get_event("new").order.client_order_id == "after-drop"


def test_drop_data_stream_reconnects_and_bars_continue(sim: SimulatedAlpaca, trading: TradingClient,
                                                      data_stream: StreamHarness) -> None:
    sim.inject("drop_data_stream")
    sim.wait_until(lambda s: s["data_connections"] >= 2 and s["bar_subscribers"] == 1, TIMEOUT)
    step(sim, trading)
    assert data_stream.get().symbol in ("AAPL", "MSFT")


def test_silent_data_socket_stays_open_but_mute(sim: SimulatedAlpaca, trading: TradingClient,
                                               data_stream: StreamHarness) -> None:
    sim.inject("silence_data_stream")
    state = step(sim, trading)
    assert state["bars_sent"] == 2 and state["data_clients"] == 1  # sent by the venue, still connected
    with pytest.raises(queue.Empty):
        data_stream.get(timeout=QUIET)


def test_silence_for_a_while_then_speak_again(sim: SimulatedAlpaca, trading: TradingClient,
                                             data_stream: StreamHarness) -> None:
    sim.inject("silence_data_stream", seconds=0.3)
    step(sim, trading)  # bar 0 goes to a mute socket: lost
    with pytest.raises(queue.Empty):
        data_stream.get(timeout=0.1)
    assert sim.wait_until(lambda s: s["muted_sockets"] == 0, TIMEOUT)["bar_index"] == 0  # the silence ended
    step(sim, trading)
    assert {data_stream.get().timestamp.minute for _ in range(2)} == {31}


def test_a_bar_lost_on_the_data_stream_stays_in_the_bars_rest(sim: SimulatedAlpaca, trading: TradingClient,
                                                              data_stream: StreamHarness,
                                                              history: StockHistoricalDataClient) -> None:
    sim.inject("lose_stream_bar")
    state = step(sim, trading)  # bar 0 is never sent; step mode moves on to bar 1 by itself
    assert state["bar_index"] == 1 and state["bars_sent"] == 2 and state["data_clients"] == 1
    assert ("lose_stream_bar", {}) in state["faults_applied"]
    assert {data_stream.get().timestamp.minute for _ in range(2)} == {31}
    with pytest.raises(queue.Empty):
        data_stream.get(timeout=QUIET)
    served = history.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute)).data
    assert [b.timestamp.minute for b in served["AAPL"]] == [30, 31]  # the venue still has bar 0
    step(sim, trading)  # one bar lost, not more: bar 2 goes out as usual
    assert {data_stream.get().timestamp.minute for _ in range(2)} == {32}


def test_silent_trade_socket_stays_open_but_mute(sim: SimulatedAlpaca, trading: TradingClient,
                                                trade_stream: StreamHarness) -> None:
    sim.inject("silence_trade_stream")
    trading.submit_order(_market())
    assert settle(sim)["trade_listeners"] == 1
    with pytest.raises(queue.Empty):
        trade_stream.get(timeout=QUIET)


def test_rate_limit_storm_then_recovery(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("rate_limit_storm", count=2)
    headers = {"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key}
    codes = [requests.get(f"{sim.base_url}/v2/account", headers=headers, timeout=5).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    sim.inject("rate_limit_storm", count=1)
    assert trading.get_account().status.value == "ACTIVE"  # alpaca-py retried once (after its fixed 3 s)


def test_submit_500_with_the_order_accepted_is_ambiguous(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("submit_error", status=500)
    with pytest.raises(APIError) as lost:
        trading.submit_order(_market("ambiguous-1"))
    assert lost.value.status_code == 500  # alpaca-py does not retry 500
    found = trading.get_order_by_client_id("ambiguous-1")  # ...but the venue took it
    assert found.status is OrderStatus.NEW
    assert [o.client_order_id for o in trading.get_orders(GetOrdersRequest(status="all"))] == ["ambiguous-1"]


def test_submit_504_is_retried_by_alpaca_py_and_hits_the_duplicate_rule(sim: SimulatedAlpaca,
                                                                        trading: TradingClient) -> None:
    sim.inject("submit_error", status=504)
    with pytest.raises(APIError) as retried:
        trading.submit_order(_market("ambiguous-2"))
    assert retried.value.status_code == 422 and retried.value.code == 40010001  # the retry was a duplicate
    assert len(sim.orders_received()) == 1


def _venue_coids(trading: TradingClient) -> list[str]:
    return [o.client_order_id for o in trading.get_orders(GetOrdersRequest(status="all"))]


@pytest.mark.parametrize(
    ("kind", "params", "raised", "created"),
    [
        ("truncated_body", {}, requests.exceptions.ChunkedEncodingError, True),
        ("truncated_body", {"accepted": False}, requests.exceptions.ChunkedEncodingError, False),
        ("non_json_body", {}, requests.exceptions.JSONDecodeError, True),
        ("non_json_body", {"status": 502, "accepted": False}, APIError, False),
        ("connection_reset", {}, requests.exceptions.ConnectionError, False),
        ("accept_then_drop", {}, requests.exceptions.ConnectionError, True),
        ("submit_error", {"status": 503, "accepted": False}, APIError, False),
    ],
    ids=["truncated", "truncated-not-created", "non-json", "html-502-not-created", "reset", "drop",
         "503-not-created"],
)
def test_garbled_or_missing_submit_answers(sim: SimulatedAlpaca, trading: TradingClient, kind: str,
                                           params: dict, raised: type, created: bool) -> None:
    sim.inject(kind, **params)
    with pytest.raises(raised):
        trading.submit_order(_market("garbled"))
    assert _venue_coids(trading) == (["garbled"] if created else [])  # the server keeps serving
    assert (kind, params) in sim.state()["faults_applied"]
    trading.submit_order(_market("after"))  # the fault is used up
    assert _venue_coids(trading)[0] == "after"


def test_connection_reset_is_a_tcp_reset(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("connection_reset")
    with pytest.raises(requests.exceptions.ConnectionError) as reset:
        trading.submit_order(_market("reset"))
    assert isinstance(reset.value.args[0].args[1], ConnectionResetError)


def test_accept_then_504_creates_the_order_and_alpaca_py_retries_into_the_duplicate_rule(
        sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("accept_then_504")
    with pytest.raises(APIError) as retried:
        trading.submit_order(_market("a504"))  # alpaca-py's own retry of a POST (APY #260)
    assert retried.value.status_code == 422
    assert _venue_coids(trading) == ["a504"] and len(sim.orders_received()) == 1


def test_accept_then_delay_holds_the_answer_past_a_client_timeout(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("accept_then_delay", seconds=1.0)
    headers = {"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key}
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
            "client_order_id": "slow"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{sim.base_url}/v2/orders", json=body, headers=headers, timeout=0.2)
    assert _venue_coids(trading) == ["slow"]  # taken before the answer was held


def test_submit_faults_queue_in_arming_order(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    sim.inject("connection_reset", count=2)
    sim.inject("accept_then_drop")
    for cid in ("q1", "q2", "q3"):
        with pytest.raises(requests.exceptions.ConnectionError):
            trading.submit_order(_market(cid))
    assert _venue_coids(trading) == ["q3"]


def test_lookup_error_answers_5xx_then_the_order(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    trading.submit_order(_market("looked"))
    sim.inject("lookup_error", count=2)
    statuses = []
    for _ in range(2):
        with pytest.raises(APIError) as failed:
            trading.get_order_by_client_id("looked")
        statuses.append(failed.value.status_code)
    assert statuses == [503, 503]
    assert trading.get_order_by_client_id("looked").client_order_id == "looked"
    with pytest.raises(ConfigError):
        SimulatedAlpaca(make_bars(), faults=[{"kind": "lookup_error", "params": {"status": 404}}])


def test_delayed_trade_updates_keep_their_order(sim: SimulatedAlpaca, trading: TradingClient,
                                                trade_stream: StreamHarness) -> None:
    sim.inject("delay_trade_updates", seconds=0.5, count=1)
    trading.submit_order(_market("late-1"))
    trading.submit_order(_market("late-2"))
    with pytest.raises(queue.Empty):
        trade_stream.get(timeout=0.2)
    assert [trade_stream.get().order.client_order_id for _ in range(2)] == ["late-1", "late-2"]


def test_duplicated_trade_updates(sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:
    sim.inject("duplicate_trade_updates", count=1)
    order = trading.submit_order(_market("twice"))
    first, second = trade_stream.get(), trade_stream.get()
    assert (first.event, first.order.id) == (second.event, second.order.id) and first.order.id == order.id


def test_fault_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "faults.toml"
    scenario.write_text(
        '[[fault]]\nkind = "reject_next"\nafter_orders = 1\nparams = { reason = "scripted" }\n\n'
        '[[fault]]\nkind = "rate_limit_storm"\nat_bar = 1\nparams = { count = 1 }\n'
    )
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None, faults=scenario)
    venue.start()
    try:
        trading = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        ok = trading.submit_order(_market("first"))
        refused = trading.submit_order(_market("second"))  # after one order: rejected
        assert trading.get_order_by_id(ok.id).status is OrderStatus.NEW
        assert trading.get_order_by_id(refused.id).status is OrderStatus.REJECTED
        venue.advance()
        venue.wait_until(lambda s: s["bar_index"] == 0, TIMEOUT)
        venue.advance()
        state = venue.wait_until(lambda s: s["bar_index"] == 1, TIMEOUT)
        assert [k for k, _ in state["faults_applied"]] == ["reject_next", "rate_limit_storm"]
    finally:
        venue.close()
    with pytest.raises(ConfigError):
        SimulatedAlpaca(make_bars(), faults=[{"kind": "no_such_fault"}])


def test_step_mode_waits_for_the_client(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    with pytest.raises(TimeoutError):
        sim.wait_until(lambda s: s["bar_index"] >= 0, QUIET)  # nobody caught up: no bar yet
    assert step(sim, trading)["bar_index"] == 0
    with pytest.raises(TimeoutError):
        sim.wait_until(lambda s: s["bar_index"] >= 1, QUIET)
    assert step(sim, trading)["bar_index"] == 1
    while not sim.state()["finished"]:
        step(sim, trading)
    assert sim.wait_finished(TIMEOUT) is True
    latency = sim.latency()
    assert len(latency) == 13 and all(row["bar_sent_ns"] > 0 for row in latency)


def test_speed_mode_replays_on_its_own() -> None:
    venue = SimulatedAlpaca(make_bars(3, 1), rate_limit_per_minute=None, speed=1200.0)  # 0.05 s per bar
    venue.start()
    try:
        assert venue.wait_finished(TIMEOUT) is True
        assert venue.state()["bars_sent"] == 8
    finally:
        venue.close()


def test_whole_share_config_refuses_fractional_orders() -> None:
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None, config=BacktestConfig(calendar=None))
    venue.start()
    try:
        trading = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        assert trading.get_account_configurations().fractional_trading is False
        with pytest.raises(APIError) as refused:
            trading.submit_order(_market(qty=0.5))
        assert refused.value.status_code == 403 and refused.value.code == 40310000
    finally:
        venue.close()


def test_data_stream_speaks_json_without_the_msgpack_header(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    async def json_client() -> list[object]:
        async with websockets.connect(sim.data_stream_url) as ws:
            frames = [json.loads(await ws.recv())]
            await ws.send(json.dumps({"action": "auth", "key": sim.key_id, "secret": sim.secret_key}))
            frames.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL"]}))
            frames.append(json.loads(await ws.recv()))
            return frames

    thread = LoopThread("alpacatest", "json")
    thread.start()
    try:
        greeting, auth, ack = thread.call(json_client(), TIMEOUT)
    finally:
        thread.close()
    assert greeting == [{"T": "success", "msg": "connected"}] and auth == [{"T": "success", "msg": "authenticated"}]
    assert ack[0]["T"] == "subscription" and ack[0]["bars"] == ["AAPL"]


def test_secrets_never_reach_a_log_line() -> None:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message) + repr(message.record["extra"])), level="TRACE")
    try:
        venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=2)
        venue.start()
        try:
            secret = venue.secret_key
            trading = TradingClient(venue.key_id, secret, url_override=venue.base_url)
            trading.get_clock()
            with pytest.raises(APIError):
                TradingClient(venue.key_id, secret + "x", url_override=venue.base_url).get_account()
            venue.inject("submit_error", status=500)
            venue.inject("rate_limit_storm", count=1)
            trade = StreamHarness(TradingStream(venue.key_id, secret, url_override=venue.trade_stream_url), "s1")
            trade.stream.subscribe_trade_updates(trade.handler)
            data = StreamHarness(StockDataStream(venue.key_id, secret, url_override=venue.data_stream_url), "s2")
            data.stream.subscribe_bars(data.handler, "AAPL")
            trade.start()
            data.start()
            venue.wait_until(lambda s: s["trade_listeners"] == 1 and s["bar_subscribers"] == 1, TIMEOUT)
            venue.inject("drop_data_stream")
            trade.stop()
            data.stop()
            assert repr(venue).count(secret) == 0
        finally:
            venue.close()
    finally:
        logger.remove(sink)
    assert len(lines) > 5 and any(venue.key_id in line for line in lines)  # the log did capture the run
    assert not [line for line in lines if secret in line]


def test_stream_handshakes_refuse_wrong_keys(sim: SimulatedAlpaca) -> None:
    """Raw clients (alpaca-py would retry forever): the trade stream answers ``unauthorized``, the
    data stream ``[{"T": "error", "code": 402}]``; neither socket is served afterwards."""

    async def refused() -> tuple[dict, list]:
        async with websockets.connect(sim.trade_stream_url) as ws:
            await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": sim.key_id, "secret_key": "x"}}))
            trade = json.loads(await ws.recv())
        async with websockets.connect(sim.data_stream_url, additional_headers={"Content-Type": "application/msgpack"}) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": "PKNOPE", "secret": sim.secret_key}))
            data = msgpack.unpackb(await ws.recv())
        return trade, data

    thread = LoopThread("alpacatest", "auth")
    thread.start()
    try:
        trade, data = thread.call(refused(), TIMEOUT)
    finally:
        thread.close()
    assert trade == {"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized",
                                                         "message": "access key verification failed"}}
    assert data == [{"T": "error", "code": 402, "msg": "auth failed"}]
    assert sim.state()["trade_listeners"] == 0 and sim.state()["data_clients"] == 0


def test_a_cancel_shows_pending_cancel_then_canceled(sim: SimulatedAlpaca, trading: TradingClient,
                                                    trade_stream: StreamHarness) -> None:
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    trade_stream.get_event("new")
    assert trading.cancel_order_by_id(order.id) is None  # 204
    pending = trade_stream.get()
    assert pending.event == "pending_cancel" and pending.order.status is OrderStatus.PENDING_CANCEL
    canceled = trade_stream.get()
    assert canceled.event == "canceled" and canceled.order.status is OrderStatus.CANCELED
    assert trading.get_order_by_id(order.id).status is OrderStatus.CANCELED


def test_a_lost_cancel_leaves_the_order_pending_cancel_and_working(sim: SimulatedAlpaca, trading: TradingClient,
                                                                   trade_stream: StreamHarness) -> None:
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    trade_stream.get_event("new")
    sim.inject("lose_cancel")
    assert trading.cancel_order_by_id(order.id) is None  # 204, as if taken
    assert trade_stream.get().event == "pending_cancel"
    assert trading.get_order_by_id(order.id).status is OrderStatus.PENDING_CANCEL
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [order.id]  # works on
    with pytest.raises(APIError) as refused:  # a later DELETE is refused, not carried out
        trading.cancel_order_by_id(order.id)
    assert refused.value.status_code == 422 and "pending_cancel" in str(refused.value)
    with pytest.raises(queue.Empty):  # and says nothing on the stream
        trade_stream.get(timeout=QUIET)
    assert trading.get_order_by_id(order.id).status is OrderStatus.PENDING_CANCEL


def test_a_lost_cancel_with_bars_is_carried_out_when_those_bars_have_opened(
        sim: SimulatedAlpaca, trading: TradingClient, trade_stream: StreamHarness) -> None:
    order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY, limit_price=1))
    trade_stream.get_event("new")
    sim.inject("lose_cancel", bars=2)
    assert trading.cancel_order_by_id(order.id) is None
    assert trade_stream.get().event == "pending_cancel"
    step(sim, trading)  # one bar: still pending
    assert trading.get_order_by_id(order.id).status is OrderStatus.PENDING_CANCEL
    step(sim, trading)  # the second: Alpaca ends the pending cancel late
    assert trade_stream.get_event("canceled").order.status is OrderStatus.CANCELED
    assert trading.get_order_by_id(order.id).status is OrderStatus.CANCELED
