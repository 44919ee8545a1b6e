"""Determinism: the same limit-order strategy against the same simulated Alpaca (real alpaca-py, step
mode) gets the same orders and fills on every run, and they are the backtest's.

The strategy re-quotes every bar: it cancels its working limit order and places a new one near the
last close (buy when flat, sell when long). Whether bar t's limit fills at bar t+1's open decides
what it does in ``on_data(t+1)``, so a fill that reaches the engine after bar t+1 (the trade stream
and the bars are two sockets) changes everything after it. Before the fix, three identical runs
gave 303 / 297 / 291 fills here where the backtest gives 309. What makes it deterministic:

* the simulator writes a bar's fills to the trade stream before it sends the bar;
* in step mode it answers the end-of-bar ``GET /v2/clock`` only after bar t's close and bar t+1's
  open were matched;
* the gateway's ``end_of_bar`` then reads the working orders over REST and waits (bounded) until
  the trade stream has delivered what that read shows.

No Alpaca rule makes a difference here: a limit order fills at its limit or at a better open, like
the backtest's default fill model.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN, config_for
from ml4t.backtest import BacktestConfig, DataFeed, Engine

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed
from tests.support.market import make_prices
from tests.support.strategies import Requote, fill_key, order_key

ASSETS = ["AAA", "BBB", "CCC"]
N_BARS = 120
PRICES = make_prices(N_BARS, ASSETS, start=SESSION_OPEN)


def run_on_alpaca(state_dir):
    sim = SimulatedAlpaca(PRICES, config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = config_for(sim, max_requests_per_minute=100_000, rate_limit_burst=1_000)
        broker = AlpacaBroker(cfg, strategy_id="requote")
        broker.configure(state_dir=state_dir)  # a fresh journal: each run starts cold
        feed = AlpacaFeed(cfg, ASSETS, end=SESSION_OPEN + timedelta(minutes=N_BARS))
        live = LiveEngine(
            Requote(), broker, feed, config=BacktestConfig(), session_dir=False,
            open_orders_at_end="keep",  # the last bar's quotes stay pending, as in the backtest
        )  # fmt: skip
        result = live.run()
    finally:
        sim.close()
    return sorted(map(order_key, result.orders)), sorted(map(fill_key, result.fills))


def test_two_runs_get_the_same_orders_and_fills_as_the_backtest(tmp_path):
    engine = Engine(DataFeed(prices_df=PRICES), Requote(), BacktestConfig())
    backtest = engine.run()
    backtest_fills = sorted(map(fill_key, backtest.fills))
    backtest_orders = sorted(map(order_key, engine.broker.orders))
    assert len(backtest_fills) > 100, "the strategy must trade for the comparison to prove anything"

    first = run_on_alpaca(tmp_path / "first")
    second = run_on_alpaca(tmp_path / "second")

    assert first == second
    assert first[1] == backtest_fills
    assert first[0] == backtest_orders
