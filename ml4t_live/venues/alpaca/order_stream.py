"""OrderStream: the gateway's stream side: ``trade_updates`` -> ml4t order events, never lost.

Runs on the ``ml4t-alpaca-trade-stream`` loop thread (:class:`~.session.TradeUpdatesSession`):

* each trade update goes through the :class:`~.tracker.OrderTracker` (ours only, each execution
  once) onto the session's janus queue, which the engine reads as the gateway's ``events``;
* a lost connection is reported (``BrokerDisconnected``); after alpaca-py reconnects,
  ``BrokerReconnected`` and a re-sync: our open orders are re-read over REST and whatever the stream
  missed is reported once (the stream has no replay);
* a submit whose outcome stayed unknown (the look-ups failed too) is looked up by client order id
  on every watchdog tick until Alpaca has it (its events follow) or has answered 404 three times
  (``OrderRejected``, code ``not_received``);
* a watchdog re-reads open orders when the stream has been quiet for ``order_poll_interval`` while
  orders are open; finding missed updates means the socket is silent-but-open, so it is closed and
  alpaca-py reconnects (with our backoff).

The re-sync uses its own ``TradingClient`` (blocking on this loop, briefly and on purpose: no update
can interleave with it) behind the gateway's shared token bucket. Events made on the engine thread
(REST outcomes) go through :meth:`emit` under the same lock as the tracker's decisions here, so the
queue order always matches the order in which the tracker decided.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from loguru import logger

from ...errors import VenueError
from ...events import (
    BrokerDisconnected,
    BrokerReconnected,
    OrderRejected,
    VenueErrorReported,
)
from .config import AlpacaConfig, redact
from .parsing import flatten_open
from .rest import AlpacaTradingClient, RestCaller
from .session import TradeUpdatesSession
from .tracker import OrderTracker

_log = logger.bind(component="alpaca.order-stream")
VENUE = "alpaca"
NOT_RECEIVED_AFTER = (
    3  # 404 answers (one per watchdog interval) before an order counts as never sent
)


class OrderStream:
    def __init__(
        self, config: AlpacaConfig, tracker: OrderTracker, rest: RestCaller
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.rest = rest
        self.session = TradeUpdatesSession(
            config, self._on_update, self._on_lost, self._on_reconnected
        )
        self.emit_lock = threading.Lock()  # tracker decision + enqueue, as one step
        self._client: AlpacaTradingClient | None = (
            None  # used only on the stream's loop
        )
        self._last_update = time.monotonic()
        self.unresolved: dict[
            str, int
        ] = {}  # ambiguous submits still unknown -> 404 answers so far

    # ================================================================== engine thread
    @property
    def events(self) -> Any:
        return self.session.events

    def start(self) -> None:
        self._client = AlpacaTradingClient(self.config)
        self.session.start()

    def watch(self) -> None:
        """Start the silent-stream watchdog (after the connect snapshot registered our orders)."""
        self.session.call(
            lambda: self.session.thread.spawn(self._watchdog(), "watchdog")
        )

    def emit(self, events: list[Any]) -> None:
        if not events:
            return
        with self.emit_lock:
            for event in events:
                self.session.events.put_nowait(event)

    def close(self) -> None:
        self.session.close()

    # ================================================================== loop thread
    def _put(self, events: list[Any]) -> None:
        for event in events:
            self.session.thread.async_events.put_nowait(event)

    async def _on_update(self, update: Any) -> None:
        self._last_update = time.monotonic()
        try:
            with self.emit_lock:
                self._put(self.tracker.on_trade_update(update))
        except Exception as exc:  # noqa: BLE001  (a bad update must not kill the stream: report it)
            _log.opt(exception=exc).error("could not apply an Alpaca trade update")
            reason = redact(f"{type(exc).__name__}: {exc}", self.config)
            self._put([VenueErrorReported(VENUE, "bad_update", reason)])

    async def _on_lost(self, reason: str) -> None:
        await self.session.thread.async_events.put(BrokerDisconnected(VENUE, reason))

    async def _on_reconnected(self) -> None:
        await self.session.thread.async_events.put(BrokerReconnected(VENUE))
        self.resync()

    def resync(self) -> int:
        """Re-read our open orders over REST (blocking, on this loop); report what was missed.

        One listing of the open orders covers the usual case (1 request, whatever the number of
        resting orders); only orders of ours that left the open list are read one by one.
        """
        client = self._client
        if client is None:
            return 0
        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500, nested=True)
        try:
            listed = self.rest(
                "re-sync", lambda: client.get_orders(query), repeatable=True
            )
        except VenueError as exc:
            _log.warning("re-sync of the open Alpaca orders failed: {}", exc)
            return 0
        snapshots = flatten_open(listed)
        still_open = {str(order.id) for order in snapshots}
        for venue_id in self.tracker.open_venue_ids():
            if venue_id in still_open:
                continue
            try:  # it finished while we were not listening: how?
                snapshots.append(
                    self.rest(
                        "re-sync",
                        lambda v=venue_id: client.get_order_by_id(v),
                        repeatable=True,
                    )
                )
            except VenueError as exc:
                _log.warning("re-sync of Alpaca order {} failed: {}", venue_id, exc)
        missed = 0
        for order in snapshots:
            with self.emit_lock:
                events = self.tracker.on_order_snapshot(order)
                self._put(events)
            missed += len(events)
        if missed:
            _log.warning(
                "re-sync found {} order event(s) the trade stream had not delivered",
                missed,
            )
        return missed

    def resolve_unconfirmed(self) -> None:
        """Look up ambiguous submits by client order id until Alpaca says have or have-not."""
        client = self._client
        if client is None:
            return
        for cid in list(self.unresolved):
            try:
                order = self.rest(
                    "lookup " + cid,
                    lambda c=cid: client.get_order_by_client_id(c),
                    repeatable=True,
                )
            except VenueError as exc:
                if getattr(exc, "status", None) != 404:
                    continue  # still no answer: keep looking
                self.unresolved[cid] += 1
                if self.unresolved[cid] >= NOT_RECEIVED_AFTER:
                    del self.unresolved[cid]
                    reason = f"Alpaca has no order {cid} ({NOT_RECEIVED_AFTER} lookups by client order id)"
                    with self.emit_lock:
                        self._put([OrderRejected(cid, reason, "not_received")])
                continue
            del self.unresolved[cid]
            _log.info(
                "ambiguous order {} found at Alpaca ({})", cid, order.status.value
            )
            with self.emit_lock:
                self._put(self.tracker.on_order_snapshot(order))

    async def _watchdog(self) -> None:
        interval = self.config.order_poll_interval
        while True:
            await asyncio.sleep(interval)
            if self.unresolved:
                self.resolve_unconfirmed()
            quiet = time.monotonic() - self._last_update
            if quiet < interval or not self.tracker.open_venue_ids():
                continue
            if self.resync():
                _log.warning(
                    "trade stream silent for {:.1f}s with missed updates; reconnecting",
                    quiet,
                )
                await self.session.force_reconnect()
            self._last_update = time.monotonic()
