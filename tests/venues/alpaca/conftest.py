"""Fixtures for the Alpaca adapter tests: a simulated Alpaca in step mode and a connected gateway."""

from __future__ import annotations

from collections.abc import Iterator

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
