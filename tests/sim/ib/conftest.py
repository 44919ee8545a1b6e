"""Fixtures for the simulated IB Gateway tests.

``ib_errors`` (autouse) fails a test on any ERROR record from ib_async's loggers (its decoder
drops a malformed message with only an ERROR line, and the caller just hangs) or from eventkit
(an exception inside an event handler). A test that provokes an IB error on purpose (a
rejection logs ``Error 201``) declares it with ``ib_errors.expect(regex)``.
"""

from __future__ import annotations

import logging
import re
import pytest
from ibsim_support import IBClient, make_bars

from ml4t_live.sim.ib import SimulatedIBGateway


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IBErrors:
    def __init__(self, capture: _Capture) -> None:
        self._capture = capture
        self._allowed: list[re.Pattern[str]] = []

    def expect(self, pattern: str) -> None:
        """Allow ERROR records whose message matches ``pattern`` (re.search)."""
        self._allowed.append(re.compile(pattern))

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self._capture.records]

    def unexpected(self) -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}"
            for r in self._capture.records
            if not any(p.search(r.getMessage()) for p in self._allowed)
        ]


@pytest.fixture(autouse=True)
def ib_errors():
    capture = _Capture()
    loggers = [logging.getLogger("ib_async"), logging.getLogger("eventkit")]
    for lg in loggers:
        lg.addHandler(capture)
    guard = IBErrors(capture)
    try:
        yield guard
    finally:
        for lg in loggers:
            lg.removeHandler(capture)
    bad = guard.unexpected()
    assert not bad, "ib_async / eventkit logged errors:\n" + "\n".join(bad)


@pytest.fixture
def bars():
    return make_bars()


@pytest.fixture
def gateway_factory(bars):
    made: list[SimulatedIBGateway] = []

    def make(data=None, **kwargs) -> SimulatedIBGateway:
        gw = SimulatedIBGateway(bars if data is None else data, **kwargs)
        made.append(gw)
        gw.start()
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def gateway(gateway_factory):
    return gateway_factory()


@pytest.fixture
def client_factory(gateway):
    made: list[IBClient] = []

    def make(client_id: int = 1, port: int | None = None, connect: bool = True, **kwargs) -> IBClient:
        client = IBClient(port or gateway.port, client_id)
        made.append(client)
        if connect:
            client.connect(**kwargs)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(client_factory):
    return client_factory(1)
