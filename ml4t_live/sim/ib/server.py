"""The TCP side of the simulated gateway: connections, handshake, client ids, routing.

Threading rule: everything here runs on the gateway's one loop (see ``gateway.py``); no
method is called from another thread. Connections are ``asyncio.Protocol`` objects: each
request is handled synchronously as its frame arrives (``handlers.py``), so there is no task
per connection; delayed messages are ``call_later`` handles the server keeps and cancels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from ...logs import log_failure
from . import encoders as enc
from .framing import (
    HANDSHAKE_PREFIX,
    SERVER_VERSION,
    FrameBuffer,
    FramingError,
    VersionRefused,
    frame_length,
    negotiate_version,
    parse_client_hello,
    server_hello,
)
from .layouts import downgrade

_log = logger.bind(component="sim.ib.server")

FARM_OK = [
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
]
FARM_BROKEN = [
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
    (2157, "Sec-def data farm connection is broken:secdefnj"),
]
REFUSED_VERSION_CODE = 503
REFUSAL_DELAY = 0.2  # s between the handshake reply and the 503 of a refused version


@dataclass(slots=True)
class Subscriptions:
    realtime: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    market: dict[int, str] = field(default_factory=dict)  # streaming reqMktData: reqId -> symbol
    history: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # keepUpToDate
    positions: bool = False
    account_updates: bool = False
    account_multi: set[int] = field(default_factory=set)
    summaries: dict[int, tuple[str, ...]] = field(default_factory=dict)
    pnl: dict[int, int | None] = field(default_factory=dict)  # reqPnL(Single): reqId -> conId
    ticks: dict[int, tuple[str, int]] = field(default_factory=dict)  # tick-by-tick: (symbol, type)


class ClientConnection(asyncio.Protocol):
    """One API client socket."""

    def __init__(self, server: IBServer, number: int) -> None:
        self.server = server
        self.number = number
        self.transport: asyncio.Transport | None = None
        self.client_id: int | None = None
        self.version = 0
        self.subs = Subscriptions()
        self._buf = bytearray()
        self._frames = FrameBuffer()
        self._handshaken = False
        self._held: list[bytes] = []  # bytes that arrived while the gateway was frozen
        self._refused = False

    # asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.server.frozen:
            self._held.append(data)  # read later, as a hung process would
            return
        if self._refused:
            return  # a refused client's startApi and the like: the 503 is on its way
        try:
            if not self._handshaken:
                data = self._handshake(data)
                if not self._handshaken:
                    return
            for fields in self._frames.feed(data):
                if self.transport is None:
                    return
                self.server.on_request(self, fields)
        except FramingError as exc:
            _log.warning("connection {}: {}; closing it", self.number, exc)
            self.close()

    # --------------------------------------------------------------------------------
    def _handshake(self, data: bytes) -> bytes:
        self._buf += data
        if len(self._buf) < 8:
            return b""
        if bytes(self._buf[:4]) != HANDSHAKE_PREFIX:
            raise FramingError(f"expected the 'API\\0' prefix, got {bytes(self._buf[:4])!r}")
        length = frame_length(bytes(self._buf[4:8]))
        if len(self._buf) < 8 + length:
            return b""
        hello = parse_client_hello(bytes(self._buf[8 : 8 + length]))
        rest = bytes(self._buf[8 + length :])
        self._buf.clear()
        try:
            self.version = negotiate_version(hello, self.server.max_version)
        except VersionRefused as exc:
            self.server.refusals.append(str(exc))
            _log.warning("connection {} refused: {}", self.number, exc)
            # Framed as the client's own version: a handshake reply naming its highest version,
            # then error 503 in that version's layout (5 fields below 166), then close. Old
            # clients (ibapi 9.x) cannot decode anything that arrives before a handshake reply.
            # The error goes out a moment later, in its own read: ibapi 9.81 keeps only the
            # first message of the socket read that carries the handshake reply.
            self.version, self._refused = hello.high, True
            self.write([server_hello(hello.high, datetime.now(UTC))])
            refusal = enc.error(-1, REFUSED_VERSION_CODE, str(exc))
            self.server.later(REFUSAL_DELAY, self._refuse, refusal)
            return b""
        self._handshaken = True
        self.write([server_hello(self.version, datetime.now(UTC))])
        return rest

    def _refuse(self, frame: bytes) -> None:
        self.write([frame])
        self.close(graceful=True)

    def resume(self) -> None:
        """The gateway thawed: handle what arrived meanwhile."""
        held, self._held = b"".join(self._held), []
        if held and self.transport is not None:
            self.data_received(held)

    def write(self, frames: list[bytes]) -> None:
        if self.server.frozen:
            return  # a frozen gateway sends nothing; what it would have sent is lost
        if self.transport is not None and not self.transport.is_closing():
            if self._handshaken and self.version >= SERVER_VERSION:
                self.transport.write(b"".join(frames))
            else:  # an older client: the layouts of its version (layouts.py)
                self.transport.write(b"".join(downgrade(f, self.version) for f in frames))

    def close(self, graceful: bool = False) -> None:
        if self.transport is not None:
            if graceful:
                self.transport.close()
            else:
                self.transport.abort()


class IBServer:
    """Listens on host:port and routes frames between clients and the venue."""

    def __init__(self, host: str, port: int, account: str, max_version: int = SERVER_VERSION) -> None:
        self.host = host
        self.max_version = max_version  # the highest server version this gateway negotiates
        self.port = port
        self.account = account
        self.connections: set[ClientConnection] = set()
        self.by_client: dict[int, ClientConnection] = {}
        self.refusals: list[str] = []
        self.on_request: Callable[[ClientConnection, list[str]], None] = _no_handler
        self.on_disconnect: Callable[[ClientConnection], None] = lambda conn: None
        self.next_order_id: Callable[[int], int] = lambda client_id: 1
        self._server: asyncio.Server | None = None
        self._handles: set[asyncio.TimerHandle] = set()
        self._numbers = 0
        self._reopen: asyncio.TimerHandle | None = None
        self._reopen_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._accepting = asyncio.Event()  # set while the server accepts new connections
        self.frozen = False  # the freeze_gateway fault: sockets open, nothing read or sent

    async def start(self) -> int:
        await self._listen()
        return self.port

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_connection, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._accepting.set()
        _log.info("simulated IB gateway listening on {}:{}", self.host, self.port)

    def _new_connection(self) -> ClientConnection:
        self._numbers += 1
        return ClientConnection(self, self._numbers)

    async def stop(self) -> None:
        self._stopped = True
        if self._reopen is not None:
            self._reopen.cancel()
        if self._reopen_task is not None and not self._reopen_task.done():
            self._reopen_task.cancel()
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._accepting.clear()

    # -------------------------------------------------------------------------- clients
    def start_api(self, conn: ClientConnection, client_id: int) -> bool:
        if client_id in self.by_client:
            conn.write([enc.error(-1, 326, "Unable to connect as the client id is already in "
                                  "use. Retry with a unique client id.")])  # fmt: skip
            conn.close(graceful=True)
            return False
        conn.client_id = client_id
        self.by_client[client_id] = conn
        frames = [enc.managed_accounts([self.account]), enc.next_valid_id(self.next_order_id(client_id))]
        frames += [enc.error(-1, code, text) for code, text in FARM_OK]
        conn.write(frames)
        _log.info("client {} connected (connection {})", client_id, conn.number)
        return True

    def forget(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        if conn.client_id is not None and self.by_client.get(conn.client_id) is conn:
            del self.by_client[conn.client_id]
            _log.info("client {} disconnected", conn.client_id)
        self.on_disconnect(conn)

    def send(self, client_id: int, frames: list[bytes], delay: float = 0.0) -> None:
        """Frames to a client by id (dropped when it is not connected, like TWS)."""
        if delay > 0:
            loop = asyncio.get_running_loop()
            holder: list[asyncio.TimerHandle] = []

            def later() -> None:
                self._handles.discard(holder[0])
                self.send(client_id, frames)

            holder.append(loop.call_later(delay, later))
            self._handles.add(holder[0])
            return
        conn = self.by_client.get(client_id)
        if conn is not None:
            conn.write(frames)

    def later(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        """Call ``fn(*args)`` on the loop after ``delay`` s (cancelled when the server stops)."""
        holder: list[asyncio.TimerHandle] = []

        def run() -> None:
            self._handles.discard(holder[0])
            fn(*args)

        holder.append(asyncio.get_running_loop().call_later(delay, run))
        self._handles.add(holder[0])

    def broadcast(self, frames: list[bytes]) -> None:
        for conn in list(self.by_client.values()):
            conn.write(frames)

    def clients(self) -> list[ClientConnection]:
        return list(self.by_client.values())

    # -------------------------------------------------------------------------- faults
    def drop(self, client_id: int | None = None) -> int:
        """Close client sockets abruptly; returns how many were closed."""
        victims = [c for c in self.clients() if client_id is None or c.client_id == client_id]
        for conn in victims:
            conn.close()
        return len(victims)

    def freeze(self, seconds: float | None) -> None:
        """Hang for ``seconds`` (None: for good): connections stay open and new ones are accepted,
        but nothing is read or answered; then the requests that arrived meanwhile are handled."""
        self.frozen = True
        if seconds is not None:
            handle = asyncio.get_running_loop().call_later(seconds, self.thaw)
            self._handles.add(handle)

    def thaw(self) -> None:
        self.frozen = False
        for conn in list(self.connections):
            conn.resume()

    def refuse_for(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (new connects are refused); clients stay connected."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._accepting.clear()
        loop = asyncio.get_running_loop()
        if self._reopen is not None:
            self._reopen.cancel()
        self._reopen = loop.call_later(seconds, self._schedule_reopen)

    def _schedule_reopen(self) -> None:
        self._reopen = None
        if not self._stopped:
            loop = asyncio.get_running_loop()
            self._reopen_task = loop.create_task(self._listen(), name="ml4t-ib-sim:reopen")
            self._reopen_task.add_done_callback(_log_failure)

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def wait_listening(self, timeout: float) -> bool:
        """True once new connections are accepted (again, after a refusal); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._accepting.wait()
        except TimeoutError:
            return False
        return True


def _no_handler(conn: ClientConnection, fields: list[str]) -> None:
    _log.warning("no request handler installed; dropping {}", fields[:2])


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log_failure(_log, task.exception(), "simulated gateway: {} failed", task.get_name())
