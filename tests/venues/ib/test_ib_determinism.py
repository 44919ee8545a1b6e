"""Determinism: the same limit-order strategy against the same simulated IB Gateway (real
ib_async, step mode) gets the same orders and fills on every run, and they are the backtest's.

The strategy re-quotes every bar (see tests/venues/alpaca/test_alpaca_determinism.py for why such
a strategy is sensitive). IB delivers a limit fill at bar t+1's open on the broker's connection and
bar t+1 on the feed's own connection: before the fill barrier made a round trip on the broker's
connection (``IBGateway.settle_point``) when orders are working, a fill could reach the engine a
bar late (measured: 14 of 547 fills differed from the backtest on 3 assets x 300 bars, and two
runs differed from each other).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ib_helpers import config_for
from ml4t.backtest import BacktestConfig, DataFeed, Engine

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed
from tests.support.market import make_prices
from tests.support.strategies import Requote, fill_key, order_key

ASSETS = ["AAA", "BBB", "CCC"]
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # a NYSE session, 09:30 New York
N_BARS = 120
PRICES = make_prices(N_BARS, ASSETS, start=START)


def run_on_ib(sim_factory, state_dir):
    sim = sim_factory(PRICES, config=BacktestConfig())
    cfg = config_for(sim, max_requests_per_second=0)
    broker = IBBroker(cfg, strategy_id="requote")
    broker.configure(state_dir=state_dir)  # a fresh journal: each run starts cold
    feed = IBFeed(cfg, ASSETS, bar_size="1 min", end=START + timedelta(minutes=N_BARS))
    live = LiveEngine(Requote(), broker, feed, config=BacktestConfig(), session_dir=False,
                      open_orders_at_end="keep")  # fmt: skip
    result = live.run()
    return sorted(map(order_key, result.orders)), sorted(map(fill_key, result.fills))


def test_two_runs_get_the_same_orders_and_fills_as_the_backtest(sim_factory, ib_log_guard, tmp_path):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # the strategy cancels every bar
    engine = Engine(DataFeed(prices_df=PRICES), Requote(), BacktestConfig())
    backtest = engine.run()
    backtest_fills = sorted(map(fill_key, backtest.fills))
    assert len(backtest_fills) > 100, "the strategy must trade for the comparison to prove anything"

    first = run_on_ib(sim_factory, tmp_path / "first")
    second = run_on_ib(sim_factory, tmp_path / "second")

    assert first == second
    assert first[1] == backtest_fills
    assert first[0] == sorted(map(order_key, engine.broker.orders))
