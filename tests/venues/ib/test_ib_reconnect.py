"""Dropped connections: an order in flight is filled exactly once and never re-sent."""

from __future__ import annotations

from ib_helpers import DROP_ERRORS, config_for, wait_for
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import (
    BrokerDisconnected,
    BrokerReconnected,
    OrderAccepted,
    OrderFilled,
)
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.ib import IBGateway


def test_fill_that_happened_while_disconnected_is_replayed_once(
    sim_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        sim.inject("delay_fills", seconds=0.3, count=1)
        gw.place(OrderRequest("r-1", "AAPL", OrderSide.BUY, 10))
        seen: list = []
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        gw.end_of_bar(
            None
        )  # the bar opens: r-1 fills at the venue; the news is held 0.3 s
        sim.inject("refuse_connections", seconds=1.0)
        sim.inject("drop_connection", client_id=1)
        wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
        wait_for(
            gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15
        )
        fills = [
            e for e in seen if isinstance(e, OrderFilled) and e.client_order_id == "r-1"
        ]
        assert len(fills) == 1 and fills[0].quantity == 10.0
        assert seen.index(fills[0]) < seen.index(
            next(e for e in seen if isinstance(e, BrokerReconnected))
        )
        # the session goes on: a new order after the reconnect fills normally
        gw.place(OrderRequest("r-2", "AAPL", OrderSide.SELL, 10))
        gw.end_of_bar(None)
        wait_for(
            gw.events,
            lambda e: isinstance(e, OrderFilled) and e.client_order_id == "r-2",
            seen=seen,
        )
        assert (
            sum(
                1
                for e in seen
                if isinstance(e, OrderFilled) and e.client_order_id == "r-1"
            )
            == 1
        )
        assert [r.order_ref for r in sim.orders_received] == [
            "r-1",
            "r-2",
        ]  # nothing re-sent
        assert gw.snapshot().positions.get("AAPL") is None
    finally:
        gw.close()


def test_open_order_survives_a_drop_and_fills_after_the_reconnect(
    sim_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        gw.place(OrderRequest("r-open", "AAPL", OrderSide.BUY, 7))
        seen: list = []
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        sim.inject("drop_connection", client_id=1)
        wait_for(
            gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15
        )
        assert [o.client_order_id for o in gw.snapshot().open_orders] == ["r-open"]
        gw.end_of_bar(None)
        wait_for(
            gw.events,
            lambda e: isinstance(e, OrderFilled) and e.client_order_id == "r-open",
            seen=seen,
        )
        assert [r.order_ref for r in sim.orders_received] == ["r-open"]
    finally:
        gw.close()


def test_end_of_bar_during_a_drop_is_sent_after_the_reconnect(
    sim_factory, ib_log_guard
):
    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        gw.place(OrderRequest("r-owed", "AAPL", OrderSide.BUY, 2))
        seen: list = []
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        sim.inject("refuse_connections", seconds=0.5)
        sim.inject("drop_connection", client_id=1)
        wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
        gw.end_of_bar(None)  # the engine finished its bar while the broker was away
        wait_for(
            gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15
        )
        # no further end_of_bar: the owed caught-up signal releases the bar, the order fills
        fill = wait_for(
            gw.events,
            lambda e: isinstance(e, OrderFilled) and e.client_order_id == "r-owed",
            seen=seen,
        )
        assert fill.quantity == 2.0
        assert [r.order_ref for r in sim.orders_received] == ["r-owed"]
    finally:
        gw.close()


def test_place_while_disconnected_refuses_clearly_and_sends_nothing(
    sim_factory, ib_log_guard
):
    import pytest

    from ml4t_live.errors import ConnectionFailed

    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        sim.inject("refuse_connections", seconds=0.5)
        sim.inject("drop_connection", client_id=1)
        seen: list = []
        wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
        with pytest.raises(ConnectionFailed, match="was not sent"):
            gw.place(OrderRequest("r-away", "AAPL", OrderSide.BUY, 1))
        wait_for(
            gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15
        )
        assert sim.orders_received == []
        gw.place(
            OrderRequest("r-away", "AAPL", OrderSide.BUY, 1)
        )  # not sent before: allowed
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        assert [r.order_ref for r in sim.orders_received] == ["r-away"]
    finally:
        gw.close()


def test_an_earlier_days_order_stays_finished_after_the_nightly_restart(
    sim_factory, ib_log_guard
):
    """After the gateway's nightly restart IB reports only the new day's orders and executions
    (the simulator does as TWS does), and the tracker lets go of the earlier day's ib_async
    Trades; what a finished order needs stays: a re-place of it is announced, not re-sent, a
    cancel is refused as filled, and new orders trade."""
    from datetime import timedelta

    import polars as pl
    import pytest
    from ib_helpers import minute_bars

    from ml4t_live.errors import CancelRefused, VenueError

    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    day1 = minute_bars(n=2)
    sim = sim_factory(pl.concat([day1, day1.with_columns(pl.col("timestamp") + timedelta(days=1))]))
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        seen: list = []
        gw.place(OrderRequest("r-day1", "AAPL", OrderSide.BUY, 3))
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        gw.end_of_bar(None)  # bar 0 opens: r-day1 fills
        wait_for(gw.events, lambda e: isinstance(e, OrderFilled), seen=seen)
        sim.inject("gateway_restart", at_bar=2, seconds=0.3)
        gw.end_of_bar(None)  # bar 1
        gw.end_of_bar(None)  # bar 2, the next day's first: the gateway restarts
        wait_for(gw.events, lambda e: isinstance(e, BrokerDisconnected), seen=seen)
        wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15)
        assert gw.lookup(["r-day1"]) == {}  # IB: a new day, yesterday's orders are not listed
        gw.place(OrderRequest("r-day1", "AAPL", OrderSide.BUY, 3))  # announced again
        again = wait_for(gw.events, lambda e: isinstance(e, OrderFilled), seen=seen)
        assert again.client_order_id == "r-day1"
        with pytest.raises(CancelRefused, match="already filled"):
            gw.cancel("r-day1")
        with pytest.raises(VenueError, match="it is filled"):
            gw.modify(OrderRequest("r-day1", "AAPL", OrderSide.BUY, 5))
        gw.place(OrderRequest("r-day2", "AAPL", OrderSide.SELL, 3))
        gw.end_of_bar(None)
        wait_for(gw.events, lambda e: isinstance(e, OrderFilled) and e.client_order_id == "r-day2", seen=seen)
        assert [r.order_ref for r in sim.orders_received] == ["r-day1", "r-day2"]
        assert gw.snapshot().positions.get("AAPL") is None
    finally:
        gw.close()


def test_a_day_order_left_at_the_close_is_cancelled_before_the_nightly_restart(
    sim_factory, ib_log_guard
):
    """The session ends (DAY orders expire) before the night's gateway restart, as at IB, where
    the close comes hours before it: the tracker hears the cancel, and the order is not taken
    for lost when the new day's IB no longer lists it."""
    from datetime import timedelta

    import polars as pl
    from ib_helpers import minute_bars

    from ml4t_live.events import OrderCancelled, OrderLost

    for pattern in DROP_ERRORS:
        ib_log_guard.expect(pattern)
    ib_log_guard.expect(r"Error 202")
    day1 = minute_bars(n=2)
    sim = sim_factory(pl.concat([day1, day1.with_columns(pl.col("timestamp") + timedelta(days=1))]))
    sim.inject("gateway_restart", at_bar=2, seconds=0.3)
    gw = IBGateway(config_for(sim))
    try:
        gw.connect()
        seen: list = []
        gw.end_of_bar(None)  # bar 0
        gw.place(OrderRequest("r-left", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=1.0, time_in_force="day"))
        wait_for(gw.events, lambda e: isinstance(e, OrderAccepted), seen=seen)
        gw.end_of_bar(None)  # bar 1, the day's last
        gw.end_of_bar(None)  # the close (r-left expires), then the restart at the next day's first bar
        wait_for(gw.events, lambda e: isinstance(e, BrokerReconnected), seen=seen, timeout=15)
        ends = [e for e in seen if isinstance(e, (OrderCancelled, OrderLost))]
        assert [type(e) for e in ends] == [OrderCancelled]
        assert seen.index(ends[0]) < seen.index(next(e for e in seen if isinstance(e, BrokerDisconnected)))
    finally:
        gw.close()
