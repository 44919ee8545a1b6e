"""Regression (found by review, fixed): AlpacaBroker as the CLI builds it (strategy id set later by LiveEngine): on the restart, the
strategy's own order left working by the last run is reported 'foreign' by the gateway and never
registered with the tracker (gateway.snapshot() runs before ids.start()), so its stream events
(fills, cancels) are dropped."""


import pytest
from alpaca_helpers import config_for, drain, minute_bars
from ml4t.backtest import BacktestConfig, OrderType

from ml4t_live.events import VenueErrorReported
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.broker import AlpacaBroker


@pytest.fixture
def sim():
    venue = SimulatedAlpaca(minute_bars(30, {"AAPL": 100.0}))
    venue.start()
    yield venue
    venue.close()


def test_a_restart_knows_its_own_working_order_is_its_own(sim, tmp_path):
    first = AlpacaBroker(config_for(sim), state_dir=tmp_path)
    first.strategy_id = "Stepper_1a2b3c"  # as LiveEngine sets it
    first.connect(BacktestConfig())
    order = first.submit_order("AAPL", 5, order_type=OrderType.LIMIT, limit_price=50.0)
    first.close()  # killed / open_orders_at_end=keep: the limit stays working
    second = AlpacaBroker(config_for(sim), state_dir=tmp_path)
    second.strategy_id = "Stepper_1a2b3c"
    second.connect(BacktestConfig())
    try:
        events = drain(second.gateway.events)
        foreign = [e for e in events if isinstance(e, VenueErrorReported) and e.code == "foreign_order"]
        assert foreign == [], foreign
        assert second.gateway.tracker.ours(order.order_id) == order.order_id
    finally:
        second.close()
