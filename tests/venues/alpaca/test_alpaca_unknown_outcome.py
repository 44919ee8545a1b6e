"""A submit without a usable answer ends accepted, rejected or LOST; never PENDING, never twice.

Each scenario arms faults on the simulated Alpaca, places one market order through the real
alpaca-py client (``AlpacaGateway.place``), lets the venue fill what it holds, and is scored on
the invariants of the fault catalogue that apply to a single order:

* no duplicate: at most ONE venue order under the client order id;
* no lost fill: the fills the gateway reported add up to what the venue filled, each once;
* never pending forever: the order's events end in a terminal one (filled, rejected, lost)
  and nothing is left to look up;
* position = sum of fills = venue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import MarketOrderRequest
from alpaca_helpers import collect, config_for, drain, minute_bars, of
from ml4t.backtest import OrderSide

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost, OrderPartiallyFilled, OrderRejected
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

CID = "t-unknown"
LOOKUPS = 3  # unknown_order_lookups in these tests
ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries
TERMINAL = (OrderFilled, OrderRejected, OrderLost)


@dataclass
class Scenario:
    name: str
    faults: list[tuple[str, dict[str, Any]]]
    outcome: str  # filled | rejected | lost
    venue_orders: int  # how many orders the venue holds under CID in the end
    extra: dict[str, Any] = field(default_factory=dict)


SCENARIOS = [
    # the venue took the order, the answer is lost or garbled: found by the first look-up
    Scenario("accept-then-504", [("accept_then_504", {})], "filled", 1),
    Scenario("accept-then-drop", [("accept_then_drop", {})], "filled", 1),
    Scenario("truncated-body", [("truncated_body", {})], "filled", 1),
    Scenario("non-json-body", [("non_json_body", {})], "filled", 1),
    Scenario("accept-then-500", [("submit_error", {"status": 500})], "filled", 1),
    Scenario("accept-then-timeout", [("accept_then_delay", {"seconds": 2.0})], "filled", 1),
    # the venue never took it: the look-up says 404, and it is sent once more under the same id
    Scenario("reset", [("connection_reset", {})], "filled", 1),
    Scenario("truncated-not-created", [("truncated_body", {"accepted": False})], "filled", 1),
    Scenario("html-502-not-created", [("non_json_body", {"status": 502, "accepted": False})], "filled", 1),
    Scenario("503-not-created", [("submit_error", {"status": 503, "accepted": False})], "filled", 1),
    # the venue took it, but it cannot say so for a while: the watchdog's look-ups find it
    Scenario("taken, look-ups fail at first",
             [("truncated_body", {}), ("lookup_error", {"count": ATTEMPTS + 1})], "filled", 1),
    # the venue took it and cannot say so at all, but its trade updates do
    Scenario("taken, look-ups always fail",
             [("truncated_body", {}), ("lookup_error", {"count": 100})], "filled", 1),
    # the venue took it and rejected it: the look-up reports the rejection
    Scenario("rejected, answer garbled", [("reject_next", {}), ("non_json_body", {})], "rejected", 1),
    # never taken, and the second attempt is lost too: bounded look-ups, then LOST (not re-sent)
    Scenario("reset twice", [("connection_reset", {"count": 2})], "lost", 0),
    Scenario("not taken, venue cannot tell",
             [("submit_error", {"status": 503, "accepted": False}), ("lookup_error", {"count": 50})], "lost", 0),
]


@pytest.fixture
def sim() -> Iterator[SimulatedAlpaca]:
    venue = SimulatedAlpaca(minute_bars(30, {"AAPL": 100.0}), rate_limit_per_minute=None)
    venue.start()
    yield venue
    venue.close()


@pytest.fixture
def gateway(sim: SimulatedAlpaca) -> Iterator[AlpacaGateway]:
    gw = AlpacaGateway(
        config_for(sim, order_poll_interval=0.2, unknown_order_lookups=LOOKUPS, request_timeout=1.0),
        is_ours=lambda cid: cid.startswith("t-"),
    )
    gw.connect()
    yield gw
    gw.close()


def _terminal(seen: list[Any]) -> bool:
    return any(isinstance(e, TERMINAL) and e.client_order_id == CID for e in seen)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_an_unknown_submit_outcome_is_settled_exactly_once(sim, gateway, scenario: Scenario) -> None:
    for kind, params in scenario.faults:
        sim.inject(kind, **params)
    gateway.place(OrderRequest(CID, "AAPL", OrderSide.BUY, 10))  # never raises a library error
    gateway.end_of_bar(None)  # the venue moves on a bar: what it holds fills
    seen = collect(gateway.events, _terminal, timeout=10.0)
    gateway.end_of_bar(None)
    seen += drain(gateway.events, 0.3)
    mine = [e for e in seen if getattr(e, "client_order_id", None) == CID]
    venue = [o for o in sim.orders() if o["client_order_id"] == CID]
    fills = of(OrderFilled, mine) + of(OrderPartiallyFilled, mine)

    assert len(venue) == scenario.venue_orders  # no duplicate (and nothing invented)
    venue_filled = sum(float(o["filled_qty"]) for o in venue)
    assert sum(f.quantity for f in fills) == venue_filled  # no lost fill, none twice
    assert len({f.exec_id for f in fills}) == len(fills)
    assert sim.account()["positions"].get("AAPL", (0.0, 0.0))[0] == venue_filled  # position = fills = venue
    assert CID not in gateway.stream.unknown  # nothing left pending

    terminal = [type(e) for e in mine if isinstance(e, TERMINAL)]
    if scenario.outcome == "filled":
        assert terminal == [OrderFilled] and venue_filled == 10
        assert [type(e) for e in mine if isinstance(e, (OrderAccepted, OrderFilled))] == [OrderAccepted, OrderFilled]
    elif scenario.outcome == "rejected":
        assert terminal == [OrderRejected] and not of(OrderAccepted, mine) and venue_filled == 0
        assert venue[0]["status"] == "rejected"
    else:
        (lost,) = of(OrderLost, mine)
        assert terminal == [OrderLost] and not of(OrderAccepted, mine) and venue_filled == 0
        assert f"{LOOKUPS} look-ups" in lost.reason and "not re-sent" in lost.reason
    sent = [o for o in sim.orders_received() if o["order"]["client_order_id"] == CID]
    assert len(sent) == scenario.venue_orders  # what reached the venue, rejected orders included


def test_a_lost_order_that_turns_up_later_still_reports_its_fill(sim, gateway) -> None:
    """OrderLost means "taken as not placed"; if Alpaca does report the order afterwards (it was
    placed by hand, or the venue was slow), its fill is still reported, once."""
    sim.inject("connection_reset", count=2)
    gateway.place(OrderRequest(CID, "AAPL", OrderSide.BUY, 3))
    assert of(OrderLost, collect(gateway.events, lambda s: bool(of(OrderLost, s, CID)), timeout=10.0))
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    raw.submit_order(MarketOrderRequest(symbol="AAPL", qty=3, side="buy", time_in_force="day", client_order_id=CID))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, lambda s: bool(of(OrderFilled, s, CID)), timeout=10.0)
    seen += drain(gateway.events, 0.3)
    assert [f.quantity for f in of(OrderFilled, seen, CID)] == [3]
