"""Every pre-trade limit, at and over, through the real alpaca-py client against the simulated
Alpaca: a refused order never reaches the venue (the simulator's order log), the others do."""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for
from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed
from tests.support.risk_probe import (
    N_BARS,
    RISK,
    RiskProbe,
    expected,
    outcomes,
    probe_bars,
)


def test_every_limit_at_and_over_through_the_alpaca_simulator():
    sim = SimulatedAlpaca(probe_bars(SESSION_OPEN), config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = config_for(sim, max_requests_per_minute=100_000, rate_limit_burst=1_000)
        strategy = RiskProbe()
        broker = AlpacaBroker(cfg, strategy_id="probe", risk=RISK)
        feed = AlpacaFeed(cfg, ["AAA", "BBB", "CCC"], end=SESSION_OPEN + timedelta(minutes=N_BARS))
        result = LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False).run()
        received = {o["order"]["client_order_id"] for o in sim.orders_received()}
    finally:
        sim.close()
    assert outcomes(strategy) == expected()
    refused = {o.order_id for o in strategy.orders.values() if o.rejection_code}
    assert not refused & received
    assert {o.order_id for o in strategy.orders.values() if not o.rejection_code} <= received
    assert result.metrics["num_risk_refusals"] == len(refused)
