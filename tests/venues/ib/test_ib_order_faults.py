"""IBGateway's order path against the catalogue's IB faults (fault_catalogue.md section A), through
the real ib_async client and the simulated IB Gateway's fault knobs.

Each test checks the invariants that apply: one venue order per client order id, every execution
reported once, rejections with IB's reason, no wait without a bound, unknown never read as empty.
"""

from __future__ import annotations

import pytest
from ib_helpers import config_for, drain, is_, wait_for
from ml4t.backtest import BacktestConfig, OrderSide, OrderType
from ml4t.backtest.config import CommissionType

from ml4t_live.errors import CancelRefused
from ml4t_live.events import (
    BrokerReconnected,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderLost,
    OrderPartiallyFilled,
    OrderRejected,
)
from ml4t_live.protocols import OrderRequest

DROP_ERRORS = (r"Peer closed connection", r"API connection failed", r"Make sure API port")
CHARGING = BacktestConfig(commission_type=CommissionType.PER_SHARE, commission_per_share=0.1)
# fast in-flight checks for the tests (the defaults are 2 s x 3)
FAST = {"inflight_check_interval": 0.2, "inflight_checks": 2}




def about(coid, seen):
    return [type(e).__name__ for e in seen if getattr(e, "client_order_id", None) == coid]


def venue_quantity(sim, asset="AAPL"):
    """The simulated venue's position (the truth the gateway's snapshot must match)."""
    held = sim.account.positions.get(asset)
    return 0.0 if held is None else held[0]


def market(coid, qty=5, side=OrderSide.BUY):
    return OrderRequest(coid, "AAPL", side, qty)


def limit(coid, price, qty=5, side=OrderSide.BUY):
    return OrderRequest(coid, "AAPL", side, qty, OrderType.LIMIT, limit_price=price)


# ----------------------------------------------------------------------------- IB-09 black hole
def test_black_holed_order_is_looked_up_then_reported_lost_and_never_resent(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"order bh-1 \(IB order id \d+\) is LOST")
    ib_log_guard.expect(r"Error 10147, reqId \d+")  # the safety cancel of the lost id
    sim = sim_factory()
    gw = gateway_factory(sim, **FAST)
    gw.connect()
    sim.inject("black_hole_next", count=1)
    gw.place(market("bh-1"))
    seen: list = []
    lost = wait_for(gw.events, is_(OrderLost, "bh-1"), seen=seen, timeout=10)
    assert "2 look-ups by orderRef" in lost.reason and "not re-sent" in lost.reason
    assert about("bh-1", seen) == ["OrderLost"]
    # the session goes on; bh-1 was never re-sent
    gw.place(market("after-bh"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "after-bh"), seen=seen)
    assert [r.order_ref for r in sim.orders_received] == ["bh-1", "after-bh"]
    [(_, lost_id, _)] = sim.black_holed
    assert gw.order_id_high_water >= lost_id
    with pytest.raises(CancelRefused, match="lost"):
        gw.cancel("bh-1")


def test_a_slow_ack_is_found_by_the_look_up_not_lost(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim, **FAST)
    gw.connect()
    sim.inject("delay_acks", seconds=1.5, count=1)
    gw.place(market("slow-1"))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "slow-1"), seen=seen, timeout=5)
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "slow-1"), seen=seen)
    drain(gw.events, seen)
    assert about("slow-1", seen) == ["OrderAccepted", "OrderFilled"]
    assert len(sim.orders_received) == 1


def test_order_black_holed_before_a_drop_is_lost_at_the_resync(
    sim_factory, gateway_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    ib_log_guard.expect(r"order bh-drop is LOST")
    sim = sim_factory()
    gw = gateway_factory(sim, inflight_check_interval=30.0)  # the look-up never runs here
    gw.connect()
    sim.inject("black_hole_next", count=1)
    gw.place(market("bh-drop"))
    sim.inject("drop_connection", client_id=1)
    seen: list = []
    lost = wait_for(gw.events, is_(OrderLost, "bh-drop"), seen=seen)
    assert "after the reconnect" in lost.reason
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen)
    assert [r.order_ref for r in sim.orders_received] == ["bh-drop"]


# ----------------------------------------------------------------------------- IB-05 order ids
def test_order_ids_stay_above_the_high_water_after_a_restart_rolls_next_valid_id_back(
    sim_factory, gateway_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(market("before"))
    gw.end_of_bar(None)
    seen: list = []
    wait_for(gw.events, is_(OrderFilled, "before"), seen=seen)
    before_id = sim.orders_received[-1].order_id
    assert gw.order_id_high_water == before_id
    sim.inject("rollback_next_valid_id", to=1)
    sim.inject("drop_connection", client_id=1)
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen)
    gw.place(market("after", side=OrderSide.SELL))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "after"), seen=seen)
    after_id = sim.orders_received[-1].order_id
    assert after_id > before_id
    assert not any(isinstance(e, OrderRejected) for e in seen)
    assert venue_quantity(sim) == 0.0


def test_reserved_floor_holds_before_connect_after_connect_and_after_a_rollback(
    sim_factory, gateway_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.reserve_order_ids(500)  # the journal's high-water mark, before connect
    assert gw.order_id_high_water == 500
    gw.connect()
    gw.place(limit("floor-1", 50.0))
    wait_for(gw.events, is_(OrderAccepted, "floor-1"))
    assert sim.orders_received[-1].order_id > 500
    gw.reserve_order_ids(900)  # and while connected
    gw.place(limit("floor-2", 50.0))
    wait_for(gw.events, is_(OrderAccepted, "floor-2"))
    assert sim.orders_received[-1].order_id > 900
    sim.inject("rollback_next_valid_id", to=1)
    sim.inject("drop_connection", client_id=1)
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected))
    gw.place(limit("floor-3", 50.0))
    wait_for(gw.events, is_(OrderAccepted, "floor-3"))
    third = sim.orders_received[-1].order_id
    assert third > sim.orders_received[-2].order_id > 900
    high = gw.order_id_high_water
    gw.close()
    assert gw.order_id_high_water == high >= third  # still readable after close
    gw.reserve_order_ids(high + 10)  # and a closed gateway keeps a floor without a call
    assert gw.order_id_high_water == high + 10


def test_a_new_process_reserving_the_journal_floor_never_reuses_a_black_holed_id(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"is LOST")
    ib_log_guard.expect(r"Error 10147, reqId \d+")
    sim = sim_factory()
    first = gateway_factory(sim, **FAST)
    first.connect()
    sim.inject("black_hole_next", count=1)
    first.place(market("unknown-to-ib"))
    wait_for(first.events, is_(OrderLost, "unknown-to-ib"))
    journal_high_water = first.order_id_high_water
    first.close()
    sim.inject("rollback_next_valid_id", to=1)
    second = gateway_factory(sim)
    second.reserve_order_ids(journal_high_water)
    second.connect()
    second.place(limit("next-run", 50.0))
    wait_for(second.events, is_(OrderAccepted, "next-run"))
    assert sim.orders_received[-1].order_id > journal_high_water


# ----------------------------------------------------------------------------- IB-20 / IB-23 refusals
@pytest.mark.parametrize(
    ("kind", "code", "text"),
    [("duplicate_order_id", "103", "Duplicate order id"), ("rate_exceeded", "100", "Max rate")],
)
def test_refused_placement_is_rejected_with_ibs_code_and_text(
    sim_factory, gateway_factory, ib_log_guard, kind, code, text
):
    ib_log_guard.expect(rf"Error {code}, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject(kind, count=1)
    gw.place(market("refused"))
    seen: list = []
    rej = wait_for(gw.events, is_(OrderRejected, "refused"), seen=seen)
    assert rej.code == code and text in rej.reason
    gw.place(market("next"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "next"), seen=seen)
    assert about("refused", seen) == ["OrderRejected"]


# ----------------------------------------------------------------------------- IB-16 201 / Inactive
@pytest.mark.parametrize("status_first", [False, True])
def test_rejection_carries_ibs_reason_whichever_of_201_and_inactive_comes_first(
    sim_factory, gateway_factory, ib_log_guard, status_first
):
    ib_log_guard.expect(r"Error 201, reqId \d+: Order rejected")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("reject_next", reason="LGSZ size too large", status_first=status_first)
    gw.place(market("rej"))
    seen: list = []
    rej = wait_for(gw.events, is_(OrderRejected, "rej"), seen=seen)
    assert rej.code == "201" and "LGSZ size too large" in rej.reason
    gw.place(market("ok"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "ok"), seen=seen)
    assert about("rej", seen)[-1:] == ["OrderRejected"]  # after IB's PreSubmitted, if any
    assert about("rej", seen).count("OrderRejected") == 1


# ----------------------------------------------------------------------------- IB-11 repeats
def test_repeated_status_frames_give_one_accept_one_fill_at_the_execution_price(
    sim_factory, gateway_factory
):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("duplicate_order_status", count=1, times=3)
    gw.place(market("rep"))
    gw.end_of_bar(None)
    seen: list = []
    fill = wait_for(gw.events, is_(OrderFilled, "rep"), seen=seen)
    gw.place(market("flush", side=OrderSide.SELL))  # a later order's news flushes the socket
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "flush"), seen=seen)
    assert about("rep", seen) == ["OrderAccepted", "OrderFilled"]
    assert fill.price == sim.fills[0].price > 0  # not the repeated Filled's avgFillPrice 0


# ----------------------------------------------------------------------------- IB-12 / IB-10
def test_execution_before_open_order_and_without_order_status(sim_factory, gateway_factory):
    sim = sim_factory(config=CHARGING)
    gw = gateway_factory(sim, commission_wait=30.0)  # a lost commission would stall the test
    gw.connect()
    sim.inject("exec_before_open_order", count=1)
    sim.inject("missing_order_status", count=1)
    gw.place(market("early", qty=20))
    gw.end_of_bar(None)
    seen: list = []
    fill = wait_for(gw.events, is_(OrderFilled, "early"), seen=seen)
    assert fill.quantity == 20.0 and fill.commission == pytest.approx(2.0)
    assert gw.snapshot().positions["AAPL"].quantity == venue_quantity(sim) == 20.0


# ----------------------------------------------------------------------------- IB-13 commission
def test_late_commission_is_waited_for(sim_factory, gateway_factory):
    sim = sim_factory(config=CHARGING)
    gw = gateway_factory(sim, commission_wait=3.0)
    gw.connect()
    sim.inject("late_commission", count=1, seconds=0.3)
    gw.place(market("late", qty=10))
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "late"))
    assert fill.commission == pytest.approx(1.0)


@pytest.mark.parametrize("value", ["-1", "1.7976931348623157E308"])
def test_sentinel_commission_waits_for_the_corrected_report(sim_factory, gateway_factory, value):
    sim = sim_factory(config=CHARGING)
    gw = gateway_factory(sim, commission_wait=3.0)
    gw.connect()
    sim.inject("commission_sentinel", count=1, value=value, correct_after=0.2)
    gw.place(market("sentinel", qty=10))
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "sentinel"))
    assert fill.commission == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["missing_commission", "commission_sentinel"])
def test_a_commission_that_never_comes_does_not_hold_the_fill(
    sim_factory, gateway_factory, kind
):
    sim = sim_factory(config=CHARGING)
    gw = gateway_factory(sim, commission_wait=0.3)
    gw.connect()
    params = {"correct_after": -1} if kind == "commission_sentinel" else {}
    sim.inject(kind, count=1, **params)
    gw.place(market("no-comm", qty=10))
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "no-comm"), timeout=5)
    assert (fill.quantity, fill.commission) == (10.0, 0.0)
    assert fill.price == sim.fills[0].price


# ----------------------------------------------------------------------------- IB-18 cancels
@pytest.mark.parametrize("reply", ["10147", "10148"])
def test_refused_cancel_raises_cancel_refused_and_the_order_keeps_working(
    sim_factory, gateway_factory, ib_log_guard, reply
):
    ib_log_guard.expect(rf"Error {reply}, reqId \d+")
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(limit("keep", 50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "keep"), seen=seen)
    sim.inject("cancel_reply", reply=reply)
    with pytest.raises(CancelRefused, match=reply):
        gw.cancel("keep")
    assert [o.client_order_id for o in gw.snapshot().open_orders] == ["keep"]
    gw.cancel("keep")  # IB takes the next one
    wait_for(gw.events, is_(OrderCancelled, "keep"), seen=seen)
    gw.cancel("keep")  # cancelling a cancelled order is a no-op
    assert about("keep", seen) == ["OrderAccepted", "OrderCancelled"]


def test_fill_racing_a_cancel_wins(sim_factory, gateway_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: Filled")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("delay_fills", seconds=0.5, count=1)  # the fill's news is still on its way ...
    gw.place(limit("race", 101.0, qty=4))  # crosses at the next open
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "race"), seen=seen)
    gw.end_of_bar(None)  # ... when the cancel reaches IB: 10148, state Filled
    with pytest.raises(CancelRefused, match="10148"):
        gw.cancel("race")
    drain(gw.events, seen)  # the fill that won is already reported, before its own frames came
    [fill] = [e for e in seen if is_(OrderFilled, "race")(e)]
    assert fill.quantity == 4.0
    assert about("race", seen) == ["OrderAccepted", "OrderFilled"]
    assert gw.snapshot().positions["AAPL"].quantity == venue_quantity(sim) == 4.0  # = the fill
    with pytest.raises(CancelRefused, match="already filled"):
        gw.cancel("race")


def test_late_cancel_confirmation_is_not_a_failure(sim_factory, gateway_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim, cancel_wait=0.2)
    gw.connect()
    gw.place(limit("slow-cancel", 50.0))
    wait_for(gw.events, is_(OrderAccepted, "slow-cancel"))
    sim.inject("cancel_reply", reply="late", seconds=0.6)
    gw.cancel("slow-cancel")  # no answer within cancel_wait: stands as sent, no error
    wait_for(gw.events, is_(OrderCancelled, "slow-cancel"))
    assert gw.snapshot().open_orders == []


def test_a_look_up_that_times_out_is_unknown_not_absent(sim_factory, gateway_factory, ib_log_guard):
    import time

    ib_log_guard.expect(r"order frozen-bh \(IB order id \d+\) is LOST")
    ib_log_guard.expect(r"Error 10147, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=0.4, **FAST)
    gw.connect()
    sim.inject("black_hole_next", count=1)
    gw.place(market("frozen-bh"))
    placed = time.monotonic()
    sim.inject("freeze_gateway", seconds=1.5)  # look-ups in this window time out: not counted
    wait_for(gw.events, is_(OrderLost, "frozen-bh"), timeout=10)
    # two *answered* look-ups were needed, and none could be answered during the freeze
    assert time.monotonic() - placed >= 1.5


# ----------------------------------------------------------------------------- restart look-ups
def test_a_restart_looks_orders_up_by_client_order_id_and_never_places_one_twice(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    first = gateway_factory(sim, inflight_check_interval=30.0)
    first.connect()
    first.place(limit("r-cancel", 50.0))
    wait_for(first.events, is_(OrderAccepted, "r-cancel"))
    first.cancel("r-cancel")
    first.place(limit("r-open", 50.0, qty=2))
    first.place(market("r-fill", qty=3))
    first.end_of_bar(None)
    fill = wait_for(first.events, is_(OrderFilled, "r-fill"))
    sim.inject("black_hole_next", count=1)
    first.place(market("r-vanished"))
    first.close()  # the process dies; IB keeps what it has

    second = gateway_factory(sim)
    second.connect()
    found = second.lookup(["r-cancel", "r-open", "r-fill", "r-vanished", "r-never"])
    assert {c: (v.status, v.filled_quantity) for c, v in found.items()} == {
        "r-cancel": ("cancelled", 0.0),
        "r-open": ("open", 0.0),
        "r-fill": ("filled", 3.0),
    }
    sent = len(sim.orders_received)
    seen: list = []
    second.place(limit("r-cancel", 50.0))  # the same intent again: announced, not re-sent
    wait_for(second.events, is_(OrderCancelled, "r-cancel"), seen=seen)
    second.place(market("r-fill", qty=3))
    again = wait_for(second.events, is_(OrderFilled, "r-fill"), seen=seen)
    assert again.exec_id == fill.exec_id  # the same execution: applied once by its id
    second.place(limit("r-open", 50.0, qty=2))
    wait_for(second.events, is_(OrderAccepted, "r-open"), seen=seen)
    assert len(sim.orders_received) == sent


def test_a_look_up_that_cannot_complete_raises_instead_of_answering_empty(
    sim_factory, gateway_factory
):
    from ml4t_live.errors import ConnectionFailed

    sim = sim_factory()
    gw = gateway_factory(sim, request_timeout=0.4)
    gw.connect()
    gw.place(limit("known", 50.0))
    wait_for(gw.events, is_(OrderAccepted, "known"))
    sim.inject("freeze_gateway", seconds=1.0)
    with pytest.raises(ConnectionFailed, match="state is unknown"):
        gw.lookup(["known"])


def test_daily_gateway_restart_order_in_the_restart_second_is_lost_ids_stay_above(
    sim_factory, gateway_factory, ib_log_guard
):
    for pattern in (*DROP_ERRORS, r"order at-restart is LOST", r"Error 202, reqId \d+"):
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = gateway_factory(sim, inflight_check_interval=30.0)
    gw.connect()
    gw.place(limit("before", 50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "before"), seen=seen)
    gw.cancel("before")  # done at IB: nothing there keeps ib_async's ids up after the restart
    sim.inject("black_hole_next", count=1)  # written in the restart second: no answer, ever
    gw.place(market("at-restart"))
    sim.inject("gateway_restart", seconds=0.3, rollback_to=1)
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen)
    assert about("at-restart", seen) == ["OrderLost"]
    high = gw.order_id_high_water
    gw.place(market("after"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "after"), seen=seen)
    assert sim.orders_received[-1].order_id > high
    assert [r.order_ref for r in sim.orders_received] == ["before", "at-restart", "after"]
    assert gw.snapshot().positions["AAPL"].quantity == venue_quantity(sim) == 5.0


# ----------------------------------------------------------------------------- IB-01 1100 window
def test_no_new_order_is_sent_while_ib_reports_its_connectivity_lost(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.events import BrokerDisconnected

    ib_log_guard.expect(r"Error 110[02], reqId -1")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("nightly_reset", bars=1)
    seen: list = []
    wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
    with pytest.raises(ConnectionFailed, match="1100"):
        gw.place(market("in-window"))
    gw.end_of_bar(None)  # the outage's bar passes: 1102
    wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen)
    gw.place(market("after-window"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "after-window"), seen=seen)
    assert [r.order_ref for r in sim.orders_received] == ["after-window"]


def test_a_resting_order_without_any_order_status_is_still_acknowledged(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("missing_order_status", count=1)
    gw.place(limit("quiet", 50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "quiet"), seen=seen)  # from openOrder alone
    gw.cancel("quiet")
    wait_for(gw.events, is_(OrderCancelled, "quiet"), seen=seen)
    assert about("quiet", seen) == ["OrderAccepted", "OrderCancelled"]


# ----------------------------------------------------------------------------- IB-19 modify race
def test_modify_racing_a_fill_is_refused_and_the_fill_lands(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.events import VenueErrorReported

    ib_log_guard.expect(r"Error 104, reqId \d+: Can't modify a filled order")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("delay_fills", seconds=0.5, count=1)  # the fill's news is on its way ...
    gw.place(limit("mod-race", 101.0, qty=4))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "mod-race"), seen=seen)
    gw.end_of_bar(None)  # ... when the modify reaches IB: 104
    gw.modify(OrderRequest("mod-race", "AAPL", OrderSide.BUY, 6, OrderType.LIMIT, limit_price=101.0))
    refused = wait_for(gw.events, lambda e: isinstance(e, VenueErrorReported), seen=seen)
    assert refused.code == "104" and refused.client_order_id == "mod-race"
    fill = wait_for(gw.events, is_(OrderFilled, "mod-race"), seen=seen)
    assert fill.quantity == 4.0
    gw.place(market("flush"))  # everything about mod-race is in by the next order's fill
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "flush"), seen=seen)
    # the refusal first puts the order back as IB works it (the broker took the change when sent)
    assert about("mod-race", seen) == ["OrderAccepted", "OrderReplaced", "VenueErrorReported", "OrderFilled"]
    (back,) = [e for e in seen if type(e).__name__ == "OrderReplaced"]
    assert (back.quantity, back.limit_price) == (4.0, 101.0)



# ----------------------------------------------------------------------------- whole engine
def test_delivery_faults_leave_the_fills_of_a_strategy_equal_to_the_backtest(sim_factory):
    """Repeated / missing / early status frames, late and sentinel commission reports and
    duplicate executions, scheduled across a run of the unchanged strategy through LiveEngine:
    the live fills are the backtest's, each once."""
    from datetime import UTC, datetime, timedelta

    from ml4t.backtest import DataFeed, Engine

    from ml4t_live import LiveEngine
    from ml4t_live.venues.ib import IBBroker, IBFeed
    from tests.support.market import make_prices
    from tests.support.strategies import MACrossover

    assets = ["AAA", "BBB", "CCC"]
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    prices = make_prices(60, assets, start=start)
    config = BacktestConfig()
    backtest = Engine(DataFeed(prices_df=prices), MACrossover(), config).run()
    assert len(backtest.fills) > 3
    faults = [
        {"kind": "duplicate_order_status", "count": 2, "times": 3, "at_bar": 0},
        {"kind": "late_commission", "count": 2, "seconds": 0.2, "at_bar": 10},
        {"kind": "commission_sentinel", "count": 2, "value": "-1", "correct_after": 0.05, "at_bar": 20},
        {"kind": "exec_before_open_order", "count": 2, "at_bar": 30},
        {"kind": "missing_order_status", "count": 2, "at_bar": 40},
        {"kind": "duplicate_exec_details", "count": 2, "at_bar": 50},
    ]
    sim = sim_factory(prices, config=BacktestConfig(), faults=faults)
    broker = IBBroker(config_for(sim), strategy_id="faults")
    feed = IBFeed(config_for(sim), assets, bar_size="1 min", end=start + timedelta(minutes=60))
    live = LiveEngine(MACrossover(), broker, feed, config=config, session_dir=False).run()

    def key(f):
        return (f.timestamp, f.asset, f.side, f.quantity, f.price)

    assert sorted(map(key, live.fills)) == sorted(map(key, backtest.fills))
    assert len(sim.fills) == len(backtest.fills)  # one venue execution per backtest fill


def test_a_strategy_cancelling_an_order_that_just_filled_gets_false_and_the_fill(
    sim_factory, ib_log_guard
):
    """The fill wins through the whole stack: cancel_order() returns False (IB answered 10148),
    the order ends FILLED and the position moves."""
    from ml4t.backtest import OrderStatus, Strategy

    from ml4t_live import LiveEngine
    from ml4t_live.venues.ib import IBBroker, IBFeed

    ib_log_guard.expect(r"10148")  # ib_async's "Error 10148", the broker's refused-cancel line

    class CancelNextBar(Strategy):
        def __init__(self) -> None:
            self.bar, self.order, self.cancelled = -1, None, None

        def on_data(self, timestamp, data, context, broker) -> None:
            self.bar += 1
            if self.bar == 1:
                self.order = broker.submit_order(
                    "AAPL", 4, OrderSide.BUY, OrderType.LIMIT, limit_price=1000.0
                )
            elif self.bar == 2 and self.order.status is OrderStatus.PENDING:
                self.cancelled = broker.cancel_order(self.order.order_id)

    from ib_helpers import minute_bars

    bars = minute_bars(n=6)
    # the fill happens at the next open; its news is held back past the strategy's next bar
    sim = sim_factory(bars, faults=[{"kind": "delay_fills", "seconds": 3.0, "count": 1}])
    strategy = CancelNextBar()
    broker = IBBroker(config_for(sim), strategy_id="race")
    from datetime import timedelta

    from ib_helpers import START

    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=6))
    live = LiveEngine(strategy, broker, feed, session_dir=False).run()
    assert strategy.cancelled is False
    assert strategy.order.status is OrderStatus.FILLED
    assert [(f.asset, f.quantity) for f in live.fills] == [("AAPL", 4.0)]
    assert venue_quantity(sim) == 4.0


def test_an_order_reported_lost_that_surfaces_later_is_cancelled_not_traded(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.events import VenueErrorReported

    for pattern in (r"is LOST", r"reported lost but IB now shows it", r"Error 10147", r"Error 202"):
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = gateway_factory(sim, **FAST)
    gw.connect()
    sim.inject("black_hole_next", count=1, surface_after=1.5)  # e.g. a dialog in the gateway
    gw.place(limit("ghost", 50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderLost, "ghost"), seen=seen)
    alert = wait_for(gw.events, lambda e: isinstance(e, VenueErrorReported), seen=seen)
    assert (alert.code, alert.client_order_id) == ("lost-order-surfaced", "ghost")
    gw.snapshot()  # a round trip: IB has handled the cancel sent before it
    assert [o.completed_status for o in sim.completed_orders if o.order_ref == "ghost"] == [
        "Cancelled"
    ]
    wait_for(gw.events, is_(OrderCancelled, "ghost"), seen=seen)
    drain(gw.events, seen)
    # followed again once it surfaced: the runtime hears it working, then its cancel confirmed
    assert about("ghost", seen) == ["OrderLost", "VenueErrorReported", "OrderAccepted", "OrderCancelled"]
    assert sim.fills == []


# ----------------------------------------------------------------------------- IB-21 validation
@pytest.mark.parametrize(
    ("code", "text", "logged"),
    [
        (321, "Error validating request.-'bN' : cause - Order size does not conform", r"Warning 321"),
        (110, "The price does not conform to the minimum price variation", r"Error 110"),
        (460, "No trading permissions", r"Error 460"),
    ],
)
def test_a_placement_refused_with_a_validation_code_is_rejected_with_ibs_text(
    sim_factory, gateway_factory, ib_log_guard, code, text, logged
):
    ib_log_guard.expect(logged)
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("refuse_next", code=code, text=text)
    gw.place(limit("invalid", 50.0))
    seen: list = []
    rej = wait_for(gw.events, is_(OrderRejected, "invalid"), seen=seen, timeout=5)
    assert rej.code == str(code) and text in rej.reason
    gw.place(market("valid"))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "valid"), seen=seen)
    assert about("invalid", seen) == ["OrderRejected"]


# ----------------------------------------------------------------------------- lost executions
def test_a_look_up_of_an_order_filled_with_part_of_its_executions_lost_says_ibs_filled_quantity(
    sim_factory, gateway_factory
):
    # IB says Filled 10, only the first 5-share execution ever reached the client or its
    # reqExecutions: the look-up said "filled 5" (the executions' sum replaced IB's count), so the
    # runtime doubted the order instead of making up the missing 5
    sim = sim_factory()
    first = gateway_factory(sim)
    first.connect()
    sim.inject("partial_fill", parts=2)
    sim.inject("withhold_executions", count=1)
    first.place(market("wh", qty=10))
    first.end_of_bar(None)
    seen: list = []
    part = wait_for(first.events, is_(OrderPartiallyFilled, "wh"), seen=seen)
    assert part.quantity == 5.0
    first.place(market("marker", qty=1))  # fills at the next bar's open, with the rest of "wh"
    first.end_of_bar(None)  # the next bar: the rest executes, its execution lost
    wait_for(first.events, is_(OrderFilled, "marker"), seen=seen)
    assert venue_quantity(sim) == 11.0 and not [e for e in seen if isinstance(e, OrderFilled) and e.client_order_id
                                                 == "wh"]  # fmt: skip
    found = first.lookup(["wh"])["wh"]  # in the session
    assert (found.status, found.filled_quantity) == ("filled", 10.0)
    first.close()
    second = gateway_factory(sim)  # a warm restart's look-up
    second.connect()
    found = second.lookup(["wh"])["wh"]
    assert (found.status, found.quantity, found.filled_quantity) == ("filled", 10.0, 10.0)
