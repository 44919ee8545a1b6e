"""IBGateway through the real ib_async against the simulated IB Gateway on 127.0.0.1 (step mode)."""

from __future__ import annotations

import pytest
from ib_helpers import drain, is_, wait_for
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.errors import CancelRefused, LiveTradingRefused
from ml4t_live.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
)
from ml4t_live.protocols import OrderRequest




def test_connect_returns_the_paper_account_snapshot(sim_factory, gateway_factory):
    sim = sim_factory(account="DU1234567")
    snap = gateway_factory(sim).connect()
    assert snap.account_id == "DU1234567" and snap.is_paper
    assert snap.cash > 0 and snap.equity == pytest.approx(snap.cash)
    assert snap.positions == {} and snap.open_orders == [] and snap.executions == []


def test_live_account_is_refused_without_the_opt_in_and_confirmation(
    sim_factory, gateway_factory
):
    sim = sim_factory(account="U1234567")
    with pytest.raises(LiveTradingRefused, match="U1234567"):
        gateway_factory(sim).connect()
    asked = []
    with pytest.raises(LiveTradingRefused, match="not confirmed"):
        gateway_factory(
            sim, allow_live=True, confirm_live=lambda a: asked.append(a) or False
        ).connect()
    assert asked == ["U1234567"]
    snap = gateway_factory(sim, allow_live=True, confirm_live=lambda a: True).connect()
    assert snap.account_id == "U1234567" and not snap.is_paper


def test_market_order_fills_once_at_the_next_bar_with_commission(
    sim_factory, gateway_factory
):
    from ml4t.backtest import BacktestConfig
    from ml4t.backtest.config import CommissionType

    sim = sim_factory(
        config=BacktestConfig(
            commission_type=CommissionType.PER_SHARE, commission_per_share=0.1
        )
    )
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(OrderRequest("t-mkt-1", "AAPL", OrderSide.BUY, 10))
    gw.place(
        OrderRequest("t-mkt-1", "AAPL", OrderSide.BUY, 10)
    )  # same id: never sent twice
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "t-mkt-1"), seen=seen)
    gw.end_of_bar(None)  # step mode: release the first bar, the order fills at its open
    fill = wait_for(gw.events, is_(OrderFilled, "t-mkt-1"), seen=seen)
    assert (fill.asset, fill.side, fill.quantity, fill.price) == (
        "AAPL",
        OrderSide.BUY,
        10.0,
        100.0,
    )
    assert fill.commission == pytest.approx(1.0) and fill.cumulative_quantity == 10.0
    assert [r.order_ref for r in sim.orders_received] == ["t-mkt-1"]
    snap = gw.snapshot()
    assert snap.positions["AAPL"].quantity == 10.0
    assert [e.exec_id for e in snap.executions] == [fill.exec_id]


@pytest.mark.parametrize(
    ("order_type", "kw", "ib_type", "lmt", "aux"),
    [
        (OrderType.LIMIT, {"limit_price": 50.0}, "LMT", 50.0, None),
        (OrderType.STOP, {"stop_price": 150.0}, "STP", None, 150.0),
        (
            OrderType.STOP_LIMIT,
            {"stop_price": 150.0, "limit_price": 151.0},
            "STP LMT",
            151.0,
            150.0,
        ),
        (OrderType.TRAILING_STOP, {"trail_amount": 2.5}, "TRAIL", None, 2.5),
        (OrderType.MOC, {}, "MOC", None, None),
    ],
)
def test_every_order_type_reaches_ib_as_its_ib_type(
    sim_factory, gateway_factory, order_type, kw, ib_type, lmt, aux
):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    side = OrderSide.SELL if order_type is OrderType.TRAILING_STOP else OrderSide.BUY
    gw.place(OrderRequest("t-type", "AAPL", side, 5, order_type, **kw))
    wait_for(gw.events, lambda e: isinstance(e, (OrderAccepted, OrderRejected)))
    (rec,) = sim.orders_received
    assert (rec.order_type, rec.lmt_price, rec.aux_price, rec.order_ref) == (
        ib_type,
        lmt,
        aux,
        "t-type",
    )
    assert rec.quantity == 5.0 and rec.action == (
        "SELL" if side is OrderSide.SELL else "BUY"
    )


def test_moc_fills_at_the_close_of_the_bar(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.end_of_bar(None)  # bar 1 opens
    gw.place(OrderRequest("t-moc", "AAPL", OrderSide.BUY, 3, OrderType.MOC))
    wait_for(gw.events, is_(OrderAccepted, "t-moc"))
    gw.end_of_bar(None)  # bar 1 closes: MOC fills at its close
    fill = wait_for(gw.events, is_(OrderFilled, "t-moc"))
    assert fill.quantity == 3.0 and fill.price == pytest.approx(99.7)


def test_limit_order_modify_then_cancel(sim_factory, gateway_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's "Order Canceled" confirmation
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(
        OrderRequest(
            "t-lmt", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=50.0
        )
    )
    wait_for(gw.events, is_(OrderAccepted, "t-lmt"))
    gw.modify(
        OrderRequest(
            "t-lmt", "AAPL", OrderSide.BUY, 12, OrderType.LIMIT, limit_price=51.0
        )
    )
    replaced = wait_for(gw.events, is_(OrderReplaced, "t-lmt"))
    assert (replaced.quantity, replaced.limit_price) == (12, 51.0)
    first, second = sim.orders_received
    assert not first.modify and second.modify and second.order_id == first.order_id
    assert (second.quantity, second.lmt_price) == (12.0, 51.0)
    gw.cancel("t-lmt")
    wait_for(gw.events, is_(OrderCancelled, "t-lmt"))
    assert gw.snapshot().open_orders == []


def test_limit_that_crosses_fills_at_the_next_open(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(
        OrderRequest(
            "t-lmt-x", "AAPL", OrderSide.BUY, 4, OrderType.LIMIT, limit_price=101.0
        )
    )
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "t-lmt-x"))
    assert fill.quantity == 4.0 and fill.price <= 101.0


def test_bracket_one_child_fills_and_its_sibling_is_cancelled(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(OrderRequest("b-entry", "AAPL", OrderSide.BUY, 10))
    gw.place(
        OrderRequest(
            "b-tp",
            "AAPL",
            OrderSide.SELL,
            10,
            OrderType.LIMIT,
            limit_price=100.4,
            oca_group="oca-b",
            parent_client_order_id="b-entry",
        )
    )
    gw.place(
        OrderRequest(
            "b-sl",
            "AAPL",
            OrderSide.SELL,
            10,
            OrderType.STOP,
            stop_price=90.0,
            oca_group="oca-b",
            parent_client_order_id="b-entry",
        )
    )
    seen: list = []
    for _ in range(4):
        gw.end_of_bar(None)
        drain(gw.events, seen)
        if any(isinstance(e, OrderCancelled) for e in seen):
            break
    if not any(is_(OrderCancelled, "b-sl")(e) for e in seen):
        wait_for(gw.events, is_(OrderCancelled, "b-sl"), seen=seen)
    fills = [e for e in seen if isinstance(e, OrderFilled)]
    assert [f.client_order_id for f in fills] == ["b-entry", "b-tp"]
    parent_id = next(
        r.order_id for r in sim.orders_received if r.order_ref == "b-entry"
    )
    assert {
        r.order_ref: (r.parent_id, r.oca_group)
        for r in sim.orders_received
        if r.parent_id
    } == {"b-tp": (parent_id, "oca-b"), "b-sl": (parent_id, "oca-b")}
    assert (
        gw.snapshot().positions.get("AAPL") is None
        or gw.snapshot().positions["AAPL"].quantity == 0
    )


def test_partial_fills_then_the_final_fill(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("partial_fill", parts=3)
    gw.place(OrderRequest("t-part", "AAPL", OrderSide.BUY, 9))
    gw.end_of_bar(None)  # bar 1: the first parts execute, the order stays open
    seen: list = []
    wait_for(
        gw.events,
        lambda e: isinstance(e, OrderPartiallyFilled) and e.cumulative_quantity == 6.0,
        seen=seen,
    )
    assert not any(isinstance(e, OrderFilled) for e in seen)
    gw.end_of_bar(None)  # bar 2: the rest
    wait_for(gw.events, is_(OrderFilled, "t-part"), seen=seen)
    fills = [e for e in seen if isinstance(e, (OrderFilled, OrderPartiallyFilled))]
    assert [type(f) for f in fills] == [
        OrderPartiallyFilled,
        OrderPartiallyFilled,
        OrderFilled,
    ]
    assert [f.cumulative_quantity for f in fills] == [3.0, 6.0, 9.0]
    assert len({f.exec_id for f in fills}) == 3


def test_duplicate_exec_details_are_counted_once(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("duplicate_exec_details", count=1)
    gw.place(OrderRequest("t-dup", "AAPL", OrderSide.BUY, 5))
    gw.end_of_bar(None)
    seen: list = []
    wait_for(gw.events, is_(OrderFilled, "t-dup"), seen=seen)
    gw.place(
        OrderRequest("t-after", "AAPL", OrderSide.SELL, 5)
    )  # a later order flushes the socket
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "t-after"), seen=seen)
    assert (
        sum(
            1
            for e in seen
            if isinstance(e, OrderFilled) and e.client_order_id == "t-dup"
        )
        == 1
    )
    assert gw.snapshot().positions.get("AAPL") is None


def test_missing_order_status_still_fills_from_exec_details(
    sim_factory, gateway_factory
):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("missing_order_status", count=1)
    gw.place(OrderRequest("t-nostatus", "AAPL", OrderSide.BUY, 2))
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "t-nostatus"))
    assert fill.quantity == 2.0


def test_rejection_arrives_with_ibs_code_and_message(
    sim_factory, gateway_factory, ib_log_guard
):
    ib_log_guard.expect(r"Error 201, reqId \d+: Order rejected")
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("reject_next", reason="Insufficient buying power")
    gw.place(OrderRequest("t-rej", "AAPL", OrderSide.BUY, 10))
    seen: list = []
    rej = wait_for(gw.events, is_(OrderRejected, "t-rej"), seen=seen)
    assert rej.code == "201" and "Insufficient buying power" in rej.reason
    gw.end_of_bar(None)
    gw.place(OrderRequest("t-ok", "AAPL", OrderSide.BUY, 1))
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "t-ok"), seen=seen)
    assert not [
        e
        for e in seen
        if getattr(e, "client_order_id", None) == "t-rej"
        and not isinstance(e, (OrderRejected, OrderAccepted))
    ]


def test_exec_details_before_open_order_keeps_its_commission(
    sim_factory, gateway_factory
):
    from ml4t.backtest import BacktestConfig
    from ml4t.backtest.config import CommissionType

    sim = sim_factory(
        config=BacktestConfig(
            commission_type=CommissionType.PER_SHARE, commission_per_share=0.1
        )
    )
    gw = gateway_factory(
        sim, commission_wait=30.0
    )  # a lost commission would stall the test
    gw.connect()
    sim.inject("exec_before_open_order", count=1)
    gw.place(OrderRequest("t-early", "AAPL", OrderSide.BUY, 20))
    gw.end_of_bar(None)
    fill = wait_for(gw.events, is_(OrderFilled, "t-early"))
    assert fill.quantity == 20.0 and fill.commission == pytest.approx(2.0)


def test_delayed_ack_still_reports_accept_and_fill_once(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    sim.inject("delay_acks", seconds=0.3, count=1)
    gw.place(OrderRequest("t-slow", "AAPL", OrderSide.BUY, 1))
    seen: list = []
    wait_for(gw.events, is_(OrderAccepted, "t-slow"), seen=seen)
    gw.end_of_bar(None)
    wait_for(gw.events, is_(OrderFilled, "t-slow"), seen=seen)
    assert [type(e).__name__ for e in seen] == ["OrderAccepted", "OrderFilled"]


def test_restart_adopts_our_open_orders_reports_foreign_ones_and_lists_todays_executions(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.events import VenueErrorReported

    ib_log_guard.expect(r"Error 202, reqId \d+")

    sim = sim_factory()
    first = gateway_factory(sim)
    first.connect()
    first.place(OrderRequest("keep-buy", "AAPL", OrderSide.BUY, 3))
    first.end_of_bar(None)
    fill = wait_for(first.events, is_(OrderFilled, "keep-buy"))
    first.place(
        OrderRequest(
            "keep-lmt", "AAPL", OrderSide.BUY, 5, OrderType.LIMIT, limit_price=50.0
        )
    )
    first.place(
        OrderRequest("", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=40.0)
    )  # no orderRef
    wait_for(first.events, is_(OrderAccepted, "keep-lmt"))
    first.close()  # the process "restarts"; IB keeps the orders

    second = gateway_factory(sim)
    snap = second.connect()
    assert [o.client_order_id for o in snap.open_orders] == ["keep-lmt"]
    (vo,) = snap.open_orders
    assert (vo.quantity, vo.limit_price, vo.order_type, vo.status) == (
        5.0,
        50.0,
        OrderType.LIMIT,
        "open",
    )
    assert [(e.client_order_id, e.exec_id) for e in snap.executions] == [
        ("keep-buy", fill.exec_id)
    ]
    assert snap.positions["AAPL"].quantity == 3.0
    foreign = wait_for(second.events, lambda e: isinstance(e, VenueErrorReported))
    assert foreign.code == "foreign-order" and "never touched" in foreign.message
    second.snapshot()  # a foreign order is reported once, not at every snapshot
    with pytest.raises(CancelRefused, match="already filled"):
        second.cancel("keep-buy")  # filled before this process connected
    second.cancel("keep-lmt")  # adopted: we can manage it
    seen: list = []
    wait_for(second.events, is_(OrderCancelled, "keep-lmt"), seen=seen)
    assert not [e for e in seen if isinstance(e, VenueErrorReported)]


def test_an_account_the_gateway_does_not_manage_fails_closed(
    sim_factory, gateway_factory
):
    from ml4t_live.errors import ReconciliationError

    sim = sim_factory(account="DU1234567")
    with pytest.raises(ReconciliationError, match="DU7654321"):
        gateway_factory(sim, account="DU7654321").connect()


def test_nothing_listening_raises_connection_failed(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.errors import ConnectionFailed

    ib_log_guard.expect(r"API connection failed")
    ib_log_guard.expect(r"Make sure API port")
    sim = sim_factory()
    gw = gateway_factory(sim)
    sim.close()  # the port is free again
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        gw.connect()


def test_client_id_in_use_raises_connection_failed(
    sim_factory, gateway_factory, ib_log_guard
):
    from ml4t_live.errors import ConnectionFailed

    for pattern in (r"Error 326", r"already in use", r"API connection failed"):
        ib_log_guard.expect(pattern)
    sim = sim_factory()
    gateway_factory(sim).connect()
    with pytest.raises(ConnectionFailed, match="client id"):
        gateway_factory(sim, connect_timeout=1.0).connect()


def test_modify_of_a_stop_price_alone_is_acknowledged(sim_factory, gateway_factory):
    sim = sim_factory()
    gw = gateway_factory(sim)
    gw.connect()
    gw.place(
        OrderRequest(
            "t-stp", "AAPL", OrderSide.BUY, 5, OrderType.STOP, stop_price=150.0
        )
    )
    wait_for(gw.events, is_(OrderAccepted, "t-stp"))
    gw.modify(
        OrderRequest(
            "t-stp", "AAPL", OrderSide.BUY, 5, OrderType.STOP, stop_price=160.0
        )
    )
    replaced = wait_for(gw.events, is_(OrderReplaced, "t-stp"))
    assert (replaced.quantity, replaced.stop_price) == (5, 160.0)
    assert [(r.modify, r.aux_price) for r in sim.orders_received] == [
        (False, 150.0),
        (True, 160.0),
    ]
    (vo,) = gw.snapshot().open_orders
    assert vo.stop_price == 160.0
