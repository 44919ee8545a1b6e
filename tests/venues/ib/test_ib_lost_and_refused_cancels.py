"""Two ends of an IB order's cancel, through the real ib_async client against the simulated IB:

* an order IB's adapter declared lost (IB-09, black-holed) that IB then works: the runtime's
  cancel of it really goes out (it was refused locally as "already lost"), the order is followed
  in ``book.cancelling`` and, while IB loses the cancels (``cancel_reply`` ``lost``), the cancel
  is sent again; never the order. The strategy keeps seeing it REJECTED (lost);
* an order whose repeated cancel IB refused with 10148 ``state: PendingCancel`` (ib_async takes
  that refusal as the order's end, and then passes on none of IB's later news of it) still ends
  when IB confirms the cancel, though the look-up by orderRef after the refusal failed.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from ib_helpers import START, config_for, is_, wait_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import CancelRefused
from ml4t_live.events import OrderAccepted, OrderCancelled
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.ib import IBBroker, IBFeed

SURFACED = "was reported lost but IB now shows it"


class Ghost(Strategy):
    """A limit buy far below the market on its first bar (black-holed by the test, so IB's
    adapter declares it lost); on its second bar it waits (bounded) until IB works it after all."""

    def __init__(self, surfaced: threading.Event) -> None:
        self.surfaced, self.order, self.bars = surfaced, None, 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
        elif self.bars == 2:
            assert self.surfaced.wait(10), "the black-holed order never surfaced"


def run_ghost(sim, tmp_path, minutes):
    surfaced = threading.Event()
    lines: list[str] = []

    def sink(m):
        lines.append(f"{m.record['level'].name} {m.record['message']}")
        if SURFACED in m.record["message"]:
            surfaced.set()

    sink_id = logger.add(sink, level="INFO")
    strategy = Ghost(surfaced)
    broker = IBBroker(config_for(sim, cancel_wait=0.3, inflight_check_interval=0.2, inflight_checks=2),
                      strategy_id="ghost", state_dir=tmp_path)  # fmt: skip
    broker.cancel_resends = CancelResends(after=0.0)  # an unanswered cancel is due at the next check
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    try:
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="cancel").run()  # fmt: skip
    finally:
        logger.remove(sink_id)
    return strategy, broker, lines


def expect_lost_and_surfaced(guard):
    for pattern in (r"is LOST", r"ALERT order \S+ is lost", SURFACED, r"declared lost but the venue works it"):
        guard.expect(pattern)


def test_a_lost_order_ib_works_after_all_is_cancelled_by_the_runtime_and_its_lost_cancels_sent_again(
    sim_factory, ib_log_guard, tmp_path
):
    expect_lost_and_surfaced(ib_log_guard)
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's confirmation of the cancel that got through
    sim = sim_factory()
    sim.inject("black_hole_next", count=1, surface_after=1.5)
    sim.inject("cancel_reply", reply="lost", count=2)  # the adapter's two: when lost, when surfaced
    strategy, broker, lines = run_ghost(sim, tmp_path, 6)
    cid = strategy.order.order_id
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Cancelled")]
    assert sim.request_count("CancelOrder") == 3, "the runtime's cancel of the surfaced order never went out"
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
    assert (strategy.order.status, strategy.order.rejection_code) == (OrderStatus.REJECTED, "lost")
    assert broker.left_at_venue == [] and not broker.book.cancelling
    assert len(sim.orders_received) == 1 and sim.fills == []  # never re-sent, never traded


def test_a_surfaced_lost_order_whose_cancels_ib_keeps_losing_stays_followed_to_the_end(
    sim_factory, ib_log_guard, tmp_path
):
    """The reviewer's probe: IB loses every cancel. The order is not left working untracked: the
    runtime sends its cancel again during the run and at the end, and lists it left at the venue."""
    expect_lost_and_surfaced(ib_log_guard)
    ib_log_guard.expect(r"ALERT order \S+: the venue never confirmed its cancel")
    sim = sim_factory()
    sim.inject("black_hole_next", count=1, surface_after=1.5)
    sim.inject("cancel_reply", reply="lost", count=20)
    strategy, broker, _ = run_ghost(sim, tmp_path, 6)
    cid = strategy.order.order_id
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Submitted")]
    assert sim.request_count("CancelOrder") >= 4  # the adapter's two, then the runtime's repeats
    assert [o.order_id for o in broker.left_at_venue] == [cid]
    assert (strategy.order.status, strategy.order.rejection_code) == (OrderStatus.REJECTED, "lost")
    assert len(sim.orders_received) == 1


def test_an_order_whose_repeated_cancel_ib_refused_ends_when_ib_confirms_though_the_look_up_failed(
    sim_factory, gateway_factory, ib_log_guard
):
    """The reviewer's probe (rev-resend q3): the look-up by orderRef after the refusal times out
    (IB leaves reqCompletedOrders unanswered), so only IB's own confirmation can end the order."""
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: PendingCancel")
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim, cancel_wait=0.3, request_timeout=0.5)
    gw.connect()
    gw.place(OrderRequest("slow", "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "slow"), seen=seen)
    sim.inject("cancel_reply", reply="late", seconds=1.5)  # IB confirms the cancel 1.5 s later
    gw.cancel("slow")  # unanswered within cancel_wait: stands as sent
    sim.inject("unanswered_completed_orders", count=1)
    with pytest.raises(CancelRefused, match="PendingCancel"):
        gw.cancel("slow")  # the repeat while IB still cancels; the look-up after it times out
    wait_for(gw.events, is_(OrderCancelled, "slow"), seen=seen, timeout=5)
    assert [(o.order_ref, o.status) for o in sim.orders] == [("slow", "Cancelled")]
    assert [type(e).__name__ for e in seen if getattr(e, "client_order_id", None) == "slow"] == [
        "OrderAccepted", "OrderCancelled"
    ]


def test_a_refused_repeat_leaves_the_order_working_until_ib_confirms_the_late_cancel(
    sim_factory, gateway_factory, ib_log_guard
):
    """IB keeps an order whose cancel it confirms late (3 s) working, listed ``PendingCancel`` and
    not among its completed orders, until it confirms. Meanwhile the adapter's look-ups by orderRef
    (its own follow-ups every 0.2 s, and one asked here) say the order is open and its snapshot
    lists it working: the order is not ended early. IB's confirmation ends it, once. (The simulated
    IB used to list the order completed as soon as the cancel arrived, and the look-ups settled it
    before IB confirmed.)"""
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: PendingCancel")
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim, cancel_wait=0.3, request_timeout=0.5, inflight_check_interval=0.2)
    gw.connect()
    gw.place(OrderRequest("slow", "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "slow"), seen=seen)
    sim.inject("cancel_reply", reply="late", seconds=3.0)
    gw.cancel("slow")
    sim.inject("unanswered_completed_orders", count=1)
    with pytest.raises(CancelRefused, match="PendingCancel"):
        gw.cancel("slow")
    during = gw.lookup(["slow"])["slow"].status
    listed = [o.client_order_id for o in gw.snapshot().open_orders]
    wait_for(gw.events, is_(OrderCancelled, "slow"), seen=seen, timeout=8.0)  # IB's 202 comes at 3 s
    assert (during, listed) == ("open", ["slow"])
    assert gw.lookup(["slow"])["slow"].status == "cancelled"
    assert [type(e).__name__ for e in seen if getattr(e, "client_order_id", None) == "slow"] == [
        "OrderAccepted", "OrderCancelled"
    ]


class _NeverSettled:
    """A tracker for which every look-up's find leaves the order undecided (found without an end)."""

    def __init__(self) -> None:
        self.found_times = 0

    def found(self, coid, found) -> None:
        self.found_times += 1

    def undecided(self, coid) -> bool:
        return True


def test_a_refused_cancel_found_without_an_end_is_looked_up_a_bounded_number_of_times(
        sim_factory, gateway_factory, ib_log_guard):  # fmt: skip
    """The follow-up look-ups after a refused cancel end after MISSES look-ups that leave the
    order undecided, found or not (they went on every 60 s for good while it was found)."""
    from ml4t_live.venues.ib.refused_cancels import MISSES, RefusedCancels

    stopped = threading.Event()
    sink = logger.add(lambda m: stopped.set(), level="WARNING",
                      filter=lambda r: "did not settle it" in r["message"])  # fmt: skip
    try:
        sim = sim_factory()
        gw = gateway_factory(sim, inflight_check_interval=0.001)
        gw.connect()
        gw.place(OrderRequest("kept", "AAPL", OrderSide.BUY, 3, OrderType.LIMIT, limit_price=50.0))
        wait_for(gw.events, is_(OrderAccepted, "kept"))  # working at IB: every look-up finds it
        tracker, settler = gw._orders_(), _NeverSettled()
        follower = RefusedCancels(tracker.session, settler, tracker._inflight)

        async def refused() -> None:
            follower.refused("kept")

        gw._call(refused())
        assert stopped.wait(15), f"still following after {settler.found_times} look-ups that found it"
    finally:
        logger.remove(sink)
    assert settler.found_times == MISSES
