"""Fixtures for the simulated IB Gateway tests.

``ib_errors`` (autouse) fails a test on any ERROR record from ib_async's loggers (its decoder
drops a malformed message with only an ERROR line, and the caller just hangs), from eventkit
(an exception inside an event handler), from asyncio (a protocol callback of the simulated
gateway raised) or from loguru (a background task of the gateway or the bridge failed). A test that provokes an IB error on purpose (a
rejection logs ``Error 201``) declares it with ``ib_errors.expect(regex)``.
"""

from __future__ import annotations

import logging
import re

import pytest
from ibsim_support import IBClient, make_bars
from loguru import logger

from ml4t_live.sim.ib import SimulatedIBGateway
from tests.support.log_capture import ErrorRecords


class IBErrors:
    def __init__(self, capture: ErrorRecords) -> None:
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
    capture = ErrorRecords()
    loggers = [logging.getLogger(n) for n in ("ib_async", "eventkit", "asyncio")]
    for lg in loggers:
        lg.addHandler(capture)
    ours: list[str] = []
    sink_id = logger.add(lambda message: ours.append(str(message).strip()), level="ERROR")
    guard = IBErrors(capture)
    try:
        yield guard
    finally:
        logger.remove(sink_id)
        for lg in loggers:
            lg.removeHandler(capture)
    bad = guard.unexpected()
    assert not bad, "ib_async / eventkit / asyncio logged errors:\n" + "\n".join(bad)
    assert not ours, "the simulated gateway or the bridge logged errors:\n" + "\n".join(ours)


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
