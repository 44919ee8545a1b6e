"""Fixtures for the IB adapter tests.

``ib_log_guard`` (autouse) fails a test on any ERROR record from ib_async's loggers (decoder drops
a malformed message with only an ERROR line; the caller just hangs) or from eventkit (an exception
in one of our event handlers). A test that provokes an error on purpose (a rejection logs
``Error 201``) declares it with ``ib_log_guard.expect(regex)``.
"""

from __future__ import annotations

import logging
import re

import pytest


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IBLogGuard:
    def __init__(self, capture: _Capture) -> None:
        self._capture = capture
        self._allowed: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        """Allow ERROR records whose message matches ``pattern`` (re.search)."""
        self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        out = []
        for record in self._capture.records:
            text = record.getMessage()
            if not any(p.search(text) for p in self._allowed):
                out.append(f"{record.name}: {text}")
        return out


@pytest.fixture(autouse=True)
def ib_log_guard():
    capture = _Capture()
    loggers = [logging.getLogger("ib_async"), logging.getLogger("eventkit")]
    for lg in loggers:
        lg.addHandler(capture)
    guard = IBLogGuard(capture)
    try:
        yield guard
    finally:
        for lg in loggers:
            lg.removeHandler(capture)
    bad = guard.unexpected()
    assert not bad, "ib_async / eventkit logged errors:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- simulated venue
from datetime import UTC, datetime, timedelta

import polars as pl

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


@pytest.fixture
def sim_factory():
    """Start SimulatedIBGateway instances on 127.0.0.1; all are closed at teardown."""
    from ml4t_live.sim.ib import SimulatedIBGateway

    started = []

    def make(bars=None, **kw):
        sim = SimulatedIBGateway(bars if bars is not None else minute_bars(), **kw)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.close()
