"""Shared helpers for the IB adapter tests (events with timeouts; never sleeps)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from ml4t_live.venues.ib import IBConfig


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
