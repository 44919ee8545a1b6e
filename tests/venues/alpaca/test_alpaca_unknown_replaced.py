"""A submit of unknown outcome that a modify replaced: the adapter's watcher follows the replacement.

The submit's answer is lost and its look-up gets no answer, so the outcome is unknown and the
stream's watcher (``OrderStream.resolve_unconfirmed``) follows it. The modify's own look-up does
find the order, so the broker's modify goes through: Alpaca replaces it with ``t-a.r1`` and the
order under ``t-a`` becomes ``replaced``. The watcher read only the order under ``t-a``: it took
``replaced`` as the order's end (settled, nothing more to follow) and, with the trade stream silent,
the replacement's fill was never reported. Through the real alpaca-py client against SimulatedAlpaca.
"""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderCancelled, OrderFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries


def _limit(price: float) -> OrderRequest:
    return OrderRequest("t-a", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=price)


def test_the_watcher_reports_the_fill_of_the_replacement_of_an_unknown_submit(sim: SimulatedAlpaca) -> None:
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    gw.connect()
    try:
        inject(sim, "silence_trade_stream")  # none of t-a's updates arrive
        inject(sim, "truncated_body")  # Alpaca takes t-a, the answer is cut
        inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
        gw.place(_limit(50.0))
        assert gw.follows_unknown("t-a")
        gw.modify(_limit(150.0))  # its look-up finds t-a now: replaced by t-a.r1 (marketable)
        TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).get_clock()  # a bar: it fills
        (fill,) = sim.fills()
        assert fill.client_order_id == "t-a.r1"
        drain(gw.events)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # one tick of the watcher
        seen = drain(gw.events)
        (filled,) = of(OrderFilled, seen, "t-a")  # was: none (t-a 'replaced' settled it)
        assert filled.exec_id == fill.execution_id and filled.quantity == 10 and filled.cumulative_quantity == 10
        assert not of(OrderCancelled, seen)
        assert not gw.follows_unknown("t-a")
        assert gw.stream.session.call(gw.stream.resync) == 0  # reported once
        assert gw.lookup(["t-a"])["t-a"].status == "filled" and not drain(gw.events)
    finally:
        gw.close()
