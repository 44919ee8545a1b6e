"""A VenueBroker connected to a FakeVenue with its first bar begun (AAA at 100, BBB at 50)."""

from __future__ import annotations

from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig

from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def connected(venue: FakeVenue, **kw) -> VenueBroker:
    broker = VenueBroker(venue, strategy_id="demo", **kw)
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(T0, {"AAA": 100.0, "BBB": 50.0}))
    return broker
