"""IBSession: one ``ib_async.IB`` connection on one bridge loop thread, with reconnect.

Threading rule: an IBSession and its ``IB`` are created, used and closed only by coroutines running
on its :class:`~ml4t_live.bridge.LoopThread`. It uses ib_async's ``*Async`` requests and its
non-blocking senders (``placeOrder``, ``cancelOrder``, ``reqRealTimeBars``, ``disconnect``) and its
cached state (``positions()``, ``openTrades()``, ``fills()``, ``accountValues()``); never
IB's own sleep helper, its loop starter or patcher, or a blocking ib_async call (those run a nested loop).

On a connection the session did not close itself, it calls its ``on_lost`` hooks, then reconnects
with exponential backoff (``IBConfig.reconnect_*``). After each successful reconnect it awaits its
``on_restored`` hooks (resubscribe, resync), in order; an owner puts its "reconnected" event there.
Then it runs one full garbage collection: the lost connection's ib_async objects are in
reference cycles (see ``_collect_previous_connection``).
The order connection loads ib_async's start-up state (positions, open and completed orders,
account values, executions) on every connect; the feed's (role "feed") loads none of it.

Order ids: a restarted gateway can hand out a ``nextValidId`` below ids already used (IB-05), and a
reused id is refused (103) or, worse, taken for a modification of another order. After every
(re)connect, before anything else can run on the loop, the next id is raised to
``max(nextValidId, order_id_high_water + 1)``: the high-water mark is the largest id this client
placed or saw at the venue, or a floor the owner reserved (the journal's).
"""

from __future__ import annotations

import asyncio
import enum
import gc
import time
import weakref
from collections.abc import Awaitable, Callable

from ib_async import IB
from ib_async.ib import StartupFetchALL, StartupFetchNONE
from loguru import logger

from ...bridge import LoopThread
from ...errors import ConnectionFailed
from ...events import VenueErrorReported, stamp_received
from .config import IBConfig
from .order_lists import OrderLists
from .parsing import is_warning

_log = logger.bind(component="ib.session")

# Errors an unreachable or refusing gateway produces in ib_async's connectAsync.
CONNECT_ERRORS = (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError)
# IB connectivity codes: 1100 lost, 1101 restored (data lost), 1102 restored (data kept).
CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
# the collection after a reconnect: tries while another thread's collection keeps it from running
COLLECT_ATTEMPTS, COLLECT_RETRY_SECONDS = 20, 0.05
COLLECT_AGAIN_SECONDS = 1.0  # the second collection after a reconnect


async def _collect_previous_connection(role: str) -> None:
    """Free what the lost connection left behind, now and once more a moment later. ib_async
    drops its state at a disconnect (every Trade and Fill of the connection: a day's orders after
    the nightly restart), but each Trade's eventkit events form reference cycles (each event keeps
    its last arguments, the Trade among them), so that memory waits for CPython's next full
    collection; meanwhile the new day's objects are allocated elsewhere and the process grows
    (measured: ~73,000 unreachable objects a night at 780 orders a day; docs/performance.md, "A
    week without growth"). Right after the hooks the previous day's Trades are sometimes still
    referenced (measured: none found on 2 of 4 nights, all of them garbage 0.5 s later), hence
    the second collection ``COLLECT_AGAIN_SECONDS`` later. Tens of milliseconds each."""
    await _collect(role, "after the reconnect")
    await asyncio.sleep(COLLECT_AGAIN_SECONDS)
    await _collect(role, f"{COLLECT_AGAIN_SECONDS:g} s later")


class _Marker:
    """Garbage made just before a collection: collected only by a collection that began after."""

    def __init__(self) -> None:
        self.me = self


async def _collect(role: str, when: str) -> None:
    """One full collection. ``gc.collect()`` does nothing (returns 0 at once) while a collection
    runs in another thread, e.g. the other IB session's, which reconnects at the same moment:
    then it is tried again, a little later, until a full collection that began after this call
    has run (a fresh marker gone and the full-collection count moved)."""
    started = time.perf_counter()
    for attempt in range(1, COLLECT_ATTEMPTS + 1):
        full = gc.get_stats()[2]["collections"]
        marker = weakref.ref(_Marker())  # garbage from here on
        found = gc.collect()
        if marker() is None and gc.get_stats()[2]["collections"] > full:
            _log.debug("{}: {} unreachable objects of the previous connection collected {} in {:.0f} "
                       "ms (attempt {})", role, found, when, (time.perf_counter() - started) * 1000,
                       attempt)  # fmt: skip
            return
        await asyncio.sleep(COLLECT_RETRY_SECONDS)
    _log.debug("{}: no full collection after the reconnect ({} attempts; another thread's kept "
               "running); left to CPython", role, COLLECT_ATTEMPTS)  # fmt: skip


class SessionState(enum.Enum):
    NEW = "new"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class IBSession:
    """Owns one IB API connection (one client id) on ``loop``."""

    def __init__(
        self, config: IBConfig, loop: LoopThread, *, client_id: int, role: str
    ) -> None:
        self.config = config
        self.loop = loop
        self.client_id = client_id
        self.role = role
        self.ib = IB()
        self.ib.client.MaxRequests = config.max_requests_per_second
        self.state = SessionState.NEW
        self.account = ""
        self.on_lost: list[Callable[[str], None]] = []
        self.on_restored: list[Callable[[], Awaitable[None]]] = []
        self.on_connectivity: list[Callable[[int, str], None]] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._order_id_high_water = 0
        # IB reported 1100 (its own link is down, the socket is up) and not yet 1101/1102
        self.degraded = False
        # ib_async matches its order-list requests to their answers by name, not by request id:
        # every reqOpenOrders / reqAllOpenOrders / reqCompletedOrders of the adapter takes its
        # turn here and is sent through it (see order_lists.py)
        self.order_lists = OrderLists()
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error

    # ------------------------------------------------------------------ connect
    async def connect(self) -> list[str]:
        """Connect and run ib_async's startup sync; returns the accounts the gateway manages."""
        await self._connect_once()
        self.state = SessionState.CONNECTED
        return list(self.ib.managedAccounts())

    async def _connect_once(self) -> None:
        cfg = self.config
        _log.info(
            "{}: connecting to {}:{} as client {}",
            self.role,
            cfg.host,
            cfg.port,
            self.client_id,
        )
        try:
            await self.ib.connectAsync(
                cfg.host,
                cfg.port,
                clientId=self.client_id,
                timeout=cfg.connect_timeout,
                account=cfg.account,
                raiseSyncErrors=True,
                # the feed's connection needs no orders, executions, positions or account
                # values: skipping ib_async's start-up download of them (every completed order
                # and execution the gateway holds, again at each reconnect) keeps it light
                fetchFields=StartupFetchNONE if self.role == "feed" else StartupFetchALL,
            )
        except CONNECT_ERRORS as exc:
            raise ConnectionFailed(
                f"IB {self.role}: cannot connect to {cfg.host}:{cfg.port} as client "
                f"{self.client_id}: {exc!r}. Is TWS / IB Gateway running with the API enabled, and "
                "is that client id free?"
            ) from exc
        self._apply_order_id_floor()

    # ------------------------------------------------------------------ order ids
    @property
    def order_id_high_water(self) -> int:
        """The largest IB order id this client used (placed, seen at the venue, or reserved)."""
        return self._order_id_high_water

    def note_order_id(self, order_id: int) -> None:
        """``order_id`` is used: after the next (re)connect, never hand it (or a smaller one) out."""
        self._order_id_high_water = max(self._order_id_high_water, order_id)

    def reserve_order_ids(self, floor: int) -> None:
        """Ids up to ``floor`` are used (by an earlier run): from now on, ids start above it."""
        self.note_order_id(floor)
        self._apply_order_id_floor()

    def _apply_order_id_floor(self) -> None:
        client = self.ib.client
        if not client.isReady():
            return  # applied right after the next connect
        before = client.getReqId()  # the next id ib_async would hand out, consumed here
        if before <= self._order_id_high_water:
            _log.warning(
                "{}: IB's next order id {} is not above {} already used (a restarted gateway "
                "rolled nextValidId back?); using {}",
                self.role,
                before,
                self._order_id_high_water,
                self._order_id_high_water + 1,
            )
        client.updateReqId(max(before, self._order_id_high_water + 1))

    @property
    def connected(self) -> bool:
        return self.state is SessionState.CONNECTED and self.ib.isConnected()

    def require_connected(self, what: str) -> None:
        if not self.connected:
            raise ConnectionFailed(
                f"IB {self.role} is {self.state.value}: {what} was not sent (nothing was sent "
                "twice; retry after the BrokerReconnected event)"
            )

    def put(self, event: object) -> None:
        """Put an event on the loop's queue for the engine (loop thread only)."""
        self.loop.async_events.put_nowait(stamp_received(event))

    # ------------------------------------------------------------------ lost / reconnect
    def _on_disconnected(self) -> None:
        if self.state is not SessionState.CONNECTED:
            return  # our own close(), or a failed attempt inside the reconnect loop
        reason = "connection to TWS / IB Gateway lost"
        _log.warning("{}: {}", self.role, reason)
        self.state = SessionState.RECONNECTING
        for hook in self.on_lost:
            hook(reason)
        if self.config.reconnect:
            self._reconnect_task = self.loop.spawn(
                self._reconnect(), f"{self.role}-reconnect"
            )

    async def _reconnect(self) -> None:
        attempt = 0
        for delay in self.config.backoff_delays():
            await asyncio.sleep(delay)
            if self.state is not SessionState.RECONNECTING:
                return
            attempt += 1
            try:
                await self._connect_once()
            except ConnectionFailed as exc:
                _log.warning(
                    "{}: reconnect attempt {} failed: {}", self.role, attempt, exc
                )
                continue
            self.state = SessionState.CONNECTED
            _log.info("{}: reconnected after {} attempt(s)", self.role, attempt)
            for hook in self.on_restored:
                await hook()
            await _collect_previous_connection(self.role)
            return
        self.state = SessionState.CLOSED
        self.put(
            VenueErrorReported(
                "ib",
                "reconnect-failed",
                f"IB {self.role}: gave up after {attempt} reconnect attempts",
            )
        )

    def _on_error(
        self, req_id: int, code: int, message: str, _contract: object
    ) -> None:
        if code in (CONNECTIVITY_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            _log.warning("{}: IB connectivity notice {}: {}", self.role, code, message)
            for hook in self.on_connectivity:
                hook(code, message)
        elif req_id == -1 and not is_warning(code):
            if self.role == "broker":  # the feed's queue carries feed events only
                self.put(VenueErrorReported("ib", str(code), message))
            else:
                _log.warning("{}: IB error {}: {}", self.role, code, message)

    # ------------------------------------------------------------------ close
    async def close(self) -> None:
        """Stop reconnecting and disconnect (idempotent)."""
        self.state = SessionState.CLOSED
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.ib.disconnectedEvent -= self._on_disconnected
        self.ib.errorEvent -= self._on_error
        if self.ib.isConnected() or self.ib.client.isConnected():
            self.ib.disconnect()
