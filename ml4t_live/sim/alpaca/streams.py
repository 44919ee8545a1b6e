"""The two websockets: ``/stream`` (trade_updates, JSON) and ``/v2/{feed}`` (market data, msgpack).

Both hubs live on the venue's loop. Outgoing trade updates go through one queue and one sender
task so that a delayed update delays the ones behind it (order is kept, as on the real stream).
Market data is sent to each authenticated socket that subscribed to the symbol (or ``*``).

Handshakes follow alpaca-py 0.44.0 (see the reference note §5, §6): the trade stream expects
``authenticate`` then ``listen`` and answers in binary frames carrying JSON; the data stream greets
with ``[{"T":"success","msg":"connected"}]`` first, answers msgpack when the client sent
``Content-Type: application/msgpack`` (alpaca-py always does) and JSON text otherwise, and accepts
one authenticated connection per key (406 ``connection limit exceeded`` beyond it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from aiohttp import WSMsgType, web
from loguru import logger

from .faults import FaultState
from .payloads import pack, ts_utc

_log = logger.bind(component="sim.alpaca.streams")
AUTH_TIMEOUT = 10.0
DATA_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")

Credentials = Callable[[str, str], bool]


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    muted: bool = False
    msgpack: bool = True
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in DATA_CHANNELS})

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subs.get(channel, set())
        return symbol in chosen or "*" in chosen


class TradeUpdatesHub:
    """``/stream``: authenticate, listen to trade_updates, receive order events."""

    def __init__(self, credentials: Credentials, faults: FaultState,
                 spawn: Callable[[Awaitable[Any], str], Any], notify: Callable[[], None]) -> None:
        self._credentials = credentials
        self._notify = notify
        self._faults = faults
        self._spawn = spawn
        self.listeners: list[_Client] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent = 0
        self.published = 0
        self.connections = 0
        self.delaying = False  # the sender is holding an update back (delay_trade_updates)

    def start(self) -> None:
        self._spawn(self._sender(), "trade-updates-sender")

    def publish(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._queue.put_nowait(message)
            self.published += 1

    def pending(self) -> int:
        return self._queue.qsize()

    def flushed(self, upto: int) -> bool:
        """True once the first ``upto`` published updates left (or a delay fault holds them)."""
        return self.sent >= upto or self.delaying

    async def _sender(self) -> None:
        while True:
            message = await self._queue.get()
            delay = self._faults.take_delay()
            if delay > 0:
                self.delaying = True
                self._notify()
                try:
                    await asyncio.sleep(delay)
                finally:
                    self.delaying = False
            frame = json.dumps(message).encode()
            copies = 2 if self._faults.take_duplicate() else 1
            for _ in range(copies):
                for client in list(self.listeners):
                    if not client.muted and not client.ws.closed:
                        await _send_safely(client.ws, frame, binary=True)
            self.sent += 1
            self._notify()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        client = _Client(ws, msgpack=False)
        try:
            first = await _receive_json(ws, AUTH_TIMEOUT)
            data = (first or {}).get("data") or {}
            if (first or {}).get("action") not in ("authenticate", "auth") or not self._credentials(
                str(data.get("key_id", "")), str(data.get("secret_key", ""))
            ):
                await _send_safely(ws, json.dumps({"stream": "authorization", "data": {
                    "action": "authenticate", "status": "unauthorized",
                    "message": "access key verification failed"}}).encode(), binary=True)
                _log.info("trade_updates: authentication refused")
                return ws
            await _send_safely(ws, json.dumps({"stream": "authorization", "data": {
                "action": "authenticate", "status": "authorized"}}).encode(), binary=True)
            while not ws.closed:
                message = await _receive_json(ws, None)
                if message is None:
                    break
                if message.get("action") == "listen":
                    asked = (message.get("data") or {}).get("streams", [])
                    streams = [s for s in asked if s == "trade_updates"] if isinstance(asked, list) else []
                    await _send_safely(ws, json.dumps({"stream": "listening", "data": {"streams": streams}})
                                       .encode(), binary=True)
                    if streams and client not in self.listeners:
                        self.listeners.append(client)
                    elif not streams and client in self.listeners:
                        self.listeners.remove(client)
                    self._notify()
        finally:
            if client in self.listeners:
                self.listeners.remove(client)
            self._notify()
            await ws.close()
        return ws

    async def drop(self) -> int:
        clients = list(self.listeners)
        for client in clients:
            await client.ws.close(code=1011, message=b"simulated disconnect")
        return len(clients)

    def silence(self) -> list[_Client]:
        for client in self.listeners:
            client.muted = True
        return list(self.listeners)


class MarketDataHub:
    """``/v2/{feed}``: connected -> auth -> subscribe; bars / quotes / trades pushed as they happen."""

    def __init__(self, credentials: Credentials, feed: str, notify: Callable[[], None],
                 connection_limit: int = 1) -> None:
        self._credentials = credentials
        self._notify = notify
        self.feed = feed
        self.connection_limit = connection_limit
        self.clients: list[_Client] = []
        self.connections = 0
        self.bars_sent = 0
        self.refusing = False  # the refuse_data_stream fault: upgrades answered 503
        self.refused = 0

    def subscribed(self, channel: str = "bars") -> int:
        return sum(1 for c in self.clients if c.subs[channel])

    def refuse(self, seconds: float | None) -> None:
        """Answer new connections 503 (no upgrade) for ``seconds`` (None: for good)."""
        self.refusing = True
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, self._accept_again)

    def _accept_again(self) -> None:
        self.refusing = False
        self._notify()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            self.refused += 1
            self._notify()
            return web.Response(status=503, text="simulated: the market-data stream is unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        use_msgpack = "msgpack" in request.headers.get("Content-Type", "")
        client = _Client(ws, msgpack=use_msgpack)
        feed = request.match_info.get("feed", self.feed)
        try:
            await self._send(client, [{"T": "success", "msg": "connected"}])
            if feed not in ("iex", "sip", "delayed_sip", "test"):
                await self._send(client, [{"T": "error", "code": 409, "msg": "insufficient subscription"}])
                return ws
            auth = await self._receive(client, AUTH_TIMEOUT)
            if auth is None:
                await self._send(client, [{"T": "error", "code": 404, "msg": "auth timeout"}])
                return ws
            if auth.get("action") != "auth" or not self._credentials(str(auth.get("key", "")),
                                                                      str(auth.get("secret", ""))):
                await self._send(client, [{"T": "error", "code": 402, "msg": "auth failed"}])
                return ws
            if len(self.clients) >= self.connection_limit:
                await self._send(client, [{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
                return ws
            await self._send(client, [{"T": "success", "msg": "authenticated"}])
            self.clients.append(client)
            self._notify()
            while not ws.closed:
                message = await self._receive(client, None)
                if message is None:
                    break
                await self._on_action(client, message)
        finally:
            if client in self.clients:
                self.clients.remove(client)
            self._notify()
            await ws.close()
        return ws

    async def _on_action(self, client: _Client, message: dict[str, Any]) -> None:
        action = message.get("action")
        lists = all(isinstance(message.get(c, []), list) for c in DATA_CHANNELS)
        if action not in ("subscribe", "unsubscribe") or not lists:  # e.g. "bars": "AAPL" (not a list)
            await self._send(client, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return
        for channel in DATA_CHANNELS:
            symbols = message.get(channel) or []
            if action == "subscribe":
                client.subs[channel].update(str(s) for s in symbols)
            else:
                client.subs[channel].difference_update(str(s) for s in symbols)
        ack: dict[str, Any] = {"T": "subscription"}
        ack.update({c: sorted(client.subs[c]) for c in DATA_CHANNELS})
        ack.update({"corrections": sorted(client.subs["trades"]), "cancelErrors": sorted(client.subs["trades"])})
        await self._send(client, [ack])
        self._notify()

    async def publish(self, channel: str, items: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Send ``(symbol, message)`` items on ``channel``; returns perf_counter_ns per send."""
        stamps: list[int] = []
        for client in list(self.clients):
            if client.muted or client.ws.closed:
                continue
            chosen = [m for s, m in items if client.wants(channel, s)]
            if chosen:
                await self._send(client, chosen)
                stamps.append(time.perf_counter_ns())
        if channel == "bars":
            self.bars_sent += len(items)
        return stamps

    async def drop(self) -> int:
        clients = list(self.clients)
        for client in clients:
            await client.ws.close(code=1011, message=b"simulated disconnect")
        return len(clients)

    def silence(self) -> list[_Client]:
        for client in self.clients:
            client.muted = True
        return list(self.clients)

    async def _send(self, client: _Client, messages: list[dict[str, Any]]) -> None:
        if client.msgpack:
            await _send_safely(client.ws, pack(messages), binary=True)
        else:
            await _send_safely(client.ws, json.dumps([_jsonable(m) for m in messages]).encode(), binary=False)

    async def _receive(self, client: _Client, timeout: float | None) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                msg = await client.ws.receive()
        except TimeoutError:
            return None
        if msg.type == WSMsgType.BINARY:
            decoded = msgpack.unpackb(msg.data)
        elif msg.type == WSMsgType.TEXT:
            decoded = json.loads(msg.data)
        else:
            return None
        return decoded if isinstance(decoded, dict) else {}


def _jsonable(message: dict[str, Any]) -> dict[str, Any]:
    return {k: (ts_utc(v.to_datetime()) if isinstance(v, msgpack.Timestamp) else v) for k, v in message.items()}


async def _receive_json(ws: web.WebSocketResponse, timeout: float | None) -> dict[str, Any] | None:
    try:
        async with asyncio.timeout(timeout):
            msg = await ws.receive()
    except TimeoutError:
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        decoded = json.loads(msg.data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


async def _send_safely(ws: web.WebSocketResponse, payload: bytes, *, binary: bool) -> None:
    """Send, treating a socket that closed meanwhile as gone (its handler cleans up)."""
    if ws.closed:
        return
    try:
        if binary:
            await ws.send_bytes(payload)
        else:
            await ws.send_str(payload.decode())
    except (ConnectionResetError, RuntimeError) as exc:
        _log.debug("send on a closing socket skipped: {!r}", exc)
