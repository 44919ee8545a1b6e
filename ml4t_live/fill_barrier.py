"""The fill barrier of a venue broker: apply venue events, wait (bounded) for orders in flight.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`. Before each ``on_data`` the engine calls
``settle``: the venue's events are applied to the local book (fills, cancels, rejections,
disconnects), then the barrier waits until the orders the backtest would already have filled are
reported, or the settle time runs out. After a disconnect it first waits for the reconnect and
re-sync, so no bar is traded on a stale account.
"""

from __future__ import annotations

import queue
import time
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus, OrderType

from .book import Book
from .errors import BridgeError, ConnectionFailed, VenueError
from .events import (
    BackgroundTaskFailed,
    BrokerDisconnected,
    BrokerReconnected,
    VenueErrorReported,
)
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

#: Orders the backtest fills before the next on_data: the barrier waits for these to finish.
_FILL_NEXT = (OrderType.MARKET, OrderType.MOC)

#: venue error codes their gateway logged as an ERROR when it found them (shown here at DEBUG; the
#: others as a WARNING): the venue traded more than the strategy asked (Alpaca's replace check,
#: :mod:`~ml4t_live.venues.alpaca.modify`, its cut :mod:`~ml4t_live.venues.alpaca.cut`), said at
#: once, not at the next settle a failing run never reaches
_SAID_WHEN_FOUND = frozenset({"over_filled"})


class FillBarrier:
    """``settle`` and the event handling behind it; needs the attributes listed below."""

    gateway: VenueGateway
    venue: str
    book: Book
    reconnect_timeout: float
    _in_flight: dict[str, Order]
    _disconnected: str | None
    own: Any  # Ownership
    link: Any  # JournalLink
    _apply_live: Any  # BarSteps._apply_live
    reconcile_if_due: Any  # BarSteps.reconcile_if_due
    look_up_unknown: Any  # UnknownLookups.look_up_unknown

    def settle(self, timeout: float) -> int:
        """The fill barrier: apply venue events; wait up to ``timeout`` for orders in flight.

        In flight = not yet acknowledged by the venue, or a MARKET / MOC order with no execution
        yet (the backtest would have filled it before this ``on_data``). A partly filled order
        is no longer waited for: the strategy sees it PENDING with its ``filled_quantity``.
        While the venue connection is down, first wait (up to ``reconnect_timeout``) until the
        gateway has reconnected and re-synchronised: no bar is traded on a stale account.
        Orders of unknown outcome whose look-up is due are looked up (:mod:`~ml4t_live.unknown_orders`).
        Returns how many orders are still in flight.
        """
        self._drain(block_until=None)
        if self._disconnected is not None:
            self._await_reconnect()
        self._settle_point()
        self.look_up_unknown()
        self.reconcile_if_due()
        deadline = time.monotonic() + timeout
        while self._in_flight:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._drain(block_until=deadline):
                break
        return len(self._in_flight)

    def _settle_point(self) -> None:
        """With orders working at the venue: a round trip on the order connection (a gateway
        with ``settle_point``), so a fill the venue sent before the bar (on the feed's own
        connection) is applied before ``on_data``, as the backtest would show it."""
        point = getattr(self.gateway, "settle_point", None)
        if point is None or not (self.book.open or self.book.cancelling):
            return
        try:
            point()
        except (VenueError, BridgeError) as exc:  # the barrier goes on with what it has
            _log.warning("{}: settle point not answered ({}); orders may be reported a bar late",
                         self.venue, exc)  # fmt: skip
            return
        self._drain(block_until=None)

    def _await_reconnect(self) -> None:
        _log.warning(
            "{} is disconnected ({}): waiting up to {:g}s for the reconnect and re-sync "
            "before the next bar",
            self.venue,
            self._disconnected,
            self.reconnect_timeout,
        )
        deadline = time.monotonic() + self.reconnect_timeout
        while self._disconnected is not None:
            if time.monotonic() >= deadline or not self._drain(block_until=deadline):
                raise ConnectionFailed(
                    f"{self.venue} did not reconnect within {self.reconnect_timeout:g}s "
                    f"(lost: {self._disconnected}); stopping rather than trading on a stale "
                    "account. Check the gateway / network, then restart: open orders are "
                    "adopted by their client order ids."
                )

    def _drain(self, block_until: float | None) -> bool:
        """Apply queued events; with ``block_until`` wait for at least one. False on timeout."""
        events = self.gateway.events
        try:
            if block_until is not None:
                try:
                    self._apply(events.get(timeout=max(0.0, block_until - time.monotonic())))
                except queue.Empty:
                    return False
            while True:
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    return True
                self._apply(event)
        finally:
            self.link.journal.commit()  # each batch: no write lock held while the barrier waits

    #: shown every venue event the broker applied (notifications); set by the run's owner
    observer: Any = None

    def _apply(self, event: Any) -> None:
        match event:
            case BrokerDisconnected(reason=reason):
                self._observe(event)
                self._disconnected = reason
                _log.warning("{} disconnected: {}; orders wait for the reconnect", self.venue, reason)
            case BrokerReconnected():
                self._observe(event)
                self._disconnected = None
                self.own.check_soon()
                _log.info("{} reconnected; orders and executions re-synchronised", self.venue)
            case VenueErrorReported(code=code, message=message):
                level = "DEBUG" if code in _SAID_WHEN_FOUND else "WARNING"
                _log.log(level, "{} error {}: {}", self.venue, code, message)
            case BackgroundTaskFailed(task=task, error=error):
                raise ConnectionFailed(f"{self.venue} session task {task} failed: {error}")
            case _:
                order = self._apply_live(event)
                if order is not None:
                    self._update_in_flight(order)
                    self._observe(event)

    def _observe(self, event: Any) -> None:
        if self.observer is not None:
            self.observer(event)

    def _update_in_flight(self, order: Order) -> None:
        cid = order.order_id
        if cid not in self._in_flight:
            return
        done = order.status is not OrderStatus.PENDING
        acked = cid in self.book.acknowledged
        # A partly filled order is trading at the venue: the strategy sees it PENDING with its
        # filled_quantity (how a partial fill is shown), not after a settle timeout.
        executing = order.filled_quantity > 0
        if done or executing or (acked and order.order_type not in _FILL_NEXT):
            del self._in_flight[cid]
