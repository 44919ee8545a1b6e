"""A submit of unknown outcome that a listing of open orders (the reconciliation's snapshot)
showed, whose read by the listed Alpaca id then answers 404 (the simulator's ``order_read_error``
with ``status = 404``: a read by id lagging the listing).

The listing proves the order exists, so a 404 there is never read as gone: the order is never
declared lost, and the watcher asks for it by client order id instead (before, a 404 of the
listed id was taken as "Alpaca has no such order" at every tick and the order stayed of unknown
outcome for good, although its look-up by client order id would have found it). Real alpaca-py
against SimulatedAlpaca (trade stream silent); the watcher's ticks are run on its loop thread.
"""

from __future__ import annotations

from typing import Any

from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _unknown(sim: SimulatedAlpaca, **config: Any) -> AlpacaGateway:
    """A connected gateway whose t-a (buy 10, limit 50: it rests) is of unknown outcome: Alpaca
    took it, the answer was cut and its one look-up got no answer; the trade stream is silent."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, max_request_attempts=1, **config),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        inject(sim, "silence_trade_stream")
        inject(sim, "truncated_body")
        inject(sim, "lookup_error", count=1)
        gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=50.0))
        assert gw.follows_unknown("t-a")
    except BaseException:
        gw.close()
        raise
    return gw


def _listed_then_404(sim: SimulatedAlpaca, gw: AlpacaGateway, lookups_failing: int) -> str:
    """t-a listed by a snapshot whose look-up by client order id got no answer; its reads by the
    listed id answer 404 from now on, its look-ups by client order id the next ``lookups_failing``
    times 503. Its Alpaca id."""
    drain(gw.events)
    inject(sim, "lookup_error", count=1 + lookups_failing)  # the snapshot's, then the watcher's
    (listed,) = gw.snapshot().open_orders
    assert listed.client_order_id == "t-a" and gw.follows_unknown("t-a")
    inject(sim, "order_read_error", order_id=listed.venue_order_id, status=404, count=1000)
    return listed.venue_order_id


def test_a_listed_submit_whose_read_by_id_answers_404_is_never_declared_lost(sim: SimulatedAlpaca) -> None:
    gw = _unknown(sim, unknown_order_lookups=3)
    try:
        _listed_then_404(sim, gw, lookups_failing=1000)
        for _ in range(4 * gw.stream.unknown.limit):
            gw.stream.session.call(gw.stream.resolve_unconfirmed)
        assert not of(OrderLost, drain(gw.events)) and gw.follows_unknown("t-a")
    finally:
        gw.close()


def test_a_listed_submit_whose_read_by_id_answers_404_is_looked_up_by_client_order_id(
    sim: SimulatedAlpaca,
) -> None:
    gw = _unknown(sim)
    try:
        venue_id = _listed_then_404(sim, gw, lookups_failing=0)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-a")] == [venue_id]  # before: []
        assert not of(OrderLost, seen) and not gw.follows_unknown("t-a")
    finally:
        gw.close()
