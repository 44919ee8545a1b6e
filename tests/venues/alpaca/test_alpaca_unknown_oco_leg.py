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

from alpaca.trading.client import TradingClient
from alpaca_helpers import drain, inject, of
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost, OrderPartiallyFilled
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_the_watcher_reports_the_stop_leg_of_an_oco_it_finds_accepted_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw)
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    assert not gw.follows_unknown("t-tp")


def test_a_snapshot_listing_an_unknown_oco_reports_its_stop_leg_accepted_with_its_alpaca_id(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw)
    gw.snapshot()
    seen = drain(gw.events)
    assert of(OrderAccepted, seen, "t-tp")
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]


def test_the_watcher_reports_the_stop_leg_of_an_oco_the_trade_stream_reported_open(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """The stream reports the take-profit "new" (so its outcome is "open"): the watcher still
    walks the pair and aliases and reports the stop leg. Before, it settled the entry at once:
    the leg was never ours, its updates (its fill) dropped as foreign."""
    leg_id = unknown_oco(sim, gw, silent=False)
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    seen = drain(gw.events)
    assert [e.venue_order_id for e in of(OrderAccepted, seen, "t-sl")] == [leg_id]
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    assert gw.tracker.ours(str(raw.get_order_by_id(leg_id).client_order_id)) == "t-sl"
    assert not gw.follows_unknown("t-tp")
    gw.snapshot()
    assert not of(OrderAccepted, drain(gw.events), "t-sl")  # reported once


def test_the_stop_leg_filled_before_the_watcher_finds_the_pair_is_reported_by_its_execution(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """The stop leg (stop 150, above the market: it triggers at the next bar) filled while the
    pair was of unknown outcome: its fill is reported under Alpaca's execution id, read from the
    activities. Before, the leg's report read no executions: a made-up id, a reconstructed fill."""
    leg_id = unknown_oco(sim, gw, stop=150.0)
    gw.end_of_bar(None)  # (step mode: the next bar opens; the leg fills, the stream silent)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    assert str(raw.get_order_by_id(leg_id).status.value) == "filled"
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    fills = [e for e in drain(gw.events) if isinstance(e, OrderFilled | OrderPartiallyFilled)]
    assert [(e.client_order_id, e.quantity) for e in fills] == [("t-sl", 10)]
    assert not fills[0].reconstructed
    assert not fills[0].exec_id.startswith(leg_id)


def test_an_oco_the_trade_stream_reported_is_never_lost_to_walks_that_get_no_answer(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """The take-profit exists (the stream reported it); the watcher walks the pair for its stop
    leg and gets no answer ``unknown_order_lookups`` times: nothing is declared lost, the pair
    rests ``unknown_order_lookups - 1`` ticks (failed walks back off as failed look-ups do), then
    is walked again and found."""
    leg_id = unknown_oco(sim, gw, silent=False)
    limit = gw.config.unknown_order_lookups
    inject(sim, "lookup_error", count=ATTEMPTS * limit)
    for _ in range(limit):
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
    assert not of(OrderLost, drain(gw.events), "t-sl")
    assert gw.follows_unknown("t-tp")
    for _ in range(limit - 1):  # resting: not walked (the venue would answer now)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        assert not of(OrderAccepted, drain(gw.events), "t-sl")
    gw.stream.session.call(gw.stream.resolve_unconfirmed)
    assert [e.venue_order_id for e in of(OrderAccepted, drain(gw.events), "t-sl")] == [leg_id]
