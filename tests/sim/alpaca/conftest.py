"""Fixtures for the simulated Alpaca: small deterministic bars, the venue, the REAL alpaca-py clients."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from alpacasim_support import (
    TIMEOUT,
    StockDataStream,
    StockHistoricalDataClient,
    StreamHarness,
    TradingClient,
    TradingStream,
    make_bars,
)

from ml4t_live.sim.alpaca import SimulatedAlpaca


@pytest.fixture
def sim() -> Iterator[SimulatedAlpaca]:
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None)
    venue.start()
    yield venue
    venue.close()


@pytest.fixture
def trading(sim: SimulatedAlpaca) -> TradingClient:
    return TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)


@pytest.fixture
def history(sim: SimulatedAlpaca) -> StockHistoricalDataClient:
    return StockHistoricalDataClient(sim.key_id, sim.secret_key, url_override=sim.base_url)


@pytest.fixture
def trade_stream(sim: SimulatedAlpaca) -> Iterator[StreamHarness]:
    stream = TradingStream(sim.key_id, sim.secret_key, url_override=sim.trade_stream_url)
    harness = StreamHarness(stream, "trades")
    stream.subscribe_trade_updates(harness.handler)
    harness.start()
    sim.wait_until(lambda s: s["trade_listeners"] >= 1, TIMEOUT)
    yield harness
    harness.stop()


@pytest.fixture
def data_stream(sim: SimulatedAlpaca) -> Iterator[StreamHarness]:
    stream = StockDataStream(sim.key_id, sim.secret_key, url_override=sim.data_stream_url)
    harness = StreamHarness(stream, "data")
    stream.subscribe_bars(harness.handler, "AAPL", "MSFT")  # subscribe BEFORE run (else it spins)
    harness.start()
    sim.wait_until(lambda s: s["bar_subscribers"] >= 1, TIMEOUT)
    yield harness
    harness.stop()


