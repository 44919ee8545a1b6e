"""A submit of unknown outcome that was replaced: the original and its replacements are reported once.

The submit's answer is lost and its look-up gets no answer, so the outcome is unknown and the
stream's watcher (``OrderStream.resolve_unconfirmed``) follows it, with the trade stream silent.
Through the real alpaca-py client against SimulatedAlpaca.

Here the original had not filled before the replace; one that filled part first (the simulator
replaces it when its fills come in parts over bars, see docs/simulators.md) is reproduced end to
end in test_alpaca_unknown_claim_chain.py: the original reported, its cumulative fills carried
into the replacement, and a modify's replacement asking for what the chain left.
"""

from __future__ import annotations

from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderCancelled, OrderFilled, OrderReplaced
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries


def _limit(price: float) -> OrderRequest:
    return OrderRequest("t-a", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=price)


def _raw(sim: SimulatedAlpaca) -> TradingClient:
    return TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)


def _unknown(sim: SimulatedAlpaca) -> AlpacaGateway:
    """A connected gateway whose submit of t-a (limit 50, resting: the market is near 100) Alpaca
    took but whose outcome stays unknown; the trade stream delivers nothing from now on."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    gw.connect()
    inject(sim, "silence_trade_stream")  # none of t-a's updates arrive
    inject(sim, "truncated_body")  # Alpaca takes t-a, the answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
    gw.place(_limit(50.0))
    assert gw.follows_unknown("t-a")
    return gw


def test_a_modify_that_finds_an_unknown_submit_reports_it_before_replacing_it(sim: SimulatedAlpaca) -> None:
    """The modify's look-up finds t-a: it is settled and reported there (accepted, under its own
    venue id, before the replace), not left to the watcher, which read it from the replacement
    on (what t-a had filled never reported, the replacement's cumulative fills starting at 0)
    and meanwhile still counted it towards OrderLost."""
    gw = _unknown(sim)
    try:
        original = _raw(sim).get_order_by_client_id("t-a")
        gw.modify(_limit(150.0))  # replaced by t-a.r1 (marketable)
        assert not gw.follows_unknown("t-a")  # was: still unknown until the watcher's next tick
        seen = drain(gw.events)
        assert [type(e) for e in seen if isinstance(e, (OrderAccepted, OrderReplaced))] == [OrderAccepted, OrderReplaced]
        (accepted,) = of(OrderAccepted, seen, "t-a")
        assert accepted.venue_order_id == str(original.id)
        _raw(sim).get_clock()  # a bar: t-a.r1 fills, the stream says nothing
        (fill,) = sim.fills()
        assert fill.client_order_id == "t-a.r1"
        assert gw.stream.session.call(gw.stream.resync) > 0  # the silent stream's watchdog finds it
        seen = drain(gw.events)
        (filled,) = of(OrderFilled, seen, "t-a")
        assert filled.exec_id == fill.execution_id and filled.quantity == 10 and filled.cumulative_quantity == 10
        assert not of(OrderAccepted, seen) and not of(OrderCancelled, seen)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # the watcher has nothing left to do
        assert gw.stream.session.call(gw.stream.resync) == 0 and not drain(gw.events)  # reported once
    finally:
        gw.close()


def test_the_watcher_follows_replacements_made_outside_the_gateway(sim: SimulatedAlpaca) -> None:
    """t-a, of unknown outcome, is replaced three times by another client (the last replacement
    marketable, it fills): the watcher's look-up walks replaced_by from t-a to t-a.r3 and reports
    the order once, accepted and filled under the venue's execution id."""
    gw = _unknown(sim)
    try:
        raw = _raw(sim)
        current = raw.get_order_by_client_id("t-a")
        for k, price in ((1, 50.01), (2, 50.02), (3, 150.0)):
            current = raw.replace_order_by_id(current.id, ReplaceOrderRequest(limit_price=price, client_order_id=f"t-a.r{k}"))
        raw.get_clock()  # a bar: t-a.r3 fills
        (fill,) = sim.fills()
        assert fill.client_order_id == "t-a.r3"
        drain(gw.events)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # one tick of the watcher
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-a")) == 1
        (filled,) = of(OrderFilled, seen, "t-a")  # (without the walk: t-a 'replaced', nothing filled)
        assert filled.exec_id == fill.execution_id and filled.quantity == 10 and filled.cumulative_quantity == 10
        assert not of(OrderCancelled, seen)
        assert not gw.follows_unknown("t-a")
        assert gw.stream.session.call(gw.stream.resync) == 0 and not drain(gw.events)  # reported once
    finally:
        gw.close()


def test_a_modify_after_a_replacement_made_elsewhere_takes_the_next_replacement_id(sim: SimulatedAlpaca) -> None:
    """Another client replaced t-a (of unknown outcome) with t-a.r1. Our modify's look-up learns
    of it, so the modify goes out as t-a.r2; counted before the look-up, it reused t-a.r1 and
    Alpaca refused it (422 client_order_id must be unique)."""
    gw = _unknown(sim)
    try:
        raw = _raw(sim)
        first = raw.get_order_by_client_id("t-a")
        raw.replace_order_by_id(first.id, ReplaceOrderRequest(limit_price=51.0, client_order_id="t-a.r1"))
        gw.modify(_limit(52.0))
        mine = raw.get_order_by_client_id("t-a.r2")
        assert float(mine.limit_price) == 52.0 and str(mine.replaces) == str(raw.get_order_by_client_id("t-a.r1").id)
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-a")) == 1 and len(of(OrderReplaced, seen, "t-a")) == 1
    finally:
        gw.close()
