"""A trailing stop placed through AlpacaBroker (real alpaca-py, simulated Alpaca, step mode) is
TRIGGERED and FILLED at the bar and price where ml4t.backtest fills the same TRAILING_STOP order
on the same bars.

Bars (one a minute from the session open): both assets rise 1 a bar (high = open + 1,
low = open - 1) for bars 0-7; on bar 8 AAA dips inside the bar (open 107, low 104: the stop
is hit intrabar) and BBB gaps down (open 103: below the stop before the bar trades). The strategy
buys 10 of each at bar 1's close, and once it holds them places a SELL trailing stop of 2.50.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.enums import OrderType as AlpacaOrderType
from alpaca_helpers import SESSION_OPEN, config_for
from ml4t.backtest import (
    BacktestConfig,
    DataFeed,
    Engine,
    OrderSide,
    OrderType,
    Strategy,
)

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

ASSETS = ("AAA", "BBB")
N_BARS = 12
TRAIL = 2.5
DROP_BAR = 8
#: bar 8's open per asset: AAA stays above the stop (intrabar trigger), BBB gaps below it
DROP_OPEN = {"AAA": 107.0, "BBB": 103.0}


def trailing_bars() -> pl.DataFrame:
    rows = []
    for i in range(N_BARS):
        for asset in ASSETS:
            if i < DROP_BAR:
                o, h, lo, c = 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i
            else:  # bar 8 and after: down at 104 and flat
                o = DROP_OPEN[asset] if i == DROP_BAR else 104.0
                h, lo, c = o + 0.5, min(o, 104.0) - (0.0 if i == DROP_BAR else 0.5), 104.0
            rows.append(
                {
                    "timestamp": SESSION_OPEN + timedelta(minutes=i),
                    "asset": asset,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": 10_000.0,
                }
            )
    return pl.DataFrame(rows)


BARS = trailing_bars()


class BuyThenTrail(Strategy):
    """Buy 10 at bar 1; once the position is held, protect it with a SELL trailing stop."""

    def __init__(self) -> None:
        self.bar = -1
        self.trailing: set[str] = set()

    def on_data(self, timestamp, data, context, broker):
        self.bar += 1
        for asset in sorted(data):
            position = broker.get_position(asset)
            if self.bar == 1:
                broker.submit_order(asset, 10, OrderSide.BUY)
            elif position is not None and position.quantity > 0 and asset not in self.trailing:
                self.trailing.add(asset)
                broker.submit_order(
                    asset,
                    10,
                    OrderSide.SELL,
                    order_type=OrderType.TRAILING_STOP,
                    trail_amount=TRAIL,
                )


def order_key(order):
    return (order.created_at, order.asset, order.side, float(order.quantity), order.order_type)


def fill_key(fill):
    return (fill.timestamp, fill.asset, fill.side, fill.quantity, round(fill.price, 9))


def test_trailing_stop_triggers_and_fills_where_the_backtest_fills_it():
    config = BacktestConfig()
    engine = Engine(DataFeed(prices_df=BARS), BuyThenTrail(), config)
    backtest = engine.run()
    backtest_orders = list(engine.broker.orders)

    # the bars must make the backtest's trailing stop trigger, once intrabar and once on a gap
    drop = SESSION_OPEN + timedelta(minutes=DROP_BAR)
    exits = {f.asset: f for f in backtest.fills if f.side is OrderSide.SELL}
    assert sorted(exits) == list(ASSETS), backtest.fills
    assert {a: (f.timestamp, f.price) for a, f in exits.items()} == {
        # highest high before the drop: 108 (bar 7) -> stop 105.5; AAA's bar 8 trades through it
        "AAA": (drop, 105.5),
        # BBB opens at 103, already below the stop: fills at the open
        "BBB": (drop, 103.0),
    }

    sim = SimulatedAlpaca(BARS, config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = config_for(sim, max_requests_per_minute=100_000, rate_limit_burst=1_000)
        broker = AlpacaBroker(cfg, strategy_id="trail")
        feed = AlpacaFeed(cfg, list(ASSETS), end=SESSION_OPEN + timedelta(minutes=N_BARS))
        live = LiveEngine(BuyThenTrail(), broker, feed, config=config, session_dir=False).run()
        venue_orders = sim.orders()
        raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
        trailing = [
            raw.get_order_by_client_id(o["client_order_id"])
            for o in venue_orders
            if o["type"] == "trailing_stop"
        ]
        positions = sim.account()["positions"]
    finally:
        sim.close()

    # the same orders, on the same bars, and the same fills at the same prices
    assert sorted(map(order_key, live.orders)) == sorted(map(order_key, backtest_orders))
    assert sorted(map(fill_key, live.fills)) == sorted(map(fill_key, backtest.fills))

    # what alpaca-py reads back from the venue: two trailing stops of 2.50, filled at the stop / open
    assert len(trailing) == 2
    by_symbol = {o.symbol: o for o in trailing}
    for asset in ASSETS:
        order = by_symbol[asset]
        assert order.type is AlpacaOrderType.TRAILING_STOP
        assert float(order.trail_price) == TRAIL
        assert order.status is OrderStatus.FILLED
        assert float(order.filled_qty) == 10
        assert float(order.filled_avg_price) == exits[asset].price
        assert order.filled_at is not None
    assert {a: q for a, (q, _cost) in positions.items() if q} == {}
