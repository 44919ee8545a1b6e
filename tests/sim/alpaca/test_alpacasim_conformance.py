"""Issue 13 (Alpaca): what a client the project does not ship expects from the real venue.

Through the REAL alpaca-py clients and plain HTTP: every malformed parameter is Alpaca's 4xx JSON,
the latest / snapshot market-data endpoints, rate-limit headers in step mode, the trade stream at
``/stream/`` too, history before the replay, paced mode that runs without a client, and the same
requests giving the same fills.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import requests
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpacasim_support import (
    DAY1,
    DAY2,
    TIMEOUT,
    StockHistoricalDataClient,
    StreamHarness,
    TradingClient,
    TradingStream,
    make_bars,
    step,
)

from ml4t_live.bridge import LoopThread
from ml4t_live.errors import ConfigError
from ml4t_live.sim.alpaca import SimulatedAlpaca


def _headers(venue: SimulatedAlpaca) -> dict[str, str]:
    return {"APCA-API-KEY-ID": venue.key_id, "APCA-API-SECRET-KEY": venue.secret_key}


def _get(venue: SimulatedAlpaca, path: str, **query: Any) -> requests.Response:
    return requests.get(f"{venue.base_url}{path}", params=query, headers=_headers(venue), timeout=5)


# ---------------------------------------------------------------------- 4xx for every bad parameter
BAD_GETS = [
    ("/v2/orders", {"limit": "abc"}, 400),
    ("/v2/orders", {"limit": "0"}, 422),
    ("/v2/orders", {"limit": "501"}, 422),
    ("/v2/orders", {"status": "bogus"}, 422),
    ("/v2/orders", {"direction": "sideways"}, 422),
    ("/v2/orders", {"side": "hold"}, 422),
    ("/v2/orders", {"after": "yesterday"}, 400),
    ("/v2/stocks/bars", {"symbols": "AAPL", "limit": "abc"}, 400),
    ("/v2/stocks/bars", {"symbols": "AAPL", "limit": "-3"}, 422),
    ("/v2/stocks/bars", {"symbols": "AAPL", "timeframe": "0Min"}, 422),
    ("/v2/stocks/bars", {"symbols": "AAPL", "timeframe": "abc"}, 422),
    ("/v2/stocks/bars", {"symbols": "AAPL", "sort": "random"}, 422),
    ("/v2/stocks/bars", {"symbols": "AAPL", "start": "not-a-time"}, 400),
    ("/v2/stocks/bars", {"symbols": "AAPL", "page_token": "%%%"}, 400),
    ("/v2/stocks/bars", {"symbols": "AAPL", "feed": "nasdaq"}, 422),
    ("/v2/stocks/bars", {}, 400),
    ("/v2/stocks/AAPL/bars", {"limit": "1.5"}, 400),
    ("/v2/stocks/trades", {"symbols": "AAPL", "limit": "x"}, 400),
    ("/v2/stocks/quotes/latest", {}, 400),
    ("/v2/stocks/snapshots", {"symbols": "AAPL", "feed": "nope"}, 422),
    ("/v2/stocks/AAPL/trades/latest", {"feed": "nope"}, 422),
    ("/v2/calendar", {"start": "soon"}, 400),
    ("/v2/account/activities", {"page_size": "abc"}, 422),
    ("/v2/orders:by_client_order_id", {}, 400),
    ("/v2/assets", {"status": "gone"}, 422),
    ("/v2/assets", {"asset_class": "bonds"}, 422),
    ("/v2/no/such/endpoint", {}, 404),
]


@pytest.mark.parametrize(("path", "query", "status"), BAD_GETS)
def test_a_malformed_parameter_is_alpacas_4xx_json(sim: SimulatedAlpaca, path: str, query: dict[str, str],
                                                     status: int) -> None:
    answer = _get(sim, path, **query)
    body = answer.json()
    assert answer.status_code == status, body
    assert isinstance(body["code"], int) and body["code"] // 100000 == status and body["message"]
    assert answer.headers["X-RateLimit-Limit"] == "200"


def test_malformed_bodies_and_close_parameters_are_4xx(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    url, headers = sim.base_url, _headers(sim)
    not_json = requests.post(f"{url}/v2/orders", data=b"{not json", headers=headers, timeout=5)
    bad_qty = requests.post(f"{url}/v2/orders", json={"symbol": "AAPL", "qty": "abc", "side": "buy",
                                                       "type": "market", "time_in_force": "day"},
                            headers=headers, timeout=5)
    step(sim, trading)
    trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)  # the position exists now
    bad_close = requests.delete(f"{url}/v2/positions/AAPL", params={"qty": "lots"}, headers=headers, timeout=5)
    over = requests.delete(f"{url}/v2/positions/AAPL", params={"percentage": "150"}, headers=headers, timeout=5)
    both = requests.delete(f"{url}/v2/positions/AAPL", params={"qty": "1", "percentage": "50"}, headers=headers,
                           timeout=5)
    answers = [not_json, bad_qty, bad_close, over, both]
    assert [a.status_code for a in answers] == [400, 400, 400, 422, 422]
    assert all(a.json()["code"] // 100000 == a.status_code for a in answers)
    assert sim.account()["positions"]["AAPL"][0] == 2  # nothing was closed by the refused requests


# ---------------------------------------------------------------------- rate-limit headers in step mode
def test_rate_limit_headers_in_step_mode_on_every_answer(sim: SimulatedAlpaca) -> None:
    first, second = _get(sim, "/v2/account"), _get(sim, "/v2/stocks/bars", symbols="AAPL")
    refused = requests.get(f"{sim.base_url}/v2/account", timeout=5)  # no keys: 401
    assert [a.status_code for a in (first, second, refused)] == [200, 200, 401]
    assert [a.headers["X-RateLimit-Limit"] for a in (first, second, refused)] == ["200"] * 3
    assert [a.headers["X-RateLimit-Remaining"] for a in (first, second)] == ["199", "198"]
    assert int(first.headers["X-RateLimit-Reset"]) > 1_700_000_000  # unix seconds


# ---------------------------------------------------------------------- market data: latest / snapshot
def test_latest_bar_trade_quote_and_snapshot_through_alpaca_py(
    sim: SimulatedAlpaca, trading: TradingClient, history: StockHistoricalDataClient
) -> None:
    assert history.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["AAPL", "MSFT"])) == {}
    step(sim, trading)
    step(sim, trading)  # bars 0 and 1 have closed
    both = ["AAPL", "MSFT"]
    bars = history.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=both))
    trades = history.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=both))
    quotes = history.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=both))
    assert (bars["AAPL"].close, bars["AAPL"].timestamp, bars["MSFT"].close) == (101.5, DAY1 + timedelta(minutes=1), 401.5)
    assert (trades["AAPL"].price, trades["AAPL"].size, trades["AAPL"].timestamp) == (101.5, 1001, DAY1 + timedelta(minutes=2))
    assert (quotes["MSFT"].bid_price, quotes["MSFT"].ask_price, quotes["MSFT"].bid_size) == (401.49, 401.51, 100)
    snap = history.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["AAPL"]))["AAPL"]
    assert snap.minute_bar.close == 101.5 and snap.latest_trade.price == 101.5 and snap.latest_quote.ask_price == 101.51
    daily = snap.daily_bar
    assert (daily.open, daily.high, daily.low, daily.close, daily.volume) == (100, 102, 99, 101.5, 2001)
    assert snap.previous_daily_bar is None  # no recorded day before
    ticks = history.get_stock_trades(StockTradesRequest(symbol_or_symbols="AAPL")).data["AAPL"]
    assert [(t.price, t.id) for t in ticks] == [(100.5, 1), (101.5, 2)]


def test_single_symbol_latest_and_snapshot_over_plain_http(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    assert _get(sim, "/v2/stocks/AAPL/bars/latest").status_code == 404  # nothing has closed yet
    for _ in range(11):
        step(sim, trading)  # day 1 (10 bars) and the first bar of day 2 have closed
    snap = _get(sim, "/v2/stocks/AAPL/snapshot").json()
    assert snap["symbol"] == "AAPL" and snap["minuteBar"]["t"] == DAY2.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert snap["dailyBar"]["o"] == 110 and snap["dailyBar"]["t"] == "2024-03-05T05:00:00Z"  # NY midnight
    prev = snap["prevDailyBar"]
    assert (prev["o"], prev["h"], prev["l"], prev["c"], prev["v"]) == (100, 110, 99, 109.5, sum(range(1000, 1010)))
    trade = _get(sim, "/v2/stocks/AAPL/trades/latest").json()
    quote = _get(sim, "/v2/stocks/MSFT/quotes/latest").json()
    assert trade["symbol"] == "AAPL" and trade["trade"]["p"] == 110.5 and trade["trade"]["i"] == 11
    assert quote["symbol"] == "MSFT" and quote["quote"]["bp"] == 410.49
    several = _get(sim, "/v2/stocks/snapshots", symbols="AAPL,ZZZZ").json()
    assert several["ZZZZ"] is None and several["AAPL"]["latestTrade"] == trade["trade"]
    assert _get(sim, "/v2/stocks/ZZZZ/snapshot").status_code == 404


# ---------------------------------------------------------------------- the trade stream at /stream/
def test_trade_updates_also_at_stream_with_a_trailing_slash(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    stream = TradingStream(sim.key_id, sim.secret_key, url_override=sim.trade_stream_url + "/")
    harness = StreamHarness(stream, "slash")
    stream.subscribe_trade_updates(harness.handler)
    harness.start()
    try:
        sim.wait_until(lambda s: s["trade_listeners"] >= 1, TIMEOUT)
        step(sim, trading)
        order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                        time_in_force=TimeInForce.DAY))
        step(sim, trading)
        fill = harness.get_event("fill")
        assert fill.order.id == order.id and fill.price == 101.0
    finally:
        harness.stop()


# ---------------------------------------------------------------------- history before the replay
@pytest.mark.parametrize("spec", [4, "4", "4bars", "4min"])
def test_history_is_served_before_the_replay_starts(spec: Any) -> None:
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None, history=spec)
    venue.start()
    try:
        data = StockHistoricalDataClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        trading = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        got = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute)).data
        assert [b.timestamp for b in got["AAPL"]] == [DAY1 + timedelta(minutes=i) for i in range(4)]
        assert venue.state()["bar_index"] == -1  # before any client caught up: nothing replayed yet
        step(venue, trading)
        assert venue.state()["now"] == DAY1 + timedelta(minutes=5)  # the replay began with bar 4
    finally:
        venue.close()


def test_history_that_leaves_nothing_to_replay_is_refused() -> None:
    with pytest.raises(ConfigError, match="nothing would be replayed"):
        SimulatedAlpaca(make_bars(), history=13).start()
    with pytest.raises(ConfigError, match="number of bars"):
        SimulatedAlpaca(make_bars(), history="a while")


# ---------------------------------------------------------------------- paced mode needs no client
def test_paced_mode_clock_starts_when_the_simulator_starts() -> None:
    venue = SimulatedAlpaca(make_bars(3, 1), rate_limit_per_minute=None, speed=1200.0, history=1)  # 0.05 s a bar
    venue.start()
    try:
        assert venue.wait_finished(TIMEOUT)  # no client ever connected: the clock ran anyway
        assert venue.state()["bar_index"] == 2  # 4 bars in hours, 1 of them history
    finally:
        venue.close()


# ---------------------------------------------------------------------- reproducible fills
def _limit_ladder_fills() -> list[tuple[Any, ...]]:
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None)
    venue.start()
    try:
        trading = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)
        for bar in range(12):
            step(venue, trading)
            for symbol, base in (("MSFT", 400.0), ("AAPL", 100.0)):
                side = OrderSide.BUY if bar % 2 == 0 else OrderSide.SELL
                limit = base + bar + (1.5 if side is OrderSide.BUY else 0.5)
                trading.submit_order(LimitOrderRequest(symbol=symbol, qty=1 + bar % 3, side=side, limit_price=limit,
                                                       time_in_force=TimeInForce.GTC,
                                                       client_order_id=f"{symbol}-{bar}"))
        while not step(venue, trading)["finished"]:  # the last bar waits for one more catch-up
            continue
        return [(f.client_order_id, f.side, f.qty, f.price, f.timestamp, f.position_qty) for f in venue.fills()]
    finally:
        venue.close()


def test_the_same_requests_give_the_same_fills() -> None:
    first, second = _limit_ladder_fills(), _limit_ladder_fills()
    assert len(first) >= 12 and first == second


# ---------------------------------------------------------------------- no query string gives a 5xx
GARBAGE_PARAMS = ("limit", "status", "direction", "after", "until", "start", "end", "timeframe", "sort", "page_token",
                  "feed", "symbols", "page_size", "date", "activity_types", "category", "nested", "side", "asof",
                  "currency", "adjustment", "qty", "percentage", "cancel_orders", "asset_class", "client_order_id",
                  "order_id")  # fmt: skip
ROUTES = [
    ("GET", "/v2/account"), ("GET", "/v2/account/configurations"), ("GET", "/v2/account/activities"),
    ("GET", "/v2/account/activities/FILL"), ("GET", "/v2/positions"), ("GET", "/v2/positions/AAPL"),
    ("DELETE", "/v2/positions/AAPL"), ("DELETE", "/v2/positions"), ("GET", "/v2/orders"),
    ("GET", "/v2/orders:by_client_order_id"), ("GET", "/v2/orders/6f1d5c3e-0000-4000-8000-000000000000"),
    ("DELETE", "/v2/orders/6f1d5c3e-0000-4000-8000-000000000000"), ("GET", "/v2/clock"), ("GET", "/v2/calendar"),
    ("GET", "/v2/assets"), ("GET", "/v2/assets/AAPL"), ("GET", "/v2/stocks/snapshots"),
    ("GET", "/v2/stocks/AAPL/snapshot"),
    *[("GET", f"/v2/stocks/{kind}") for kind in ("bars", "quotes", "trades")],
    *[("GET", f"/v2/stocks/{kind}/latest") for kind in ("bars", "quotes", "trades")],
    *[("GET", f"/v2/stocks/AAPL/{kind}") for kind in ("bars", "quotes", "trades")],
    *[("GET", f"/v2/stocks/AAPL/{kind}/latest") for kind in ("bars", "quotes", "trades")],
]  # fmt: skip


@pytest.mark.parametrize("garbage", ["abc", "-1", "%%", "1e999", ""])
def test_garbage_in_any_query_parameter_never_gives_a_5xx(sim: SimulatedAlpaca, trading: TradingClient,
                                                          garbage: str) -> None:
    step(sim, trading)
    trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)  # a position and some data exist, so the handlers get past "not found"
    for method, path in ROUTES:
        for name in GARBAGE_PARAMS:
            answer = requests.request(method, f"{sim.base_url}{path}", params={name: garbage, "symbols": "AAPL"}
                                      if name != "symbols" else {name: garbage}, headers=_headers(sim), timeout=5)
            assert answer.status_code < 500, (method, path, name, answer.text)
            if answer.status_code >= 400:
                assert answer.json()["code"] // 100000 == answer.status_code, (method, path, name, answer.text)


# ---------------------------------------------------------------------- plain websocket clients
async def _plain_ws_session(venue: SimulatedAlpaca) -> tuple[list[Any], list[Any]]:
    """A JSON market-data client sends a subscription whose channel is not a list; a trade-stream
    client connects at /stream/ and asks for streams that are not a list."""
    import aiohttp

    ws_url = venue.base_url.replace("http://", "ws://")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{ws_url}/v2/iex") as data:
            data_seen = [await data.receive_json()]
            await data.send_json({"action": "auth", "key": venue.key_id, "secret": venue.secret_key})
            data_seen.append(await data.receive_json())
            await data.send_json({"action": "subscribe", "bars": "AAPL"})
            data_seen.append(await data.receive_json())
        async with session.ws_connect(f"{ws_url}/stream/") as trades:
            await trades.send_json({"action": "authenticate", "data": {"key_id": venue.key_id,
                                                                      "secret_key": venue.secret_key}})
            trade_seen = [json.loads((await trades.receive()).data)]
            await trades.send_json({"action": "listen", "data": {"streams": "trade_updates"}})
            trade_seen.append(json.loads((await trades.receive()).data))
    return data_seen, trade_seen


def test_plain_websocket_clients_get_alpacas_answers(sim: SimulatedAlpaca) -> None:
    thread = LoopThread("alpacatest", "plainws")
    thread.start()
    try:
        data_seen, trade_seen = thread.call(_plain_ws_session(sim), TIMEOUT)
    finally:
        thread.close(timeout=TIMEOUT)
    assert data_seen == [[{"T": "success", "msg": "connected"}], [{"T": "success", "msg": "authenticated"}],
                         [{"T": "error", "code": 400, "msg": "invalid syntax"}]]
    assert trade_seen[0]["data"]["status"] == "authorized"
    assert trade_seen[1] == {"stream": "listening", "data": {"streams": []}}


BODY_FIELDS = ("symbol", "qty", "notional", "side", "type", "time_in_force", "limit_price", "stop_price", "trail_price",
               "trail_percent", "order_class", "take_profit", "stop_loss", "client_order_id", "extended_hours",
               "position_intent")  # fmt: skip
GARBAGE_VALUES = ("abc", -1, 0, {"x": 1}, [1], None, True, 1e308, "1e999")


def test_garbage_in_any_order_field_never_gives_a_5xx(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    step(sim, trading)
    url, headers = f"{sim.base_url}/v2/orders", _headers(sim)
    valid = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "limit_price": "50", "time_in_force": "gtc"}
    resting = requests.post(url, json=valid, headers=headers, timeout=5).json()["id"]
    answers = []
    for name in BODY_FIELDS:
        for garbage in GARBAGE_VALUES:
            answers.append((name, garbage, requests.post(url, json={**valid, name: garbage}, headers=headers, timeout=5)))
    for name in ("qty", "limit_price", "stop_price", "trail", "time_in_force", "client_order_id"):
        for garbage in GARBAGE_VALUES:
            answers.append((name, garbage, requests.patch(f"{url}/{resting}", json={name: garbage}, headers=headers,
                                                          timeout=5)))
    for name, garbage, answer in answers:
        assert answer.status_code < 500, (name, garbage, answer.text)
        if answer.status_code >= 400:
            assert answer.json()["code"] // 100000 == answer.status_code, (name, garbage, answer.text)
    assert sum(a.status_code >= 400 for _n, _g, a in answers) > len(answers) // 2  # most of it was refused
