"""Trading REST (``/v2/...``) as aiohttp handlers, and the middleware every REST route passes
(market data too: :mod:`.market_data`).

Every request passes, in order: the fault gate (scripted 429 storm), authentication
(``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` or HTTP basic; 401 trading / 403 data, with
Alpaca-style bodies), the token bucket (429 + ``X-RateLimit-*``; those headers are on every
response). Handlers run on the venue loop; they never block.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any, Protocol

from aiohttp import web
from loguru import logger

from ...logs import log_failure
from . import activities, data_api, params, payloads, wire_faults
from .faults import RESET, FaultState
from .order_forms import AlpacaError, bad_request, not_found, parse_order, parse_replace
from .ratelimit import TokenBucket
from .records import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    AlpacaOrder,
    before_last_fill,
    before_replace,
)
from .venue import AlpacaVenue

_log = logger.bind(component="sim.alpaca.rest")


class VenueContext(Protocol):
    """What the handlers need from the server (implemented by ``server._Core``)."""

    venue: AlpacaVenue
    faults: FaultState
    bucket: TokenBucket
    bars: data_api.BarStore

    def now(self) -> Any: ...
    def clock_body(self) -> dict[str, Any]: ...
    def calendar_body(self, start: str | None, end: str | None) -> list[dict[str, Any]]: ...
    def credentials_ok(self, key_id: str, secret: str) -> bool: ...
    def publish(self, messages: list[dict[str, Any]]) -> None: ...
    def order_received(self, order: AlpacaOrder, received_ns: int) -> None: ...
    async def caught_up(self) -> None: ...
    async def before_order(self) -> None: ...


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _error(exc: AlpacaError) -> web.Response:
    return _json(exc.body(), exc.status)


def _truthy(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def _make_middleware(ctx: VenueContext) -> Any:
    @web.middleware
    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in ("/stream", "/stream/") or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        data = request.path.startswith("/v2/stocks")
        if not _authorised(ctx, request):
            exc = (AlpacaError(403, 40310000, "forbidden") if data
                   else AlpacaError(401, 40110000, "request is not authorized"))
            response = _error(exc)
        elif ctx.faults.take_rate_limit() or not ctx.bucket.take():
            response = _json({"code": 42910000, "message": "rate limit exceeded"}, 429)
        else:
            try:
                response = await handler(request)
            except AlpacaError as exc:
                response = _error(exc)
            except web.HTTPException as exc:
                response = _json({"code": exc.status * 100000, "message": exc.reason.lower()}, exc.status)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # a venue bug: say so, keep serving
                log_failure(_log, exc, "{} {} failed inside the simulated venue", request.method, request.path)
                response = _json({"code": 50010000, "message": f"internal server error: {exc}"}, 500)
        response.headers.update(ctx.bucket.headers())
        return response

    return gate


def _authorised(ctx: VenueContext, request: web.Request) -> bool:
    key = request.headers.get("APCA-API-KEY-ID")
    secret = request.headers.get("APCA-API-SECRET-KEY")
    auth = request.headers.get("Authorization", "")
    if key is None and auth.startswith("Basic "):
        try:
            key, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return False
    return key is not None and secret is not None and ctx.credentials_ok(key, secret)


class TradingApi:
    """The REST handlers over one :class:`VenueContext`."""

    def __init__(self, ctx: VenueContext) -> None:
        self.ctx = ctx

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(_make_middleware(self.ctx))
        r = app.router
        r.add_get("/v2/account", self.account)
        r.add_get("/v2/account/configurations", self.account_configurations)
        r.add_get("/v2/account/activities", self.activities)
        r.add_get("/v2/account/activities/{activity_type}", self.activities)
        r.add_get("/v2/positions", self.positions)
        r.add_delete("/v2/positions", self.close_all_positions)
        r.add_get("/v2/positions/{symbol}", self.position)
        r.add_delete("/v2/positions/{symbol}", self.close_position)
        r.add_post("/v2/orders", self.submit)
        r.add_get("/v2/orders", self.list_orders)
        r.add_delete("/v2/orders", self.cancel_all)
        r.add_get("/v2/orders:by_client_order_id", self.order_by_client_id)
        r.add_get("/v2/orders/{order_id}", self.order)
        r.add_patch("/v2/orders/{order_id}", self.replace)
        r.add_delete("/v2/orders/{order_id}", self.cancel)
        r.add_get("/v2/clock", self.clock)
        r.add_get("/v2/calendar", self.calendar)
        r.add_get("/v2/assets", self.assets)
        r.add_get("/v2/assets/{symbol}", self.asset)

    # ------------------------------------------------------------------ account
    async def account(self, request: web.Request) -> web.Response:
        v = self.ctx.venue
        long_value = short_value = 0.0
        for symbol, (qty, avg) in v.positions().items():
            value = qty * (v.price(symbol) or avg)
            long_value += max(value, 0.0)
            short_value += min(value, 0.0)
        return _json(payloads.account_json(cash=v.exchange.cash, equity=v.exchange.equity, long_value=long_value,
                                           short_value=short_value, last_equity=v.last_equity,
                                           created_at=v.created_at, standing=v.standing))

    async def account_configurations(self, request: web.Request) -> web.Response:
        return _json(payloads.account_configuration_json(fractional=self.ctx.venue.fractional))

    async def activities(self, request: web.Request) -> web.Response:
        errors = self.ctx.venue.activity_errors
        if errors:
            status = errors.pop(0)
            _log.info("fault: answering an account activities listing with {}", status)
            return _json({"code": status * 100000, "message": "service unavailable"}, status)
        types = activities.wanted_types(request.match_info.get("activity_type"), request.query)
        return _json(activities.list_activities(self.ctx.venue.fills, types, request.query))

    # ------------------------------------------------------------------ positions
    def _position_body(self, symbol: str, qty: float, avg: float) -> dict[str, Any]:
        v = self.ctx.venue
        return payloads.position_json(symbol, qty, avg, v.price(symbol) or avg, v.prev_session_close.get(symbol))

    def _find_position(self, key: str) -> tuple[str, float, float]:
        for symbol, (qty, avg) in self.ctx.venue.positions().items():
            if key.upper() == symbol or key == payloads.asset_id_for(symbol):
                return symbol, qty, avg
        raise not_found("position does not exist")

    async def positions(self, request: web.Request) -> web.Response:
        items = sorted(self.ctx.venue.positions().items())
        return _json([self._position_body(s, q, a) for s, (q, a) in items])

    async def position(self, request: web.Request) -> web.Response:
        return _json(self._position_body(*self._find_position(request.match_info["symbol"])))

    def _close(self, symbol: str, qty: float, portion: float | None) -> AlpacaOrder:
        amount = abs(qty) if portion is None else min(abs(qty), portion)
        form = parse_order({"symbol": symbol, "qty": amount, "side": "sell" if qty > 0 else "buy",
                            "type": "market", "time_in_force": "day"})
        order, messages = self.ctx.venue.submit(form)
        self.ctx.order_received(order, order.received_ns)
        self.ctx.publish(messages)
        return order

    async def close_position(self, request: web.Request) -> web.Response:
        symbol, qty, _avg = self._find_position(request.match_info["symbol"])
        q = request.query
        portion = params.number(q, "qty")
        percentage = params.number(q, "percentage")
        if portion is not None and percentage is not None:
            raise AlpacaError(422, 42210000, "only one of qty or percentage may be specified")
        if percentage is not None:
            if percentage > 100:
                raise AlpacaError(422, 42210000, f"percentage must be <= 100, got {percentage:g}")
            portion = abs(qty) * percentage / 100.0
        order = self._close(symbol, qty, portion)
        return _json(payloads.order_json(order))

    async def close_all_positions(self, request: web.Request) -> web.Response:
        if _truthy(request.query.get("cancel_orders")):
            _results, messages = self.ctx.venue.cancel_all()
            self.ctx.publish(messages)
        out = []
        for symbol, (qty, _avg) in sorted(self.ctx.venue.positions().items()):
            try:
                out.append({"symbol": symbol, "status": 200, "body": payloads.order_json(self._close(symbol, qty, None))})
            except AlpacaError as exc:
                out.append({"symbol": symbol, "status": exc.status, "body": exc.body()})
        return _json(out, 207)

    # ------------------------------------------------------------------ orders
    async def submit(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter_ns()
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("request body format is invalid") from None
        form = parse_order(body)
        await self.ctx.before_order()
        fault = self.ctx.faults.take_submit_fault()
        if fault is not None and not fault.accepted:  # the venue never takes the order
            return await wire_faults.answer(request, fault, None)
        order, messages = self.ctx.venue.submit(form, received)
        self.ctx.order_received(order, received)
        self.ctx.publish(messages)
        answer = payloads.order_json(order, self.ctx.venue.legs_of(order) or None)
        if fault is not None:  # ambiguous outcome: accepted, but the answer is lost or garbled
            return await wire_faults.answer(request, fault, answer)
        return _json(answer)

    def _order_body(self, order: AlpacaOrder) -> dict[str, Any]:
        return payloads.order_json(order, self.ctx.venue.legs_of(order) or None)

    async def order(self, request: web.Request) -> web.StreamResponse:
        status = self.ctx.faults.take_read_error(request.match_info["order_id"])
        if status == RESET:
            _log.info("fault: answering GET of order {} with a TCP reset", request.match_info["order_id"])
            return wire_faults.reset(request)
        if status is not None:
            _log.info("fault: answering GET of order {} with {}", request.match_info["order_id"], status)
            if status == 404:  # (an order the venue does not show by id yet)
                raise not_found()
            return _json({"code": status * 100000, "message": "service unavailable"}, status)
        order = self.ctx.venue.get(request.match_info["order_id"])
        if self.ctx.faults.take_stale_read():
            _log.info("fault: GET of {} answered as before its last fill (stale_order_read)", order.id)
            order = before_last_fill(order, self.ctx.venue.fills)
        if order.status == "replaced" and self.ctx.faults.take_stale_replaced_read():
            _log.info("fault: GET of {} answered as before its replace (stale_replaced_read)", order.id)
            order = before_replace(order)
        order = self._late_replaced_by(order)
        if order.id in self.ctx.venue.stale_old and order.status == "pending_replace":
            _log.info("fault: GET of {} answered as before its PATCH (slow_replace stale_old)", order.id)
            order = before_replace(order)
        nested = _truthy(request.query.get("nested"))  # legs only when asked, as Alpaca documents
        return _json(payloads.order_json(order, (self.ctx.venue.legs_of(order) or None) if nested else None))

    async def order_by_client_id(self, request: web.Request) -> web.Response:
        client_id = request.query.get("client_order_id")
        if not client_id:
            raise bad_request("client_order_id is required")
        status = self.ctx.faults.take_lookup_error()
        if status is not None:
            _log.info("fault: answering a lookup by client order id with {}", status)
            return _json({"code": status * 100000, "message": "service unavailable"}, status)
        order = self.ctx.venue.by_client_id(client_id)
        lag_fill, lag_replace = self.ctx.faults.take_stale_client_id_read()
        if lag_fill:
            _log.info("fault: lookup of {} answered as before its last fill (stale_client_id_read)", client_id)
            order = before_last_fill(order, self.ctx.venue.fills)
        if lag_replace and order.status == "replaced":
            _log.info("fault: lookup of {} answered as before its replace (stale_client_id_read)", client_id)
            order = before_replace(order)
        return _json(self._order_body(self._late_replaced_by(order)))

    def _late_replaced_by(self, order: AlpacaOrder) -> AlpacaOrder:
        """``order`` as a GET answers it: without ``replaced_by`` while ``replaced_by_late`` lasts."""
        if order.status == "replaced" and self.ctx.faults.take_late_replaced_by():
            _log.info("fault: GET of {} answered replaced without replaced_by (replaced_by_late)", order.id)
            return replace(order, replaced_by=None)
        return order

    async def list_orders(self, request: web.Request) -> web.Response:
        status = self.ctx.faults.take_listing_error()
        if status is not None:
            _log.info("fault: answering a listing of orders with {}", status)
            return _json({"code": status * 100000, "message": "service unavailable"}, status)
        q = request.query
        status = params.choice(q, "status", "open", ("open", "closed", "all"))
        wanted = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES}.get(status)
        limit = params.integer(q, "limit", 50, high=500)
        after = data_api.parse_time(q.get("after"), "after")
        until = data_api.parse_time(q.get("until"), "until")
        nested = _truthy(q.get("nested"))
        symbols = set(params.symbols(q, required=False))
        side = params.choice(q, "side", "", ("buy", "sell"))
        descending = params.choice(q, "direction", "desc", ("asc", "desc")) == "desc"
        stale = self.ctx.faults.take_stale_listing()
        if stale:
            _log.info("fault: listing the orders with the replaced ones as before their replace (stale_listing)")
        chosen = []
        for order in self.ctx.venue.orders.values():
            if stale and order.status == "replaced":
                order = before_replace(order)
            if nested and order.parent_id is not None:
                continue
            if wanted is not None and order.status not in wanted:
                continue
            submitted = data_api._utc(order.created_at)
            if (after and submitted <= after) or (until and submitted >= until):
                continue
            if (symbols and order.symbol not in symbols) or (side and order.side != side):
                continue
            chosen.append(order)
        chosen.sort(key=lambda o: (o.created_at, o.seq), reverse=descending)
        return _json([payloads.order_json(o, (self.ctx.venue.legs_of(o) or None) if nested else None)
                      for o in chosen[:limit]])

    async def replace(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("request body format is invalid") from None
        form = parse_replace(body)
        if self.ctx.faults.take_replace_step():
            _log.info("fault: the replace of {} waits for the replay to move on one bar (step_before_replace)",
                      request.match_info["order_id"])  # fmt: skip
            await self.ctx.move_on()  # the next bar's open meets the order before it is replaced
        order_id = request.match_info["order_id"]
        slow = self.ctx.faults.take_slow_replace() if self.ctx.venue.replaceable(order_id) else None
        bars, fail, stale = slow if slow is not None else (None, False, False)
        if bars is not None:
            _log.info("fault: the replace of {} is answered and left pending_replace for {} bar(s){}{} (slow_replace)",
                      order_id, bars, ", then fails" if fail else "",
                      ", its GET showing it as before the PATCH" if stale else "")  # fmt: skip
        error = self.ctx.faults.take_change_error("replace_error")
        if error is not None and not error[1]:
            _log.info("fault: the replace of {} is answered {}, not carried out (replace_error)", order_id, error[0])
            return _json({"code": error[0] * 100000, "message": "service unavailable"}, error[0])
        new, messages = self.ctx.venue.replace(order_id, form, after_bars=bars, fail=fail, stale_old=stale)
        self.ctx.publish(messages)
        if error is not None:
            _log.info("fault: the replace of {} is carried out and answered {} (replace_error)", order_id, error[0])
            return _json({"code": error[0] * 100000, "message": "service unavailable"}, error[0])
        return _json(self._order_body(new))

    async def cancel(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        taken = self.ctx.faults.take_lost_cancel() if self.ctx.venue.cancelable(order_id) else None
        lose, bars, step = taken or (False, None, False)
        if lose:
            _log.info("fault: the cancel of {} is answered 204 and left pending_cancel (lose_cancel{}{})", order_id,
                      "" if bars is None else f", carried out {bars} bar(s) later",
                      ", the replay moved on one bar first" if step else "")  # fmt: skip
        error = self.ctx.faults.take_change_error("cancel_error")
        if error is not None and not error[1]:
            _log.info("fault: the cancel of {} is answered {}, not carried out (cancel_error)", order_id, error[0])
            return _json({"code": error[0] * 100000, "message": "service unavailable"}, error[0])
        self.ctx.publish(self.ctx.venue.cancel(order_id, lose=lose, carry_out_after=bars))
        if step:
            await self.ctx.move_on()  # the next bar's open meets the order, its cancel pending
        if error is not None:
            _log.info("fault: the cancel of {} is carried out and answered {} (cancel_error)", order_id, error[0])
            return _json({"code": error[0] * 100000, "message": "service unavailable"}, error[0])
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        results, messages = self.ctx.venue.cancel_all()
        self.ctx.publish(messages)
        return _json(results, 207)

    # ------------------------------------------------------------------ clock / calendar / assets
    async def clock(self, request: web.Request) -> web.Response:
        body = self.ctx.clock_body()
        await self.ctx.caught_up()  # step mode: the client has placed this bar's orders
        return _json(body)

    async def calendar(self, request: web.Request) -> web.Response:
        return _json(self.ctx.calendar_body(request.query.get("start"), request.query.get("end")))

    async def assets(self, request: web.Request) -> web.Response:
        q = request.query
        asset_class = params.choice(q, "asset_class", "us_equity", ("us_equity", "us_option", "crypto", "crypto_perp"))
        if asset_class != "us_equity" or params.choice(q, "status", "active", ("active", "inactive")) != "active":
            return _json([])  # the simulated venue lists active US equities only
        return _json([payloads.asset_json(s) for s in sorted(self.ctx.venue.symbols)])

    async def asset(self, request: web.Request) -> web.Response:
        key = request.match_info["symbol"]
        for symbol in self.ctx.venue.symbols:
            if key.upper() == symbol or key == payloads.asset_id_for(symbol):
                return _json(payloads.asset_json(symbol))
        raise not_found(f"asset not found for {key}")
