"""An OCO exit pair whose submit is of unknown outcome: its stop leg is reported accepted with its
Alpaca id once the pair is found.

The stop leg carries a client order id Alpaca chose; the journal learns its Alpaca id only from
an ``OrderAccepted`` (a restart finds the leg by that id). The submit's answer is lost and the
trade stream is silent, so the leg's acceptance comes only from whoever finds the pair: the
watcher of unknown outcomes (on the stream's loop) or a snapshot that lists it (engine thread).
Before, they aliased the leg but reported only the take-profit: the stop had no Alpaca id in the
journal and a warm restart declared it lost. Real alpaca-py against SimulatedAlpaca.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca.trading.client import TradingClient
from alpaca_helpers import collect, config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries


@pytest.fixture
def gw(sim: SimulatedAlpaca) -> Iterator[AlpacaGateway]:
    gateway = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    gateway.connect()
    yield gateway
    gateway.close()


def _unknown_oco(sim: SimulatedAlpaca, gw: AlpacaGateway) -> str:
    """10 AAPL bought; the exits t-tp (limit 120) / t-sl (stop 90) sent as one OCO that Alpaca
    takes but whose answer is cut, and whose look-up gets no answer. The stop leg's Alpaca id."""
    gw.place(OrderRequest("t-entry", "AAPL", OrderSide.BUY, 10))
    gw.end_of_bar(None)
    collect(gw.events, lambda seen: bool(of(OrderFilled, seen, "t-entry")))
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body")
    inject(sim, "lookup_error", count=ATTEMPTS)
    gw.place(OrderRequest("t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=120.0, oca_group="g"))
    gw.place(OrderRequest("t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=90.0, oca_group="g"))
    assert gw.follows_unknown("t-tp")
    drain(gw.events)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    (leg,) = raw.get_order_by_client_id("t-tp").legs
    return str(leg.id)


def test_the_watcher_reports_the_stop_leg_of_an_oco_it_finds_accepted_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = _unknown_oco(sim, gw)
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert not gw.follows_unknown("t-tp")


def test_a_snapshot_listing_an_unknown_oco_reports_its_stop_leg_accepted_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = _unknown_oco(sim, gw)
    gw.snapshot()
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
