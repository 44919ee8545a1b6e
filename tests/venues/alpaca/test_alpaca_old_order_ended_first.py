"""``OrderTracker.followed_instead`` once the old order of a replace not carried out has ended.

Real alpaca-py against the simulated Alpaca: a limit order of 20 AAPL at 150 (the market near
100) fills 3 a bar (a volume participation limit); each ``raw.get_clock()`` moves the replay on
one bar. The re-price's replace is left pending (``slow_replace``) and is not carried out: its
replacement t-p.r1 ends ``canceled`` and the old order is our order again, until it ends too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl
from alpaca_helpers import SESSION_OPEN, collect, config_for, drain, minute_bars, of
from ml4t.backtest import BacktestConfig
from ml4t.backtest.execution.limits import VolumeParticipationLimit
from modify_support import REQUEST, rig
from runtime_support import trading_client

from ml4t_live.events import OrderCancelled, OrderPartiallyFilled, VenueErrorReported
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_the_old_order_followed_again_gives_way_once_it_has_ended():
    """The replace fails (AL-14): the old order is followed again instead of t-p.r1 until it is
    cancelled; then followed_instead names no order (nothing of ours works)."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=1, fail=True)
        r.bar()  # the replace fails: t-p.r1 canceled, the old order fills on
        collect(r.gw.events, lambda seen: bool(of(VenueErrorReported, seen, "t-p")))
        old_id, new_id = r.venue_id("t-p"), r.venue_id("t-p.r1")
        assert r.gw.tracker.followed_instead(new_id) == old_id
        r.gw.cancel("t-p")
        collect(r.gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        assert r.orders()["t-p"][0] == "canceled"
        assert r.gw.tracker.followed_instead(new_id) is None


def test_an_old_order_that_ended_before_its_replacement_is_our_orders_end():
    """A day order: its replace is pending over the close, the old order expires at the end of the
    session, and Alpaca then cancels the replacement. The old order's end is our order's: reported
    once, and the old order is not followed again.
    Failed before: the old order's ``expired`` was dropped (its replacement was followed), so
    t-p.r1's ``canceled`` was taken as a replace not carried out: the expired order was followed
    again as working (followed_instead named it, a cancel went to it: 422 "expired") and our
    order's end was never reported."""
    day1, day2 = minute_bars(3), minute_bars(5, start=SESSION_OPEN + timedelta(days=1))
    sim = SimulatedAlpaca(pl.concat([day1, day2]), config=BacktestConfig(partial_fills_allowed=True),
                          rate_limit_per_minute=None,
                          execution_limits=VolumeParticipationLimit(max_participation=0.003))  # fmt: skip
    sim.start()
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, max_request_attempts=1),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    try:
        gw.connect()
        raw = trading_client(sim)
        day = replace(REQUEST, time_in_force="day")
        gw.place(day)
        raw.get_clock()
        collect(gw.events, lambda seen: bool(of(OrderPartiallyFilled, seen, "t-p")))
        sim.inject("slow_replace", bars=3)
        gw.modify(replace(day, limit_price=149.0, filled_quantity=3))
        raw.get_clock()
        raw.get_clock()  # the old order fills 3 and 3 more; the session ends: it expires
        raw.get_clock()  # the next session: Alpaca cancels the replacement
        seen = collect(gw.events, lambda seen: bool(of(OrderCancelled, seen, "t-p")))
        orders = {o["client_order_id"]: o["status"] for o in sim.orders()}
        assert orders == {"t-p": "expired", "t-p.r1": "canceled"}
        assert [e.reason for e in of(OrderCancelled, seen, "t-p")] == ["expired"]
        assert not of(VenueErrorReported, seen, "t-p")
        assert gw.tracker.followed_instead(str(raw.get_order_by_client_id("t-p.r1").id)) is None
        assert not of(OrderCancelled, drain(gw.events), "t-p")  # (once)
    finally:
        gw.close()
        sim.close()
