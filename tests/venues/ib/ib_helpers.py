"""Shared helpers for the IB adapter tests (events with timeouts; never sleeps)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from ml4t.backtest import OrderType, Strategy

from ml4t_live.venues.ib import IBConfig

# What ib_async logs, at ERROR, when the gateway drops the socket or refuses a reconnect attempt.
DROP_ERRORS = (
    r"Peer closed connection",
    r"API connection failed",
    r"Make sure API port",
)


def config_for(sim: Any, **kw: Any) -> IBConfig:
    base: dict[str, Any] = {
        "port": sim.port,
        "client_id": 1,
        "connect_timeout": 5.0,
        "request_timeout": 5.0,
        "commission_wait": 1.0,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.5,
    }
    base.update(kw)
    return IBConfig(**base)


def wait_for(
    events: Any,
    pred: Callable[[Any], bool],
    timeout: float = 10.0,
    seen: list | None = None,
) -> Any:
    """Read events until one matches ``pred``; every event read is appended to ``seen``."""
    seen = [] if seen is None else seen
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching event within {timeout}s; saw {seen}")
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            continue
        seen.append(event)
        if pred(event):
            return event


def drain(events: Any, seen: list) -> list:
    while True:
        try:
            seen.append(events.get_nowait())
        except queue.Empty:
            return seen


START = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # 09:30 New York


def minute_bars(symbols=("AAPL",), n=20, start=START, base=100.0) -> pl.DataFrame:
    """Deterministic 1-minute bars: a gentle zig-zag per symbol, whole-share volumes."""
    rows = []
    for k, sym in enumerate(symbols):
        price = base * (k + 1)
        for i in range(n):
            o = price
            c = round(price + (0.5 if i % 3 else -0.3), 2)
            rows.append(
                {
                    "timestamp": start + timedelta(minutes=i),
                    "asset": sym,
                    "open": o,
                    "high": round(max(o, c) + 0.25, 2),
                    "low": round(min(o, c) - 0.25, 2),
                    "close": c,
                    "volume": float(1000 + 10 * i),
                }
            )
            price = c
    return pl.DataFrame(rows)


def is_(cls, coid):
    """An event predicate: of type ``cls`` for client order id ``coid``."""
    return lambda e: isinstance(e, cls) and e.client_order_id == coid


class OneLimit(Strategy):
    """A limit buy of 3 AAPL far below the market on its first bar (it never fills)."""

    def __init__(self) -> None:
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
