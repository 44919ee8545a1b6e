"""Conformance client: Alpaca's legacy official SDK, ``alpaca-trade-api`` 3.2, against ``sim alpaca``.

Run by ``scripts/sim_conformance_alpaca.py`` with the python of an isolated venv that holds only
alpaca-trade-api (this file imports nothing from ml4t_live). Reads ``SIM_URL``, ``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``, ``SIM_HISTORY`` and ``SIM_REPLAY`` (bars) from the environment and prints
one JSON object per check (``{"check", "ok", "detail"}``), then ``{"fills": [...]}``.

The scenario (the same as alpaca_py_client.py, see the driver's docstring for the bars): history
before the first clock, every order type's life cycle, replace / cancel / cancel-all / close,
both websockets, the market-data endpoints and the errors. Step mode: each ``get_clock()`` lets
the simulator move one bar on; it answers once the next bar's open was matched.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import alpaca_trade_api as tradeapi
from alpaca_trade_api.rest import APIError, TimeFrame, TimeFrameUnit
from alpaca_trade_api.stream import DataStream, TradingStream

URL = os.environ["SIM_URL"]
KEY, SECRET = os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"]
HISTORY, REPLAY = int(os.environ["SIM_HISTORY"]), int(os.environ["SIM_REPLAY"])
WAIT = 5.0
FAILED = []


def check(name: str, ok: bool, detail: object = "") -> None:
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)[:300]}), flush=True)
    if not ok:
        FAILED.append(name)


def raw(path: str, method: str = "GET") -> tuple[int, dict, dict]:
    """Plain HTTP (urllib): status, JSON body, headers."""
    request = urllib.request.Request(URL + path, method=method,
                                     headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            body = answer.read()
            return answer.status, (json.loads(body) if body else {}), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def api_error(call) -> APIError | None:
    try:
        call()
    except APIError as error:
        return error
    return None


async def next_event(queue: asyncio.Queue, event: str, order_id: str | None = None):
    """The next trade update ``event`` (for ``order_id`` when given), skipping others."""
    async with asyncio.timeout(WAIT):
        while True:
            update = await queue.get()
            if update.event == event and (order_id is None or update.order["id"] == order_id):
                return update


async def scenario() -> list:
    api = tradeapi.REST(KEY, SECRET, base_url=URL, api_version="v2")
    updates: asyncio.Queue = asyncio.Queue()
    bars: asyncio.Queue = asyncio.Queue()

    async def on_update(update):
        updates.put_nowait(update)

    async def on_bar(bar):
        bars.put_nowait(bar)

    trade_stream = TradingStream(KEY, SECRET, base_url=URL)  # connects to {URL}/stream/
    trade_stream.subscribe_trade_updates(on_update)
    data_stream = DataStream(KEY, SECRET, base_url=URL, raw_data=False, feed="iex")
    data_stream.subscribe_bars(on_bar, "AAPL")
    tasks = [asyncio.create_task(trade_stream._run_forever()), asyncio.create_task(data_stream._run_forever())]
    try:
        await asyncio.sleep(0.5)  # both sockets authenticate and listen (neither library waits for an ack)
        return await steps(api, updates, bars)
    finally:
        await trade_stream.stop_ws()
        await trade_stream.close()
        await data_stream.stop_ws()
        await data_stream.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def steps(api, updates: asyncio.Queue, bars: asyncio.Queue) -> list:
    # ---- history, before the first clock
    history = api.get_bars("AAPL", TimeFrame.Minute).df
    check("history: bars endpoint serves the history bars before the replay", len(history) == HISTORY, len(history))
    latest = api.get_latest_bar("AAPL")
    check("latest bar (single symbol) = last history bar", abs(latest.c - float(history["close"].iloc[-1])) < 1e-9,
          latest)
    status, body, headers = raw("/v2/account")
    check("rate-limit headers on every answer (step mode)",
          status == 200 and {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(headers),
          headers.get("X-RateLimit-Remaining"))
    for path in ("/v2/orders?limit=abc", "/v2/stocks/bars?symbols=AAPL&limit=abc", "/v2/stocks/AAPL/bars?limit=x"):
        status, body, _ = raw(path)
        check(f"malformed parameter {path} -> 4xx JSON", 400 <= status < 500 and body.get("code", 0) // 100000 == status,
              (status, body))
    error = api_error(lambda: api.list_orders(limit="abc"))
    check("SDK call with limit=abc raises APIError 4xx", error is not None and 400 <= error.status_code < 500, error)

    api.get_clock()  # bar 0 of the replay goes out
    bar = await asyncio.wait_for(bars.get(), WAIT)
    check("data stream (/v2/iex, msgpack) delivers the replayed bar", bar.symbol == "AAPL", bar)

    # ---- simple orders
    mkt = api.submit_order("AAPL", qty=10, side="buy", type="market", time_in_force="day", client_order_id="mkt")
    rest = api.submit_order("AAPL", qty=1, side="buy", type="limit", limit_price="90", time_in_force="gtc",
                            client_order_id="lmt-rest")
    cross = api.submit_order("AAPL", qty=2, side="buy", type="limit", limit_price="120", time_in_force="gtc",
                             client_order_id="lmt-cross")
    stop = api.submit_order("AAPL", qty=1, side="buy", type="stop", stop_price="106.5", time_in_force="gtc",
                            client_order_id="stp")
    stop_limit = api.submit_order("AAPL", qty=1, side="buy", type="stop_limit", stop_price="107",
                                  limit_price="107.5", time_in_force="gtc", client_order_id="stplmt")
    notional = api.submit_order("AAPL", notional=100, side="buy", type="market", time_in_force="day",
                                client_order_id="notional")
    check("submit answers every order type as new",
          {o.status for o in (mkt, rest, cross, stop, stop_limit, notional)} == {"new"})
    update = await next_event(updates, "new", mkt.id)
    check("trade stream (/stream/) delivers 'new'", update.order["client_order_id"] == "mkt")
    dup = api_error(lambda: api.submit_order("AAPL", qty=1, side="buy", type="market", time_in_force="day",
                                             client_order_id="mkt"))
    check("duplicate client_order_id -> 422 40010001", dup is not None and dup.status_code == 422 and dup.code == 40010001,
          dup)
    missing = api_error(lambda: api.get_order("00000000-0000-4000-8000-000000000000"))
    check("unknown order id -> 404", missing is not None and missing.status_code == 404, missing)

    api.get_clock()  # the next bar opens: market and crossing limit fill
    fill = await next_event(updates, "fill", mkt.id)
    check("market order fills at the next open (stream 'fill')", float(fill.price) > 0 and fill.order["status"] == "filled",
          fill.price)
    check("marketable limit fills", api.get_order(cross.id).status == "filled")
    filled = api.get_order(notional.id)
    check("notional order fills a fractional quantity", filled.status == "filled" and float(filled.filled_qty) < 1,
          filled.filled_qty)
    moved = api.replace_order(rest.id, limit_price="91")
    check("replace: a new order that replaces the old one", moved.replaces == rest.id and moved.limit_price == "91",
          moved)
    await next_event(updates, "replaced", rest.id)
    api.cancel_order(moved.id)
    await next_event(updates, "canceled", moved.id)
    check("cancel: 'canceled' on the stream and over REST", api.get_order(moved.id).status == "canceled")

    # ---- trailing stop, bracket, oto
    trail = api.submit_order("AAPL", qty=5, side="sell", type="trailing_stop", trail_price="2", time_in_force="gtc",
                             client_order_id="trail")
    check("trailing stop reports hwm and stop_price = hwm - trail",
          trail.hwm is not None and abs(float(trail.stop_price) - (float(trail.hwm) - 2)) < 1e-9,
          (trail.hwm, trail.stop_price))
    bracket = api.submit_order("MSFT", qty=1, side="buy", type="market", time_in_force="gtc", order_class="bracket",
                               take_profit={"limit_price": "500"}, stop_loss={"stop_price": "380"},
                               client_order_id="brk")
    check("bracket legs are held before the entry fills", [leg.status for leg in bracket.legs] == ["held", "held"],
          [leg.status for leg in bracket.legs])
    oto = api.submit_order("MSFT", qty=1, side="buy", type="market", time_in_force="gtc", order_class="oto",
                           stop_loss={"stop_price": "390"}, client_order_id="oto")
    api.get_clock()
    legs = {leg.type: leg.status for leg in api.get_order(bracket.id, nested=True).legs}
    check("after the entry fills: take-profit new, stop-loss held (as Alpaca)",
          legs == {"limit": "new", "stop": "held"}, legs)
    check("oto leg goes live after its entry fills", api.get_order(oto.id, nested=True).legs[0].status == "new")
    stop_leg = next(leg for leg in api.get_order(bracket.id, nested=True).legs if leg.type == "stop")
    moved_leg = api.replace_order(stop_leg.id, stop_price="375")
    check("a held stop-loss leg can be replaced and stays held", moved_leg.status == "held" and moved_leg.stop_price == "375",
          moved_leg.status)
    oco = api.submit_order("AAPL", qty=2, side="sell", type="limit", time_in_force="gtc", order_class="oco",
                           take_profit={"limit_price": "130"}, stop_loss={"stop_price": "100"}, client_order_id="oco")
    check("oco: the take-profit limit with one stop leg", oco.order_class == "oco" and len(oco.legs) == 1)

    # ---- run the replay out
    for _ in range(REPLAY + 1):
        api.get_clock()
    by_coid = {o.client_order_id: o for o in api.list_orders(status="all", limit=500, nested=True)}
    check("stop order triggered and filled", by_coid["stp"].status == "filled", by_coid["stp"].status)
    check("stop-limit order triggered and filled", by_coid["stplmt"].status == "filled", by_coid["stplmt"].status)
    check("trailing stop filled on the way down", by_coid["trail"].status == "filled", by_coid["trail"].status)
    oco_legs = [by_coid["oco"].status] + [leg.status for leg in by_coid["oco"].legs]
    check("oco: one side filled, the other canceled", sorted(oco_legs) == ["canceled", "filled"], oco_legs)
    check("oto stop-loss filled", by_coid["oto"].legs[0].status == "filled", by_coid["oto"].legs[0].status)

    # ---- market data at the end of the replay
    trades, quotes = api.get_latest_trades(["AAPL", "MSFT"]), api.get_latest_quotes(["AAPL", "MSFT"])
    check("latest trades / quotes (multi symbol)", set(trades) == {"AAPL", "MSFT"} and quotes["MSFT"].ap > quotes["MSFT"].bp,
          (trades["AAPL"].p, quotes["MSFT"].bp))
    one_trade, one_quote = api.get_latest_trade("AAPL"), api.get_latest_quote("AAPL")
    check("latest trade / quote (single symbol)", one_trade.p == trades["AAPL"].p and one_quote.bp < one_trade.p < one_quote.ap)
    latest_bars = api.get_latest_bars(["AAPL", "MSFT"])
    check("latest bars (multi symbol)", abs(latest_bars["AAPL"].c - one_trade.p) < 1e-9, latest_bars["AAPL"])
    snap = api.get_snapshot("AAPL")
    check("snapshot (single): trade, quote, minute/daily/previous daily bar",
          snap.latest_trade.p == one_trade.p and snap.daily_bar is not None and snap.prev_daily_bar is not None, snap.daily_bar)
    snaps = api.get_snapshots(["AAPL", "MSFT"])
    check("snapshots (multi)", set(snaps) == {"AAPL", "MSFT"} and snaps["MSFT"].minute_bar is not None)

    everything = api.get_bars(["AAPL", "MSFT"], TimeFrame.Minute).df
    five = api.get_bars("AAPL", TimeFrame(5, TimeFrameUnit.Minute)).df
    check("historical bars (multi symbol) after the replay: history + replay, both symbols",
          len(everything) == 2 * (HISTORY + REPLAY), len(everything))
    check("5-minute bars aggregate the minutes", len(five) == (HISTORY + REPLAY) // 5, len(five))
    ticks, tops = api.get_trades("AAPL").df, api.get_quotes("AAPL").df
    check("historical trades and quotes: one per minute bar", len(ticks) == len(tops) == HISTORY + REPLAY,
          (len(ticks), len(tops)))
    unknown = api_error(lambda: api.get_latest_trade("ZZZZ"))
    check("latest trade of a symbol with no data -> 404", unknown is not None and unknown.status_code == 404, unknown)
    account = api.get_account()
    check("account: ACTIVE, money as strings", account.status == "ACTIVE" and isinstance(account.cash, str), account.cash)
    positions = {p.symbol: p for p in api.list_positions()}
    check("positions list and one position", set(positions) == {"AAPL", "MSFT"}
          and api.get_position("AAPL").qty == positions["AAPL"].qty, {k: v.qty for k, v in positions.items()})
    check("assets: the recorded symbols", {a.symbol for a in api.list_assets()} == {"AAPL", "MSFT"}
          and api.get_asset("MSFT").tradable)
    days = api.get_calendar("2024-03-04", "2024-03-05")
    check("calendar: NYSE days", [str(d.date.date()) for d in days] == ["2024-03-04", "2024-03-05"], days)

    # ---- close and cancel-all
    closing = api.close_position("MSFT")
    check("close position: a market order for the whole position", closing.side == "sell", closing.qty)
    api.cancel_all_orders()
    check("cancel-all leaves no open order", api.list_orders(status="open") == [])
    return [[f.order_id and by_id_coid(api, f.order_id), f.side, f.qty, f.price, str(f.transaction_time)]
            for f in api.get_activities(activity_types="FILL", direction="asc")]


def by_id_coid(api, order_id: str) -> str:
    return api.get_order(order_id).client_order_id


def main() -> int:
    fills = asyncio.run(scenario())
    print(json.dumps({"fills": fills}), flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
