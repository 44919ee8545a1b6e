"""Request handlers: one decoded request in, the gateway's answers out (on the loop thread)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loguru import logger

from . import decoders as d
from . import encoders as enc
from .account import account_values, summary_rows
from .framing import FramingError
from .market_data import (
    BarSizeError,
    aggregate,
    as_utc,
    bar_size_seconds,
    duration_seconds,
    in_regular_hours,
    split_bar,
)
from .other_requests import OtherRequests
from .request_log import RequestLog
from .ticks import HISTORICAL_KINDS, TICK_TYPES, historical_ticks

if TYPE_CHECKING:
    from .replay import Replay
    from .server import ClientConnection, IBServer
    from .venue import IBVenue

_log = logger.bind(component="sim.ib.handlers")


class Dispatcher:
    """Routes each request of each connection; owns no state beyond the pacing counter."""

    def __init__(self, server: IBServer, venue: IBVenue, replay: Replay) -> None:
        self.server, self.venue, self.replay = server, venue, replay
        self.pacing_violations = 0
        self.unanswered_completed_orders = 0  # the next reqCompletedOrders get no answer
        self.slow_completed_orders: list[float] = []  # the next reqCompletedOrders answered late (s)
        # list ('openOrders', 'completedOrders', 'executions') -> delays (s) of its next answers, each
        # read when the request arrives and sent that much later (fault ``stale_order_list``)
        self.stale_lists: dict[str, list[float]] = {}
        self.requests = RequestLog()
        self._rollbacks: dict[int | None, int] = {}  # client id (None: any) -> next nextValidId
        self.unsupported: list[int] = []  # message ids answered with an error, not data
        initial = venue.exchange.equity
        self.others = OtherRequests(venue, lambda: initial)
        server.on_request = self.on_request
        server.on_disconnect = self.on_disconnect
        server.next_order_id = self.next_order_id

    # ------------------------------------------------------------------ entry point
    def on_request(self, conn: ClientConnection, fields: list[str]) -> None:
        try:
            req = d.decode_request(fields, conn.version)
        except FramingError as exc:
            _log.warning("client {}: {}", conn.client_id, exc)
            return
        if isinstance(req, d.StartApi):
            if self.server.start_api(conn, req.client_id):
                self.replay.client_connected()
            return
        if conn.client_id is None:
            _log.warning("request {} before startApi; ignored", fields[0])
            return
        self.requests.add(req.kind if isinstance(req, d.Simple) else type(req).__name__)
        handler = getattr(self, "_" + type(req).__name__, None)
        if handler is None:
            how = self.others.answer(conn, int(fields[0]), fields)
            if how == "error":
                self.unsupported.append(int(fields[0]))
                _log.info("client {}: message id {} answered as not supported", conn.client_id, fields[0])
            return
        handler(conn, req)

    def on_disconnect(self, conn: ClientConnection) -> None:
        self.replay.subscriptions_changed()

    def next_order_id(self, client_id: int) -> int:
        """The nextValidId for a handshake or reqIds: above every id the client used, unless a
        ``rollback_next_valid_id`` fault makes it forget (as a restarted gateway does)."""
        for key in (client_id, None):
            if key in self._rollbacks:
                return self._rollbacks.pop(key)
        used = [k[1] for k in self.venue.orders if k[0] == client_id]
        used += [c[1] for c in self.venue.request_faults.swallowed if c[0] == client_id]
        return max(used, default=0) + 1

    def rollback_next_valid_id(self, to: int, client_id: int | None) -> None:
        self._rollbacks[client_id] = to

    # ------------------------------------------------------------------ orders
    def _PlaceOrder(self, conn: ClientConnection, req: d.PlaceOrder) -> None:
        assert conn.client_id is not None
        self.venue.place(conn.client_id, req)

    def _CancelOrder(self, conn: ClientConnection, req: d.CancelOrder) -> None:
        assert conn.client_id is not None
        self.venue.cancel(conn.client_id, req.order_id)

    def _ReqIds(self, conn: ClientConnection, req: d.ReqIds) -> None:
        assert conn.client_id is not None
        conn.write([enc.next_valid_id(self.next_order_id(conn.client_id))])

    def _open_orders(self, conn: ClientConnection, client_id: int | None) -> None:
        frames = []
        for view in self.venue.open_orders(client_id):
            frames += [enc.open_order(view), enc.order_status(view)]
        frames.append(enc.open_order_end())
        self._send_list(conn, "openOrders", frames)

    def _send_list(self, conn: ClientConnection, name: str, frames: list[bytes]) -> None:
        """Send a list's answer now, or (fault ``stale_order_list``) as read now, later."""
        delays = self.stale_lists.get(name)
        if not delays:
            conn.write(frames)
            return
        seconds = delays.pop(0)
        _log.info("{} of client {}: the list as of now goes out {:g}s late (fault)", name, conn.client_id, seconds)
        asyncio.get_running_loop().call_later(seconds, conn.write, frames)

    def _ReqCompletedOrders(self, conn: ClientConnection, req: d.ReqCompletedOrders) -> None:
        if self.unanswered_completed_orders > 0:  # fault: never answered
            self.unanswered_completed_orders -= 1
            _log.info("reqCompletedOrders of client {} left unanswered (fault)", conn.client_id)
            return
        if self.slow_completed_orders:  # fault: answered later (what is completed then)
            seconds = self.slow_completed_orders.pop(0)
            _log.info("reqCompletedOrders of client {} answered {:g}s late (fault)", conn.client_id, seconds)
            asyncio.get_running_loop().call_later(seconds, self._completed_orders, conn)
            return
        self._completed_orders(conn)

    def _completed_orders(self, conn: ClientConnection) -> None:
        frames = [enc.completed_order(v) for v in self.venue.completed_today()]
        self._send_list(conn, "completedOrders", [*frames, enc.completed_orders_end()])

    def _ReqExecutions(self, conn: ClientConnection, req: d.ReqExecutions) -> None:
        frames = []
        for ex in self.venue.executions_today():
            if _matches(ex, req):
                frames += [enc.exec_details(req.req_id, ex), enc.commission_report(ex)]
        self._send_list(conn, "executions", [*frames, enc.exec_details_end(req.req_id)])

    # ------------------------------------------------------------------ simple requests
    def _Simple(self, conn: ClientConnection, req: d.Simple) -> None:
        kind = req.kind
        if kind == "openOrders":
            self._open_orders(conn, conn.client_id)
        elif kind == "allOpenOrders":
            self._open_orders(conn, None)
        elif kind == "currentTime":
            now = self.replay.now or datetime.now(UTC)
            conn.write([enc.current_time(int(now.timestamp()))])
            self.replay.caught_up()
        elif kind == "positions":
            conn.subs.positions = True
            frames = [enc.position(self.venue.account, i, q, c) for i, q, c in self.venue.positions()]
            conn.write([*frames, enc.position_end()])
        elif kind == "cancelPositions":
            conn.subs.positions = False
        elif kind == "managedAccounts":
            conn.write([enc.managed_accounts([self.venue.account])])
        elif kind == "globalCancel":
            self.venue.cancel_all()

    def _Cancel(self, conn: ClientConnection, req: d.Cancel) -> None:
        if req.kind == "mktData":
            conn.subs.market.pop(req.req_id, None)
        elif req.kind == "realTimeBars":
            conn.subs.realtime.pop(req.req_id, None)
        elif req.kind == "historicalData":
            conn.subs.history.pop(req.req_id, None)
        elif req.kind == "accountSummary":
            conn.subs.summaries.pop(req.req_id, None)
        elif req.kind == "accountUpdatesMulti":
            conn.subs.account_multi.discard(req.req_id)
        elif req.kind == "tickByTick":
            conn.subs.ticks.pop(req.req_id, None)

    # ------------------------------------------------------------------ account
    def account_rows(self) -> list[tuple[str, str, str]]:
        ex = self.venue.exchange
        positions = ex.positions
        prices = {a: p for a in positions if (p := ex.last_price(a)) is not None}
        return account_values(ex.cash, ex.equity, positions, prices, self.venue.account_model)

    def _portfolio_frames(self) -> list[bytes]:
        ex, acct = self.venue.exchange, self.venue.account
        frames = []
        for info, qty, cost in self.venue.positions():
            price = ex.last_price(info.symbol) or cost
            frames.append(enc.portfolio_value(info, qty, price, cost, qty * (price - cost), 0.0, acct))
        return frames

    def _ReqAccountUpdates(self, conn: ClientConnection, req: d.ReqAccountUpdates) -> None:
        conn.subs.account_updates = req.subscribe
        if not req.subscribe:
            return
        acct = self.venue.account
        frames = [enc.account_value(k, v, c, acct) for k, v, c in self.account_rows()]
        frames += self._portfolio_frames()
        frames.append(enc.account_time(self.replay.now or datetime.now(UTC)))
        conn.write([*frames, enc.account_download_end(acct)])

    def _ReqAccountUpdatesMulti(self, conn: ClientConnection, req: d.ReqAccountUpdatesMulti) -> None:
        conn.subs.account_multi.add(req.req_id)
        acct = self.venue.account
        frames = [enc.account_update_multi(req.req_id, acct, k, v, c) for k, v, c in self.account_rows()]
        conn.write([*frames, enc.account_update_multi_end(req.req_id)])

    def _ReqAccountSummary(self, conn: ClientConnection, req: d.ReqAccountSummary) -> None:
        conn.subs.summaries[req.req_id] = req.tags
        acct = self.venue.account
        rows = summary_rows(self.account_rows(), req.tags)
        frames = [enc.account_summary(req.req_id, acct, k, v, c) for k, v, c in rows]
        conn.write([*frames, enc.account_summary_end(req.req_id)])

    def push_account(self) -> None:
        """After fills: position, portfolio and account-value updates to subscribers."""
        acct = self.venue.account
        rows = self.account_rows()
        positions = self.venue.positions()
        held = {i.symbol for i, _, _ in positions}
        flat = [i for i in self.venue.book if i.symbol not in held and i.symbol in self.venue.traded]
        for conn in self.server.clients():
            frames: list[bytes] = []
            if conn.subs.positions:
                frames += [enc.position(acct, i, q, c) for i, q, c in positions]
                frames += [enc.position(acct, i, 0.0, 0.0) for i in flat]
            if conn.subs.account_updates:
                frames += [enc.account_value(k, v, c, acct) for k, v, c in rows]
                frames += self._portfolio_frames()
            for req_id in conn.subs.account_multi:
                frames += [enc.account_update_multi(req_id, acct, k, v, c) for k, v, c in rows]
            frames += self.others.pnl_frames(conn)
            if frames:
                conn.write(frames)

    # ------------------------------------------------------------------ contracts
    def _contract(self, conn: ClientConnection, req: Any) -> Any:
        """The contract a request names, or None once TWS's 200 has answered it."""
        c = req.contract
        info = self.venue.book.resolve(c.con_id, c.symbol, c.sec_type, c.currency, c.exchange)
        if info is None:
            conn.write([enc.error(req.req_id, 200, enc.NO_DEFINITION)])
        return info

    def _ReqContractDetails(self, conn: ClientConnection, req: d.ReqContractDetails) -> None:
        info = self._contract(conn, req)
        if info is None:
            return
        exchange = req.contract.exchange.upper() if req.contract.exchange else "SMART"
        conn.write([enc.contract_details(req.req_id, info, exchange), enc.contract_details_end(req.req_id)])

    # ------------------------------------------------------------------ market data
    def _ReqRealTimeBars(self, conn: ClientConnection, req: d.ReqRealTimeBars) -> None:
        info = self._contract(conn, req)
        if info is None:
            return
        conn.subs.realtime[req.req_id] = info.symbol
        self.replay.subscriptions_changed()

    def _ReqMktData(self, conn: ClientConnection, req: d.ReqMktData) -> None:
        """Quotes derived from the last replayed bar (last = its close, bid/ask one tick off)."""
        info = self._contract(conn, req)
        if info is None:
            return
        frames = [enc.market_data_type(req.req_id)]
        last = self.venue.exchange.last_price(info.symbol)
        if last is not None:
            frames += enc.quote_ticks(req.req_id, last, self.replay.previous_close(info.symbol))
        if req.snapshot:
            frames.append(enc.tick_snapshot_end(req.req_id))
        else:
            conn.subs.market[req.req_id] = info.symbol
        conn.write(frames)

    def _ReqTickByTickData(self, conn: ClientConnection, req: d.ReqTickByTickData) -> None:
        """A tick per 5-second bar from now on (see ticks.py)."""
        info = self._contract(conn, req)
        kind = TICK_TYPES.get(req.tick_type)
        if info is None:
            return
        if kind is None:
            conn.write([enc.error(req.req_id, 10189, f"Failed to request tick-by-tick data:"
                                  f"unknown tick type {req.tick_type!r}")])  # fmt: skip
        else:
            conn.subs.ticks[req.req_id] = (info.symbol, kind)

    def _ReqHistoricalTicks(self, conn: ClientConnection, req: d.ReqHistoricalTicks) -> None:
        info = self._contract(conn, req)
        if info is None:
            return
        try:
            if req.what_to_show not in HISTORICAL_KINDS:
                raise ValueError(f"whatToShow {req.what_to_show!r} is not TRADES, BID_ASK or MIDPOINT")
            start, end = _parse_end(req.start), _parse_end(req.end)
        except ValueError as exc:
            conn.write([enc.error(req.req_id, 162, f"Historical Market Data Service error message:{exc}")])
            return
        now = self.replay.now
        recorded = self.replay.history(info.symbol, now)
        if req.use_rth:
            recorded = [b for b in recorded if in_regular_hours(b.timestamp)]
        subs = [s for b in recorded for s in split_bar(b, self.replay.bar_seconds)]
        end = now if end is None or (now is not None and end > now) else end
        frame = historical_ticks(req.req_id, req.what_to_show, subs, start, end, req.count,
                                 info.primary_exchange)  # fmt: skip
        conn.write([frame])

    def _ReqHeadTimeStamp(self, conn: ClientConnection, req: d.ReqHeadTimeStamp) -> None:
        info = self._contract(conn, req)
        if info is None:
            return
        first = self.replay.first_bar(info.symbol)
        if first is None:
            conn.write([enc.error(req.req_id, 200, enc.NO_DEFINITION)])
            return
        conn.write([enc.head_timestamp(req.req_id, enc.hist_date(as_utc(first), False, req.format_date))])

    def _ReqHistoricalData(self, conn: ClientConnection, req: d.ReqHistoricalData) -> None:
        if self.pacing_violations > 0:
            self.pacing_violations -= 1
            conn.write([enc.error(req.req_id, 162, "Historical Market Data Service error "
                                  "message:Historical data request pacing violation")])  # fmt: skip
            return
        info = self._contract(conn, req)
        if info is None:
            return
        try:
            size = bar_size_seconds(req.bar_size)
            span = duration_seconds(req.duration)
            end = _parse_end(req.end)
        except (BarSizeError, ValueError) as exc:
            # 162 (not 321: ib_async 2.1 treats 321 as a warning and would never end the request)
            conn.write([enc.error(req.req_id, 162, f"Historical Market Data Service error message:{exc}")])
            return
        now = self.replay.now
        end = now if end is None or (now is not None and end > now) else end
        if end is None:
            conn.write([enc.historical_data(req.req_id, "", "", [], size >= 86400, req.format_date)])
            return
        recorded = self.replay.history(info.symbol, end)
        if req.use_rth and size < 86400:
            recorded = [b for b in recorded if in_regular_hours(b.timestamp)]
        start = end - timedelta(seconds=span)
        complete = timedelta(seconds=min(size, 86400))
        bars = [
            b for b in aggregate(recorded, self.replay.bar_seconds, size)
            if b.start >= start and (size >= 86400 or b.start + complete <= end)
        ]  # fmt: skip
        stamps = (_ib_stamp(start), _ib_stamp(end))
        conn.write([enc.historical_data(req.req_id, *stamps, bars, size >= 86400, req.format_date)])
        if req.keep_up_to_date:
            conn.subs.history[req.req_id] = (info.symbol, size, req.format_date)


def _ib_stamp(ts: datetime) -> str:
    return ts.strftime("%Y%m%d %H:%M:%S") + " UTC"


def _parse_end(text: str) -> datetime | None:
    """``""`` (now), ``YYYYMMDD HH:MM:SS UTC`` / ``YYYYMMDD-HH:MM:SS`` (UTC) or
    ``YYYYMMDD HH:MM:SS Area/City`` (that time zone)."""
    text = text.strip()
    if not text:
        return None
    stamp, _, zone = text.replace("-", " ", 1).partition(" ")[2].partition(" ")
    day = text[:8]
    tz = UTC if zone in ("", "UTC", "GMT") else _zone(zone)
    return datetime.strptime(f"{day} {stamp}", "%Y%m%d %H:%M:%S").replace(tzinfo=tz)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _matches(ex: enc.ExecView, f: d.ReqExecutions) -> bool:
    """IB's ExecutionFilter: empty / 0 fields match everything; time is 'YYYYMMDD HH:MM:SS'."""
    if f.client_id and ex.client_id != f.client_id:
        return False
    if f.account and ex.account != f.account:
        return False
    if f.symbol and ex.info.symbol != f.symbol.upper():
        return False
    if f.sec_type and f.sec_type.upper() != "STK":
        return False
    if f.exchange and f.exchange.upper() not in (ex.exchange, "SMART"):
        return False
    if f.side and {"BUY": "BOT", "SELL": "SLD"}.get(f.side.upper(), f.side.upper()) != ex.side:
        return False
    if f.time:
        since = _parse_end(f.time.replace("  ", " "))
        t = ex.time if ex.time.tzinfo else ex.time.replace(tzinfo=UTC)
        if since is not None and t < since:
            return False
    return True
