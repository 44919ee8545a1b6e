"""Step mode is a deterministic hand-over: the GET /v2/clock that ends bar t is answered only after
the venue matched bar t's close and bar t+1's open, so a REST read right after it sees those fills
(real TradingClient; AAPL bar i opens at 100 + i, closes at 100.5 + i)."""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpacasim_support import TIMEOUT, step

from ml4t_live.sim.alpaca import SimulatedAlpaca


def test_a_read_after_the_clock_sees_the_next_bars_open_fill(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    step(sim, trading)  # bar 0 is current
    for i in range(1, 4):
        order = trading.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY, limit_price=100.5 + i))
        trading.get_clock()  # ends bar i - 1: bar i (low 99 + i) fills the limit at its price
        seen = trading.get_order_by_id(order.id)  # no wait: the answer above came after the match
        assert seen.status is OrderStatus.FILLED and seen.filled_avg_price == f"{100.5 + i:g}"
        sim.wait_until(lambda s, i=i: s["bar_index"] >= i, TIMEOUT)


def test_the_last_bars_clock_waits_for_its_close(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    for _ in range(13):  # make_bars(): 10 + 3 bars in regular hours; the 13th is the last
        state = step(sim, trading)
    assert state["bar_index"] == 12 and not state["finished"]
    order = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                                                    time_in_force=TimeInForce.CLS))
    trading.get_clock()  # ends the last bar: its close fills the market-on-close order first
    seen = trading.get_order_by_id(order.id)
    assert seen.status is OrderStatus.FILLED and seen.filled_avg_price == "112.5"
    assert sim.state()["finished"]
