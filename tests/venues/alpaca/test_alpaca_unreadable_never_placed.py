"""A submit that never reached Alpaca whose read by client order id once answered a body that is not
an order (review rev-lookfix3 finding 1): that answer proves nothing about the order, so it is no
miss but does not make the order known to exist either; the 404s after it count toward its loss.
Before, one unreadable answer marked it as existing for good (UnknownOutcomes.answered): never
declared lost, holding an order slot, ALERTed as one that 'exists at Alpaca'."""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca_helpers import drain, inject, of
from ml4t.backtest import OrderSide, OrderType
from unknown_support import ATTEMPTS

from ml4t_live.events import OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _ticks(gw: AlpacaGateway, n: int) -> list:
    seen: list = []
    for _ in range(n):
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen += drain(gw.events)
    return seen


def test_a_never_placed_submit_read_once_unreadable_is_lost_after_its_404s(sim: SimulatedAlpaca,
                                                                          gw: AlpacaGateway) -> None:  # fmt: skip
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body", accepted=False)  # t-n never created at Alpaca; its answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # its first look-up: 503
    gw.place(OrderRequest("t-n", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    assert gw.follows_unknown("t-n")
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    assert [o.client_order_id for o in raw.get_orders()] == []  # (Alpaca holds no order)
    inject(sim, "lookup_error", count=ATTEMPTS, status=200)  # ONE look-up answered a body that is not an order
    seen = _ticks(gw, 1)
    assert not of(OrderLost, seen)  # (the unreadable answer is no miss)
    assert gw.stream.unknown.known_misses("t-n") == 0  # (nor a sign that it exists)
    seen += _ticks(gw, gw.stream.unknown.limit)  # every read by client order id now answers 404
    assert [e.client_order_id for e in of(OrderLost, seen)] == ["t-n"]
    assert not gw.follows_unknown("t-n")
