"""How long an order's path took at a venue: bar received -> order sent -> fill received.

Venue brokers keep one :class:`LatencyLog` (engine thread only). Times are ``time.monotonic()``
readings taken where things happen: the bar when the feed's loop thread received it
(``BarClosed.received_at``), the order just before it leaves (``gateway.place``), the fill when
the venue session's loop thread received it (``Execution.received_at``). Each fill becomes one row
of the session's ``latency`` table, with wall-clock UTC times and the two delays in milliseconds.
Bars replayed from the journal carry no receive time; their orders have no ``bar_to_order_ms``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

#: orders whose send time is kept for their fills (the oldest are dropped beyond this)
MAX_OPEN = 10_000


def wall_time(monotonic: float | None) -> datetime | None:
    """A ``time.monotonic()`` reading as a UTC datetime (None stays None)."""
    if monotonic is None:
        return None
    return datetime.fromtimestamp(time.time() - (time.monotonic() - monotonic), UTC)


class LatencyLog:
    """Send times of working orders, and one row per fill (taken with :meth:`take`)."""

    def __init__(self) -> None:
        self._bar_received: float | None = None
        self._sent: OrderedDict[str, tuple[float | None, float]] = OrderedDict()
        self._rows: list[dict[str, Any]] = []

    def bar(self, received_at: float | None) -> None:
        self._bar_received = received_at

    def sent(self, order_id: str) -> None:
        self._sent[order_id] = (self._bar_received, time.monotonic())
        while len(self._sent) > MAX_OPEN:
            self._sent.popitem(last=False)

    def filled(self, order_id: str, asset: str, quantity: float, received_at: float | None,
               done: bool) -> None:  # fmt: skip
        start = self._sent.pop(order_id, None) if done else self._sent.get(order_id)
        if start is None:
            return  # sent before a restart, or by another path: no send time to measure from
        bar_at, sent_at = start
        arrived = received_at if received_at is not None else time.monotonic()
        self._rows.append({
            "order_id": order_id, "asset": asset, "quantity": float(quantity),
            "bar_received": wall_time(bar_at), "order_sent": wall_time(sent_at),
            "fill_received": wall_time(arrived),
            "bar_to_order_ms": (sent_at - bar_at) * 1e3 if bar_at is not None else None,
            "order_to_fill_ms": (arrived - sent_at) * 1e3,
        })  # fmt: skip

    def take(self) -> list[dict[str, Any]]:
        rows, self._rows = self._rows, []
        return rows
