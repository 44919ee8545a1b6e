"""Conformance client: ``alpaca-py`` (the project's pin) against ``sim alpaca``.

Run by ``scripts/sim_conformance_alpaca.py``; imports nothing from ml4t_live. Reads ``SIM_URL``,
``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, ``SIM_HISTORY``, ``SIM_REPLAY`` and ``SIM_PACED``
from the environment; prints one JSON object per check, then ``{"fills": [...]}``. The scenario is
the one of alpaca_trade_api_client.py (see the driver's docstring). With ``SIM_PACED=1`` (a
simulator at ``--speed``) it only places a market order, subscribing to no bars, and waits for
the fill.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.stream import TradingStream

URL = os.environ["SIM_URL"]
WS = URL.replace("http://", "ws://", 1)
KEY, SECRET = os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"]
HISTORY, REPLAY = int(os.environ["SIM_HISTORY"]), int(os.environ["SIM_REPLAY"])
WAIT = 5.0
FAILED: list[str] = []
BUY, SELL, GTC, DAY = OrderSide.BUY, OrderSide.SELL, TimeInForce.GTC, TimeInForce.DAY


def check(name: str, ok: bool, detail: object = "") -> None:
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)[:300]}), flush=True)
    if not ok:
        FAILED.append(name)


def raw(path: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(URL + path, headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, json.loads(answer.read() or b"{}"), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def api_error(call) -> APIError | None:
    try:
        call()
    except APIError as error:
        return error
    return None


def status(order) -> str:
    return str(order.status.value)


async def next_event(queue: asyncio.Queue, event: str, order_id: str | None = None):
    async with asyncio.timeout(WAIT):
        while True:
            update = await queue.get()
            if str(update.event.value if hasattr(update.event, "value") else update.event) == event and (
                order_id is None or str(update.order.id) == order_id
            ):
                return update


async def scenario(paced: bool) -> list:
    trading = TradingClient(KEY, SECRET, url_override=URL)
    data = StockHistoricalDataClient(KEY, SECRET, url_override=URL)
    updates: asyncio.Queue = asyncio.Queue()
    bars: asyncio.Queue = asyncio.Queue()

    async def on_update(update):
        updates.put_nowait(update)

    async def on_bar(bar):
        bars.put_nowait(bar)

    streams = [TradingStream(KEY, SECRET, url_override=WS + "/stream")]
    streams[0].subscribe_trade_updates(on_update)
    if not paced:
        streams.append(StockDataStream(KEY, SECRET, url_override=WS + "/v2/iex"))
        streams[1].subscribe_bars(on_bar, "AAPL")  # before running: it spins until something is subscribed
    tasks = [asyncio.create_task(s._run_forever()) for s in streams]
    try:
        await asyncio.sleep(0.5)  # sockets authenticate and listen (neither client waits for an ack)
        if paced:
            return await paced_steps(trading, updates)
        return await steps(trading, data, updates, bars)
    finally:
        for stream in streams:
            await stream.stop_ws()
            await stream.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def paced_steps(trading: TradingClient, updates: asyncio.Queue) -> list:
    order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY))
    fill = await next_event(updates, "fill", str(order.id))
    check("paced mode: a market order fills with no bar subscription (clock runs from the start)",
          fill.order.status.value == "filled", fill.price)
    return []


async def steps(trading: TradingClient, data: StockHistoricalDataClient, updates: asyncio.Queue,
                bars: asyncio.Queue) -> list:
    history = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame.Minute))
    check("history: bars endpoint serves the history bars before the replay",
          {s: len(v) for s, v in history.data.items()} == {"AAPL": HISTORY, "MSFT": HISTORY})
    latest = data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="AAPL"))["AAPL"]
    check("latest bar = last history bar", latest.close == history.data["AAPL"][-1].close, latest.close)
    code, body, headers = raw("/v2/account")
    check("rate-limit headers on every answer (step mode)",
          code == 200 and {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers))
    for path in ("/v2/orders?limit=abc", "/v2/stocks/bars?symbols=AAPL&limit=abc", "/v2/stocks/snapshots?symbols="):
        code, body, _ = raw(path)
        check(f"malformed parameter {path} -> 4xx JSON", 400 <= code < 500 and body.get("code", 0) // 100000 == code,
              (code, body))

    trading.get_clock()
    bar = await asyncio.wait_for(bars.get(), WAIT)
    check("data stream (/v2/iex, msgpack) delivers the replayed bar", bar.symbol == "AAPL", bar)

    mkt = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=10, side=BUY, time_in_force=DAY,
                                                  client_order_id="mkt"))
    rest = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=BUY, limit_price=90, time_in_force=GTC,
                                                  client_order_id="lmt-rest"))
    cross = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=2, side=BUY, limit_price=120,
                                                   time_in_force=GTC, client_order_id="lmt-cross"))
    stop = trading.submit_order(StopOrderRequest(symbol="AAPL", qty=1, side=BUY, stop_price=106.5,
                                                 time_in_force=GTC, client_order_id="stp"))
    stop_limit = trading.submit_order(StopLimitOrderRequest(symbol="AAPL", qty=1, side=BUY, stop_price=107,
                                                            limit_price=107.5, time_in_force=GTC,
                                                            client_order_id="stplmt"))
    notional = trading.submit_order(MarketOrderRequest(symbol="AAPL", notional=100, side=BUY, time_in_force=DAY,
                                                       client_order_id="notional"))
    check("submit answers every order type as new",
          {status(o) for o in (mkt, rest, cross, stop, stop_limit, notional)} == {"new"})
    await next_event(updates, "new", str(mkt.id))
    dup = api_error(lambda: trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=BUY, time_in_force=DAY,
                                                                    client_order_id="mkt")))
    check("duplicate client_order_id -> 422 40010001", dup is not None and dup.status_code == 422 and dup.code == 40010001)
    missing = api_error(lambda: trading.get_order_by_id("00000000-0000-4000-8000-000000000000"))
    check("unknown order id -> 404", missing is not None and missing.status_code == 404)

    trading.get_clock()
    fill = await next_event(updates, "fill", str(mkt.id))
    check("market order fills at the next open (stream 'fill')", fill.order.status.value == "filled", fill.price)
    check("marketable limit fills", status(trading.get_order_by_id(cross.id)) == "filled")
    filled = trading.get_order_by_id(notional.id)
    check("notional order fills a fractional quantity", status(filled) == "filled" and float(filled.filled_qty) < 1)
    moved = trading.replace_order_by_id(rest.id, ReplaceOrderRequest(limit_price=91))
    check("replace: a new order that replaces the old one", str(moved.replaces) == str(rest.id) and moved.limit_price == "91")
    await next_event(updates, "replaced", str(rest.id))
    trading.cancel_order_by_id(moved.id)
    await next_event(updates, "canceled", str(moved.id))
    check("cancel: 'canceled' on the stream and over REST", status(trading.get_order_by_id(moved.id)) == "canceled")

    trail = trading.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=5, side=SELL, trail_price=2,
                                                          time_in_force=GTC, client_order_id="trail"))
    check("trailing stop reports hwm and stop_price = hwm - trail",
          trail.hwm is not None and abs(float(trail.stop_price) - (float(trail.hwm) - 2)) < 1e-9,
          (trail.hwm, trail.stop_price))
    bracket = trading.submit_order(MarketOrderRequest(
        symbol="MSFT", qty=1, side=BUY, time_in_force=GTC, order_class=OrderClass.BRACKET, client_order_id="brk",
        take_profit=TakeProfitRequest(limit_price=500), stop_loss=StopLossRequest(stop_price=380)))
    check("bracket legs are held before the entry fills", [status(leg) for leg in bracket.legs] == ["held", "held"])
    oto = trading.submit_order(MarketOrderRequest(symbol="MSFT", qty=1, side=BUY, time_in_force=GTC,
                                                  order_class=OrderClass.OTO, client_order_id="oto",
                                                  stop_loss=StopLossRequest(stop_price=390)))
    trading.get_clock()
    nested = GetOrderByIdRequest(nested=True)
    legs = {leg.type.value: status(leg) for leg in trading.get_order_by_id(bracket.id, nested).legs}
    check("after the entry fills: take-profit new, stop-loss held (as Alpaca)", legs == {"limit": "new", "stop": "held"},
          legs)
    check("oto leg goes live after its entry fills", status(trading.get_order_by_id(oto.id, nested).legs[0]) == "new")
    stop_leg = next(leg for leg in trading.get_order_by_id(bracket.id, nested).legs if leg.type.value == "stop")
    moved_leg = trading.replace_order_by_id(stop_leg.id, ReplaceOrderRequest(stop_price=375))
    check("a held stop-loss leg can be replaced and stays held", status(moved_leg) == "held" and moved_leg.stop_price == "375")
    oco = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=2, side=SELL, time_in_force=GTC,
                                                 order_class=OrderClass.OCO, client_order_id="oco",
                                                 take_profit=TakeProfitRequest(limit_price=130),
                                                 stop_loss=StopLossRequest(stop_price=100)))
    check("oco: the take-profit limit with one stop leg", oco.order_class is OrderClass.OCO and len(oco.legs) == 1)

    for _ in range(REPLAY + 1):
        trading.get_clock()
    orders = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, nested=True))
    by_coid = {o.client_order_id: o for o in orders}
    for coid, name in (("stp", "stop"), ("stplmt", "stop-limit"), ("trail", "trailing stop")):
        check(f"{name} order triggered and filled", status(by_coid[coid]) == "filled", status(by_coid[coid]))
    oco_states = sorted([status(by_coid["oco"])] + [status(leg) for leg in by_coid["oco"].legs])
    check("oco: one side filled, the other canceled", oco_states == ["canceled", "filled"], oco_states)
    check("oto stop-loss filled", status(by_coid["oto"].legs[0]) == "filled")

    both = ["AAPL", "MSFT"]
    trades = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=both))
    quotes = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=both))
    latest_bars = data.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=both))
    check("latest trades / quotes / bars (multi symbol)",
          set(trades) == set(quotes) == set(latest_bars) == set(both)
          and quotes["AAPL"].bid_price < trades["AAPL"].price < quotes["AAPL"].ask_price
          and latest_bars["AAPL"].close == trades["AAPL"].price)
    snaps = data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=both))
    check("snapshots: trade, quote, minute / daily / previous daily bar",
          snaps["AAPL"].latest_trade.price == trades["AAPL"].price and snaps["MSFT"].previous_daily_bar is not None)
    code, single, _ = raw("/v2/stocks/AAPL/snapshot")
    check("snapshot (single symbol, plain HTTP)", code == 200 and single["symbol"] == "AAPL" and single["dailyBar"])

    every = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=both, timeframe=TimeFrame.Minute)).data
    five = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame(5, TimeFrameUnit.Minute)))
    check("historical bars after the replay: history + replay per symbol; 5-minute bars aggregate",
          {k: len(v) for k, v in every.items()} == {s: HISTORY + REPLAY for s in both}
          and len(five.data["AAPL"]) == (HISTORY + REPLAY) // 5)
    account = trading.get_account()
    check("account: ACTIVE, money as strings", account.status.value == "ACTIVE" and isinstance(account.cash, str))
    check("positions: both symbols", {p.symbol for p in trading.get_all_positions()} == set(both))
    check("assets: the recorded symbols", {a.symbol for a in trading.get_all_assets()} == set(both))
    days = trading.get_calendar(GetCalendarRequest(start="2024-03-04", end="2024-03-05"))
    check("calendar: NYSE days", [str(d.date) for d in days] == ["2024-03-04", "2024-03-05"], days)

    closing = trading.close_position("MSFT")
    check("close position: a market order for the whole position", closing.side is SELL)
    trading.cancel_orders()
    check("cancel-all leaves no open order", trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == [])
    code, fills, _ = raw("/v2/account/activities/FILL?direction=asc")
    everything = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500))
    # legs get server-made (random) client order ids: name them by type so runs compare
    names = {str(o.id): o.client_order_id if o.client_order_id in by_coid or o.replaces else f"leg-{o.type.value}"
             for o in everything}
    return [[names.get(f["order_id"], "?"), f["side"], f["qty"], f["price"], f["transaction_time"]] for f in fills]


def main() -> int:
    fills = asyncio.run(scenario(os.environ.get("SIM_PACED") == "1"))
    print(json.dumps({"fills": fills}), flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
