"""Every pre-trade limit, at and over, through the real ib_async client against the simulated IB:
a refused order never reaches the venue (the simulator's placeOrder log), the others do.

IB streams a bar for every subscribed symbol each interval, so a price cannot age while the feed
is up (a feed that falls behind gives catch-up bars, which never trade): ``max_data_age`` is
proven in shadow, against the in-memory venue and through Alpaca, whose feed skips untraded
symbols."""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, config_for
from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed
from tests.support.risk_probe import (
    N_BARS,
    RISK,
    RiskProbe,
    expected,
    outcomes,
    probe_bars,
)


def test_every_limit_at_and_over_through_the_ib_simulator(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # the probe cancels its two working limits
    sim = sim_factory(probe_bars(START, ccc_ages=False), config=BacktestConfig())
    strategy = RiskProbe()
    broker = IBBroker(config_for(sim), strategy_id="probe", risk=RISK)
    feed = IBFeed(config_for(sim), ["AAA", "BBB", "CCC"], bar_size="1 min", end=START + timedelta(minutes=N_BARS))
    result = LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False).run()
    assert outcomes(strategy) == expected(ccc_ages=False)
    received = {r.order_ref for r in sim.orders_received}
    refused = {o.order_id for o in strategy.orders.values() if o.rejection_code}
    assert not refused & received
    assert {o.order_id for o in strategy.orders.values() if not o.rejection_code} <= received
    assert result.metrics["num_risk_refusals"] == len(refused)
