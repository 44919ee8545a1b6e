"""In-memory fakes of the remote side, for engine tests without threads.

``ListFeed`` hands out scripted feed events. ``FakeVenue`` is a VenueGateway whose "venue" is a
few dicts: orders are recorded, and fills are released on the engine's *blocking* waits only, so
a test can prove the fill barrier really waited.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import (
    BarClosed, FeedEnded, OrderAccepted, OrderCancelled, OrderFilled, OrderPartiallyFilled,
)  # fmt: skip
from ml4t_live.protocols import AccountSnapshot, OrderRequest, VenueOrder, VenuePosition


def bar(ts: datetime, prices: dict[str, float]) -> BarClosed:
    data = {
        asset: {"price": p, "open": p, "high": p, "low": p, "close": p, "volume": 100.0, "signals": {}}
        for asset, p in prices.items()
    }
    return BarClosed(ts, data, {})


class ListFeed:
    """Delivers the given events in order; then FeedEnded, or nothing at all when ``stall``."""

    name = "list"

    def __init__(self, events: list[Any], *, stall: bool = False) -> None:
        self.events = deque(events)
        self.stall = stall
        self.bars_total = sum(isinstance(e, BarClosed) for e in events)
        self.started = self.closed = False
        self._never = threading.Event()

    def start(self) -> None:
        self.started = True

    def next_event(self, timeout: float):
        if self.events:
            return self.events.popleft()
        if self.stall:
            self._never.wait(timeout)  # nothing arrives: the wait times out, as a silent feed does
            return None
        return FeedEnded("script done")

    def close(self) -> None:
        self.closed = True


class ScriptedQueue:
    """The gateway's event queue. ``get_nowait`` returns what is queued; a blocking ``get``
    first lets the fake venue act (``on_wait``), as a remote venue acts while the client waits."""

    def __init__(self, on_wait) -> None:
        self.items: deque[Any] = deque()
        self.on_wait = on_wait
        self.waits: list[float] = []

    def put(self, item: Any) -> None:
        self.items.append(item)

    def get_nowait(self):
        if not self.items:
            raise queue.Empty
        return self.items.popleft()

    def get(self, timeout: float | None = None):
        self.waits.append(timeout or 0.0)
        if not self.items:
            self.on_wait()
        return self.get_nowait()


@dataclass
class FakeVenue:
    """A VenueGateway over an in-memory account. ``fill_on_wait`` fills market orders at ``price``."""

    venue: str = "fake"
    account_id: str = "DU0001"
    is_paper: bool = True
    cash: float = 100_000.0
    price: float = 100.0
    fill_on_wait: bool = True
    positions: dict[str, VenuePosition] = field(default_factory=dict)
    open_orders: list[VenueOrder] = field(default_factory=list)
    placed: list[OrderRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    bars_done: list[Any] = field(default_factory=list)
    closed: bool = False
    #: the next call of a method raises this ("place" / "modify" / "cancel" -> exception)
    raise_on: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.events = ScriptedQueue(self._act)
        self._unfilled: deque[OrderRequest] = deque()
        self._exec = 0

    def connect(self) -> AccountSnapshot:
        return self.snapshot()

    def snapshot(self) -> AccountSnapshot:
        return AccountSnapshot(
            self.account_id, self.is_paper, self.cash, self.cash,
            dict(self.positions), list(self.open_orders), [],
        )  # fmt: skip

    def _maybe_fail(self, method: str) -> None:
        if method in self.raise_on:
            raise self.raise_on.pop(method)

    def place(self, request: OrderRequest) -> None:
        self._maybe_fail("place")
        self.placed.append(request)
        self._unfilled.append(request)

    def modify(self, request: OrderRequest) -> None:
        self._maybe_fail("modify")
        self.placed.append(request)

    def cancel(self, client_order_id: str) -> None:
        """Recorded; a venue that acts on its own (``fill_on_wait``) also confirms it."""
        self._maybe_fail("cancel")
        self.cancelled.append(client_order_id)
        if self.fill_on_wait:
            self._unfilled = deque(r for r in self._unfilled if r.client_order_id != client_order_id)
            self.events.put(OrderCancelled(client_order_id, "cancelled"))

    def end_of_bar(self, timestamp: Any) -> None:
        self.bars_done.append(timestamp)

    def close(self) -> None:
        self.closed = True

    def fill(self, request: OrderRequest, quantity: float | None = None, *, final: bool = True,
             exec_id: str | None = None, when: datetime | None = None) -> None:  # fmt: skip
        """The venue executes ``request``: its position moves and the event is queued."""
        self._exec += 1
        event = OrderFilled if final else OrderPartiallyFilled
        qty = quantity if quantity is not None else request.quantity
        self.events.put(
            event(
                request.client_order_id, exec_id or f"E{self._exec}", request.asset, request.side,
                qty, self.price, when or datetime(2024, 1, 1), 1.0,
            )
        )  # fmt: skip
        signed = qty if request.side is OrderSide.BUY else -qty
        held = self.positions.get(request.asset)
        total = (held.quantity if held else 0.0) + signed
        if abs(total) < 1e-9:
            self.positions.pop(request.asset, None)
        else:
            self.positions[request.asset] = VenuePosition(request.asset, total, self.price)

    def _act(self) -> None:
        """Accept what was placed; fill the market orders (other types keep working)."""
        if not self.fill_on_wait:
            return
        while self._unfilled:
            request = self._unfilled.popleft()
            self.events.put(OrderAccepted(request.client_order_id, f"V{len(self.placed)}"))
            if request.order_type in (OrderType.MARKET, OrderType.MOC):
                self.fill(request)


BUY, SELL = OrderSide.BUY, OrderSide.SELL
