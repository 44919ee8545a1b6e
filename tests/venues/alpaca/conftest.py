"""Fixtures for the Alpaca adapter tests: a simulated Alpaca in step mode and connected gateways."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca_helpers import config_for, minute_bars

from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@pytest.fixture
def sim() -> Iterator[SimulatedAlpaca]:
    venue = SimulatedAlpaca(minute_bars(30, {"AAPL": 100.0, "MSFT": 200.0}))
    venue.start()
    yield venue
    venue.close()


@pytest.fixture
def gateway(sim: SimulatedAlpaca) -> Iterator[AlpacaGateway]:
    gw = AlpacaGateway(
        config_for(sim, order_poll_interval=30.0),
        is_ours=lambda cid: cid.startswith("t-"),
    )
    gw.connect()
    yield gw
    gw.close()


@pytest.fixture
def connect_gateway(sim: SimulatedAlpaca) -> Iterator[Callable[..., AlpacaGateway]]:
    """Connects a gateway to ``sim`` (orders polled every 300 s, ``t-`` ids ours) with the
    :class:`AlpacaConfig` fields given; each is closed at the end of the test."""
    made: list[AlpacaGateway] = []

    def connect(**config: Any) -> AlpacaGateway:
        gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))
        made.append(gw)
        gw.connect()
        return gw

    yield connect
    for gw in reversed(made):
        gw.close()


@pytest.fixture
def gw(connect_gateway: Callable[..., AlpacaGateway]) -> AlpacaGateway:
    """A gateway connected to ``sim`` as ``connect_gateway`` makes it (orders polled every 300 s)."""
    return connect_gateway()
