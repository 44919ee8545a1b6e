"""Market-data REST (``/v2/stocks/...``) as aiohttp handlers, all derived from the recorded bars.

Routes (multi-symbol: ``symbols=A,B``; single-symbol: the symbol in the path)::

    GET /v2/stocks/{bars,quotes,trades}            {kind: {SYM: [..]}, next_page_token}
    GET /v2/stocks/{SYM}/{bars,quotes,trades}      {kind: [..], symbol, next_page_token}
    GET /v2/stocks/{bars,quotes,trades}/latest     {kind: {SYM: obj}}   (no data: left out)
    GET /v2/stocks/{SYM}/{bars,quotes,trades}/latest  {symbol, bar|quote|trade: obj}  (no data: 404)
    GET /v2/stocks/snapshots                       {SYM: snapshot | null}
    GET /v2/stocks/{SYM}/snapshot                  {symbol, latestTrade, latestQuote, minuteBar,
                                                    dailyBar, prevDailyBar}     (no data: 404)

Only bars CLOSED on the virtual clock count (``t + 1 min <= now``). The one quote and one trade
per minute bar are those of :func:`.data_api.derived`; a snapshot's ``dailyBar`` is today's (New
York) minute bars so far, aggregated; ``prevDailyBar`` the previous recorded day's. Requests run
through the REST middleware of :mod:`.trading_api` (auth: 403 here, rate limit, 4xx bodies).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from . import data_api, params, payloads
from .data_api import BarStore, aggregate
from .order_forms import not_found

KINDS = ("bars", "quotes", "trades")
_ONE = {"bars": "bar", "quotes": "quote", "trades": "trade"}
_TICK = timedelta(microseconds=1)


def _json(body: Any) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


def _day_start(when: datetime) -> datetime:
    local = when.astimezone(payloads.NEW_YORK)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _daily(store: BarStore, symbol: str, start: datetime, end: datetime | None, now: datetime) -> dict[str, Any] | None:
    days = aggregate(store.window(symbol, start, end, now), "day")
    if not days:
        return None
    label, bar = days[-1]
    return payloads.rest_bar(bar, label)


def snapshot(store: BarStore, symbol: str, now: datetime) -> dict[str, Any] | None:
    """Alpaca's snapshot of ``symbol`` at ``now``; None before its first bar closed."""
    window = store.window(symbol, None, None, now)
    if not window:
        return None
    ts, bar = window[-1]
    today = _day_start(ts)
    before = store.window(symbol, None, today - _TICK, now)
    previous = _daily(store, symbol, _day_start(before[-1][0]), today - _TICK, now) if before else None
    return {
        "latestTrade": data_api.derived("trades", store, symbol, ts, bar),
        "latestQuote": data_api.derived("quotes", store, symbol, ts, bar),
        "minuteBar": data_api.derived("bars", store, symbol, ts, bar),
        "dailyBar": _daily(store, symbol, today, None, now),
        "prevDailyBar": previous,
    }


class MarketDataApi:
    """The ``/v2/stocks`` handlers over the venue context of :mod:`.trading_api`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v2/stocks/snapshots", self.snapshots)
        for kind in KINDS:
            r.add_get(f"/v2/stocks/{kind}", self._series(kind))
            r.add_get(f"/v2/stocks/{kind}/latest", self._latest(kind))
        for kind in KINDS:
            r.add_get(f"/v2/stocks/{{symbol}}/{kind}", self._symbol_series(kind))
            r.add_get(f"/v2/stocks/{{symbol}}/{kind}/latest", self._symbol_latest(kind))
        r.add_get("/v2/stocks/{symbol}/snapshot", self.symbol_snapshot)

    def _series(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return _json(data_api.bars_response(self.ctx.bars, request.query, self.ctx.now(), kind=kind))
        return handler

    def _symbol_series(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            symbol = request.match_info["symbol"].upper()
            body = data_api.bars_response(self.ctx.bars, request.query, self.ctx.now(), [symbol], kind=kind)
            return _json({kind: body[kind].get(symbol, []), "symbol": symbol,
                          "next_page_token": body["next_page_token"]})
        return handler

    def _latest(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            symbols = params.symbols(request.query)
            params.choice(request.query, "feed", "iex", data_api.FEEDS)
            return _json(data_api.latest_response(self.ctx.bars, kind, symbols, self.ctx.now()))
        return handler

    def _symbol_latest(self, kind: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            symbol = request.match_info["symbol"].upper()
            params.choice(request.query, "feed", "iex", data_api.FEEDS)
            found = data_api.latest(self.ctx.bars, kind, symbol, self.ctx.now())
            if found is None:
                raise not_found(f"no {_ONE[kind]} found for {symbol} (no recorded bar has closed yet)")
            return _json({"symbol": symbol, _ONE[kind]: found})
        return handler

    async def snapshots(self, request: web.Request) -> web.Response:
        symbols = params.symbols(request.query)
        params.choice(request.query, "feed", "iex", data_api.FEEDS)
        return _json({s: snapshot(self.ctx.bars, s, self.ctx.now()) for s in symbols})

    async def symbol_snapshot(self, request: web.Request) -> web.Response:
        symbol = request.match_info["symbol"].upper()
        params.choice(request.query, "feed", "iex", data_api.FEEDS)
        found = snapshot(self.ctx.bars, symbol, self.ctx.now())
        if found is None:
            raise not_found(f"no snapshot for {symbol} (no recorded bar has closed yet)")
        return _json({"symbol": symbol, **found})
