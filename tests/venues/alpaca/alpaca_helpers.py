"""Shared helpers for the Alpaca adapter tests: bars, simulator, config, event collection."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.config import AlpacaConfig

#: A Monday in regular trading hours (09:30 New York), so the simulator replays every bar.
SESSION_OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def minute_bars(
    n: int,
    symbols: dict[str, float] | None = None,
    *,
    start: datetime = SESSION_OPEN,
    step: float = 1.0,
    skip: set[tuple[str, int]] | None = None,
) -> pl.DataFrame:
    """``n`` minute bars per symbol: open = base + i*step, high/low +-1, close = open + 0.5."""
    symbols = symbols or {"AAPL": 100.0}
    rows = []
    for i in range(n):
        for symbol, base in symbols.items():
            if skip and (symbol, i) in skip:
                continue
            price = base + i * step
            rows.append(
                {
                    "timestamp": start + timedelta(minutes=i),
                    "asset": symbol,
                    "open": price,
                    "high": price + 1.0,
                    "low": price - 1.0,
                    "close": price + 0.5,
                    "volume": 1000.0 + i,
                }
            )
    return pl.DataFrame(rows)


def config_for(sim: SimulatedAlpaca, **kw: Any) -> AlpacaConfig:
    kw.setdefault("reconnect_initial_delay", 0.05)
    kw.setdefault("reconnect_max_delay", 0.5)
    kw.setdefault("request_timeout", 5.0)
    # the runtime's own request budget (200 a minute, bursts of 20) would pace a test's bars by
    # the wall clock; the tests of that budget set their own. Nothing paces the client below the
    # simulator's 200 a minute then: a simulator in step mode (the default) answers no 429 (it
    # only counts), one in speed mode does
    kw.setdefault("max_requests_per_minute", 100_000)
    kw.setdefault("rate_limit_burst", 1_000)
    return AlpacaConfig(
        key_id=sim.key_id, secret_key=sim.secret_key, base_url=sim.base_url, **kw
    )


def collect(
    events: Any, until: Callable[[list[Any]], bool], timeout: float = 5.0
) -> list[Any]:
    """Read events (with a deadline) until ``until(seen)`` holds; returns what was seen."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while not until(seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"condition not met within {timeout}s; events: {seen!r}"
            )
        try:
            seen.append(events.get(timeout=remaining))
        except queue.Empty:
            continue
    return seen


def drain(events: Any, quiet: float = 0.2) -> list[Any]:
    """Whatever arrives until the queue stays empty for ``quiet`` seconds."""
    seen: list[Any] = []
    while True:
        try:
            seen.append(events.get(timeout=quiet))
        except queue.Empty:
            return seen


def of(kind: type, seen: list[Any], cid: str | None = None) -> list[Any]:
    return [
        e
        for e in seen
        if isinstance(e, kind) and (cid is None or e.client_order_id == cid)
    ]


def inject(sim: SimulatedAlpaca, kind: str, **params: Any) -> None:
    """Apply a scripted fault on the simulated venue now (its public ``inject``)."""
    sim.inject(kind, **params)
