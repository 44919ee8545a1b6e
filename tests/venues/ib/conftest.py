"""Fixtures for the IB adapter tests.

``ib_log_guard`` (autouse) fails a test on any ERROR record from ib_async's loggers (decoder drops
a malformed message with only an ERROR line; the caller just hangs), from eventkit (an exception
in one of our event handlers), or from loguru (our code and the simulator: a failed background
task, a failed shutdown step). A test that provokes an error on purpose (a rejection logs
``Error 201``) declares it with ``ib_log_guard.expect(regex)``.
"""

from __future__ import annotations

import logging
import re

import pytest
from ib_helpers import minute_bars
from loguru import logger

from tests.support.log_capture import ErrorRecords


class IBLogGuard:
    def __init__(self, capture: ErrorRecords) -> None:
        self._capture = capture
        self._allowed: list[re.Pattern[str]] = []
        self.loguru: list[
            tuple[str, str]
        ] = []  # ERRORs our own code (and the simulator) logged

    def expect(self, pattern: str) -> None:
        """Allow ERROR records whose message matches ``pattern`` (re.search)."""
        self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        texts = [(r.name, r.getMessage()) for r in self._capture.records] + self.loguru
        return [
            f"{name}: {text}"
            for name, text in texts
            if not any(p.search(text) for p in self._allowed)
        ]


@pytest.fixture(autouse=True)
def ib_log_guard():
    capture = ErrorRecords()
    loggers = [logging.getLogger("ib_async"), logging.getLogger("eventkit")]
    for lg in loggers:
        lg.addHandler(capture)
    guard = IBLogGuard(capture)
    sink_id = logger.add(
        lambda m: guard.loguru.append((m.record["name"] or "", m.record["message"])),
        level="ERROR",
    )
    try:
        yield guard
    finally:
        logger.remove(sink_id)
        for lg in loggers:
            lg.removeHandler(capture)
    bad = guard.unexpected()
    assert not bad, "ib_async / eventkit / loguru logged errors:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- simulated venue
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


@pytest.fixture
def gateway_factory():
    """IBGateway instances on a simulator (``make(sim, **config)``); all closed at teardown."""
    from ib_helpers import config_for

    from ml4t_live.venues.ib import IBGateway

    made = []

    def make(sim, **kw):
        gw = IBGateway(config_for(sim, **kw))
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()
