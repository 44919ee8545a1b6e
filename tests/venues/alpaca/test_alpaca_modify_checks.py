"""A modify's count and its check, when fills, reads and replaces interleave (modify.Modifier).

Real alpaca-py against the simulated Alpaca: a limit order of 20 AAPL at 150 (the market near
100) fills 3 a bar (a volume participation limit); each ``raw.get_clock()`` moves the replay on
one bar (step mode). The races are made by the simulator's faults, not by patching the client:
``stale_order_read`` (a GET lagging the stream), ``slow_replace`` (a replace left
``pending_replace`` while the old order fills), ``step_before_replace`` (a fill before the replace).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from alpaca_helpers import collect
from modify_support import REQUEST, rig

from ml4t_live.events import VenueErrorReported
from ml4t_live.venues.alpaca.modify import MAX_TRIES
from ml4t_live.venues.alpaca.submit import OrderRefused


def test_a_fill_the_stream_reported_before_the_modifys_read_shows_it_is_counted_once():
    """The stream reported the old order's second fill (6 filled) but the modify's GET still shows
    3 (a REST read lagging the stream). The PATCH asks 20 - 6 = 14 (the tracker's count); the old
    order ends replaced with 6, all of which the PATCH counted: nothing to cut.
    Failed before: the check took the GET's 3 as what the PATCH counted of the old order, saw 3
    'more' and cut the replacement to 11 (17 bought for 20, and a false WARNING)."""
    with rig() as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.bar(filled_to=6)
        r.sim.inject("stale_order_read")
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        assert [form.qty for _, form in r.sim.replaces_received()] == [14]
        for _ in range(6):
            r.bar()
        r.bar(filled_to=20)
        assert r.orders() == {"t-p": ("replaced", "20", "6"), "t-p.r1": ("filled", "14", "14")}
        assert r.bought() == 20
        assert r.logged("WARNING") == [] and r.logged("ERROR") == []


def test_a_modify_while_the_last_replace_is_pending_sends_nothing():
    """The first modify's replace stays ``pending_replace`` for 2 bars (slow_replace) and the old
    order fills 3 more meanwhile. A second modify before that replace is checked is refused with
    nothing sent; the end of bar's check, once Alpaca carried the replace out, cuts r1 down.
    Failed before: the second modify went ahead (a PATCH of r1, refused by Alpaca while it was
    pending_new: VenueRequestFailed, not OrderRefused)."""
    with rig() as r:
        r.reprice_with_slow_replace(bars=2)
        with pytest.raises(OrderRefused, match="the last replace of t-p is not checked yet"):
            r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))
        assert [form.qty for _, form in r.sim.replaces_received()] == [17]
        r.bar(filled_to=6)  # the old order fills 3 while its replace is pending
        r.bar()  # Alpaca carries the replace out (r1 of 17 works)
        r.gw.modifier.check_replaces()  # the end of bar's check
        (_, cut), = r.sim.replaces_received()[1:]
        for _ in range(8):
            r.bar()
        r.bar(filled_to=20)
        assert r.orders()["t-p"] == ("replaced", "20", "6") and r.orders()["t-p.r2"][0] == "filled"
        assert cut.qty == 20 - 6 - float(r.orders()["t-p.r1"][2])
        assert r.bought() == 20


def test_a_modify_while_the_old_order_cannot_be_read_does_not_drop_its_check():
    """The trade stream is silent; the old order fills 3 more before Alpaca replaces it
    (step_before_replace) and then cannot be read for two GETs (order_read_error): the check
    right after the PATCH and the re-check at a second modify. The second modify is refused with
    nothing sent; the end of bar's check reads the old order and cuts r1 down to 14.
    Failed before: the second modify PATCHed r1 for 17 (the old order's late fill unknown) and
    its check took the first one's place: 23 bought for 20."""
    with rig(max_request_attempts=1) as r:
        r.sim.inject("silence_trade_stream")
        r.gw.place(REQUEST)
        r.bar()
        assert r.bought() == 3
        r.sim.inject("order_read_error", order_id=r.venue_id("t-p"), skip=1, count=2)
        r.sim.inject("step_before_replace")
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        with pytest.raises(OrderRefused, match="the last replace of t-p is not checked yet"):
            r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))
        r.gw.modifier.check_replaces()
        assert [form.qty for _, form in r.sim.replaces_received()] == [17, 14]
        for _ in range(8):
            r.bar()
        assert r.orders() == {"t-p": ("replaced", "20", "6"), "t-p.r1": ("replaced", "17", "0"),
                              "t-p.r2": ("filled", "14", "14")}  # fmt: skip
        assert r.bought() == 20


def test_a_replacement_that_cannot_be_read_is_checked_again_at_the_next_bar():
    """The old order fills 3 more before Alpaca replaces it (6 in all); the check reads it, but
    the replacement r1 cannot be read (order_read_error: the modify's GET, the check's GET of the
    old order, then r1's). The check is kept: the end of bar's check cuts r1 down to 14.
    Failed before: an ERROR only, the check was gone and r1 bought 17 (23 for 20)."""
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.sim.inject("step_before_replace")
        r.sim.inject("order_read_error", skip=2)
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        assert [form.qty for _, form in r.sim.replaces_received()] == [17]
        r.gw.modifier.check_replaces()
        assert [form.qty for _, form in r.sim.replaces_received()] == [17, 14]
        for _ in range(6):
            r.bar()
        r.bar(filled_to=20)
        assert r.orders()["t-p.r2"] == ("filled", "14", "14") and r.bought() == 20
        assert r.logged("ERROR") == []


def test_a_cancel_that_gets_no_answer_is_tried_again_at_the_next_bar():
    """The book says t-p filled 14 (Alpaca's order: 3, e.g. a replacement adopted after a restart):
    the modify PATCHes 6 and the replace stays pending while the old order fills 3 more: 17 + 6 is
    more than 20, so the check cancels r1; that DELETE gets a 503 and is not carried out
    (cancel_error). The check is kept and the next end of bar cancels r1.
    Failed before: an ERROR only; r1 stayed working."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=2, filled_quantity=14)
        assert [form.qty for _, form in r.sim.replaces_received()] == [6]
        r.bar(filled_to=6)
        r.sim.inject("cancel_error")
        r.bar()  # carried out; r1 of 6 works
        r.gw.modifier.check_replaces()
        assert r.orders()["t-p.r1"][0] != "canceled"
        r.gw.modifier.check_replaces()
        assert r.orders()["t-p.r1"][0] == "canceled"


def test_a_check_that_never_gets_an_answer_gives_up_with_one_alert():
    """The old order cannot be read after the PATCH, at any end of bar (order_read_error): the
    check is tried MAX_TRIES more times, then given up with one ERROR "ALERT"; the order may be
    modified again after that."""
    with rig(max_request_attempts=1) as r:
        r.gw.place(REQUEST)
        r.bar(filled_to=3)
        r.sim.inject("order_read_error", order_id=r.venue_id("t-p"), skip=1, count=MAX_TRIES + 2)
        r.gw.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))
        for _ in range(MAX_TRIES + 1):
            r.gw.modifier.check_replaces()
        alerts = [line for line in r.logged("ERROR") if line.startswith("ERROR ALERT")]
        assert len(alerts) == 1 and "t-p" in alerts[0], r.lines
        assert len(r.logged("WARNING")) == MAX_TRIES
        r.gw.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))  # not refused any more
        assert len(r.sim.replaces_received()) == 2


def test_a_cut_down_that_gets_no_answer_is_tried_again_at_the_next_bar():
    """The replace stays pending for 2 bars (slow_replace) while the old order fills 3 more; the
    end of bar's check then PATCHes r1 down to 14, but that PATCH gets a 503 and is not carried
    out (replace_error), and the look-up of t-p.r2 finds nothing (replace_unconfirmed). The check
    is kept: the next end of bar cuts r1 down (as t-p.r3).
    Failed before: no check followed the unconfirmed cut; r1 bought 17 (23 for 20)."""
    with rig(max_request_attempts=1) as r:
        r.reprice_with_slow_replace(bars=2)
        r.bar(filled_to=6)
        r.bar()  # carried out: r1 of 17 works (and meets this bar)
        r.sim.inject("replace_error")
        r.gw.modifier.check_replaces()
        assert [form.qty for _, form in r.sim.replaces_received()] == [17]  # (the 503 carried nothing out)
        r.gw.modifier.check_replaces()
        (_, cut), = r.sim.replaces_received()[1:]
        assert cut.client_order_id == "t-p.r3"
        for _ in range(8):
            r.bar()
        r.bar(filled_to=20)
        assert r.bought() == 20 and r.orders()["t-p.r3"][0] == "filled"


def test_a_cancel_retried_after_it_was_taken_is_that_cancel():
    """As in the test above, the check cancels r1; Alpaca takes the DELETE (r1 stays
    pending_cancel: lose_cancel) but its answer is a 503 (cancel_error, carried out), and the
    retry is refused 422 "already pending_cancel": that is the cancel, not a failure.
    Failed before: an ERROR "could not cut down the replacement ...\""""
    with rig(max_request_attempts=2, reconnect_initial_delay=0.01) as r:
        r.reprice_with_slow_replace(bars=2, filled_quantity=14)
        r.bar(filled_to=6)
        r.sim.inject("lose_cancel", bars=1)
        r.sim.inject("cancel_error", carried_out=True)
        r.bar()
        r.gw.modifier.check_replaces()
        assert r.orders()["t-p.r1"][0] == "pending_cancel"
        assert r.logged("ERROR") == [], r.lines
        assert any("had taken the cancel" in line for line in r.logged("INFO"))
        r.gw.modifier.check_replaces()  # nothing is kept: nothing more is sent
        r.bar()
        assert r.orders()["t-p.r1"][0] == "canceled"


def test_a_chain_that_traded_more_than_asked_is_an_error_the_engine_sees():
    """The replace stays pending for 2 bars while the old order fills 3 more (6); r1 (17) then
    fills 3 a bar while nobody checks (no end of bar): 5 bars later it has filled 15, so the chain
    has 21 for 20. The check says so at once in an ERROR and in a VenueErrorReported (over_filled,
    which the engine's fill barrier shows at DEBUG: tests/engine/test_venue_error_levels.py), and
    cancels what r1 still asks. Failed before: a WARNING only ("cancelled, nothing is left")."""
    with rig(bars=24) as r:
        r.reprice_with_slow_replace(bars=2)
        r.bar(filled_to=6)
        for _ in range(4):
            r.bar()
        r.bar(filled_to=21)
        r.gw.modifier.check_replaces()
        (error,) = r.logged("ERROR")  # said when found, once
        assert "21, 1 more than the 20 asked" in error and error.endswith("; the replacement is cancelled"), error
        seen = collect(r.gw.events, lambda s: any(isinstance(e, VenueErrorReported) for e in s))
        (event,) = [e for e in seen if isinstance(e, VenueErrorReported)]
        assert (event.code, event.client_order_id) == ("over_filled", "t-p")
        assert "21, 1 more than the 20 asked" in event.message, event
        assert event.message.endswith("; the replacement is cancelled"), event
        assert r.orders()["t-p.r1"] == ("canceled", "17", "15") and r.bought() == 21
