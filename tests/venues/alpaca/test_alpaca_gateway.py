"""AlpacaGateway through the real alpaca-py clients against the simulated Alpaca (step mode).

Timing of the simulated venue: an order placed before ``end_of_bar`` (GET /v2/clock) fills when
the next bar opens; the first clock call releases bar 0 (AAPL opens at 100, MSFT at 200, each
bar +1).
"""

from __future__ import annotations

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpaca_helpers import collect, config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.errors import CancelRefused, LiveTradingRefused
from ml4t_live.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderLost,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    VenueErrorReported,
)
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.alpaca.gateway import AlpacaGateway, OrderRefused


def buy(cid: str, qty: float = 10, asset: str = "AAPL", **kw: object) -> OrderRequest:
    return OrderRequest(cid, asset, OrderSide.BUY, qty, **kw)  # type: ignore[arg-type]


def venue_orders(sim, cid: str) -> list[dict]:
    return [o for o in sim.orders() if o["client_order_id"] == cid]


def filled(cid: str):
    return lambda seen: bool(of(OrderFilled, seen, cid))


# ------------------------------------------------------------------ connect
def test_connect_returns_the_paper_account_snapshot(sim, gateway):
    snap = gateway.snapshot()
    assert snap.account_id.startswith("PA") and snap.is_paper
    assert snap.cash == pytest.approx(100_000.0) and snap.equity == pytest.approx(
        100_000.0
    )
    assert snap.positions == {} and snap.open_orders == []
    assert sim.state()["trade_listeners"] == 1


def test_connect_adopts_our_open_orders_and_reports_foreign_ones(sim):
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    for cid in ("t-old-1", "someone-else"):
        raw.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=3,
                side=AlpacaSide.BUY,
                limit_price=50.0,
                time_in_force=TimeInForce.GTC,
                client_order_id=cid,
            )
        )
    gw = AlpacaGateway(config_for(sim), is_ours=lambda cid: cid.startswith("t-"))
    try:
        snap = gw.connect()
        assert sorted(o.client_order_id for o in snap.open_orders) == [
            "someone-else",
            "t-old-1",
        ]
        ours = next(o for o in snap.open_orders if o.client_order_id == "t-old-1")
        assert (ours.order_type, ours.quantity, ours.limit_price, ours.status) == (
            OrderType.LIMIT,
            3,
            50.0,
            "open",
        )
        seen = drain(gw.events)
        assert [e.client_order_id for e in of(VenueErrorReported, seen)] == [
            "someone-else"
        ]
        assert (
            of(OrderAccepted, seen) == []
        )  # adopted from the snapshot, nothing to replay
        gw.modify(buy("t-old-1", 3, order_type=OrderType.LIMIT, limit_price=150.0))
        gw.end_of_bar(None)
        seen = collect(gw.events, filled("t-old-1"))
        assert of(OrderFilled, seen, "t-old-1")[0].quantity == 3
        assert [o["status"] for o in venue_orders(sim, "someone-else")] == [
            "new"
        ]  # untouched
    finally:
        gw.close()


def test_an_adopted_partly_filled_order_reports_only_its_later_executions(sim):
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    inject(sim, "partial_fill", parts=3)
    raw.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=9,
            side=AlpacaSide.BUY,
            time_in_force=TimeInForce.GTC,
            client_order_id="t-half-done",
        )
    )
    raw.get_clock()  # bar 0: part of it fills before we (re)start
    gw = AlpacaGateway(config_for(sim), is_ours=lambda cid: cid.startswith("t-"))
    try:
        snap = gw.connect()
        (adopted,) = snap.open_orders
        done = adopted.filled_quantity
        assert 0 < done < 9 and snap.positions["AAPL"].quantity == done
        assert (
            drain(gw.events) == []
        )  # what is already in the position is not reported again
        for _ in range(2):
            gw.end_of_bar(None)
        seen = collect(gw.events, filled("t-half-done"))
        fills = of(OrderPartiallyFilled, seen) + of(OrderFilled, seen)
        assert sum(f.quantity for f in fills) == 9 - done
        assert fills[-1].cumulative_quantity == 9
    finally:
        gw.close()


# ------------------------------------------------------------------ order types
def test_market_order_fills_at_the_next_open_and_carries_our_client_order_id(
    sim, gateway
):
    gateway.place(buy("t-mkt"))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-mkt"))
    assert isinstance(seen[0], OrderAccepted) and seen[0].client_order_id == "t-mkt"
    fill = of(OrderFilled, seen, "t-mkt")[0]
    assert (fill.asset, fill.side, fill.quantity, fill.price) == (
        "AAPL",
        OrderSide.BUY,
        10,
        100.0,
    )
    assert fill.cumulative_quantity == 10
    assert [o["client_order_id"] for o in sim.orders()] == ["t-mkt"]
    assert gateway.snapshot().positions["AAPL"].quantity == 10


@pytest.mark.parametrize(
    ("kind", "extra", "wire"),
    [
        (
            OrderType.LIMIT,
            {"limit_price": 150.0},
            {"type": "limit", "limit_price": "150"},
        ),
        (OrderType.STOP, {"stop_price": 99.0}, {"type": "stop", "stop_price": "99"}),
        (
            OrderType.STOP_LIMIT,
            {"stop_price": 99.0, "limit_price": 150.0},
            {"type": "stop_limit", "stop_price": "99", "limit_price": "150"},
        ),
        (
            OrderType.TRAILING_STOP,
            {"trail_amount": 2.5},
            {"type": "trailing_stop", "trail_price": "2.5"},
        ),
        (OrderType.MOC, {}, {"type": "market", "time_in_force": "cls"}),
        (
            OrderType.MARKET,
            {"time_in_force": "day"},
            {"type": "market", "time_in_force": "day"},
        ),
    ],
)
def test_every_order_type_reaches_alpaca_as_its_alpaca_form(
    sim, gateway, kind, extra, wire
):
    gateway.place(buy("t-x", 4, order_type=kind, **extra))
    seen = collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-x")))
    assert seen[0].venue_order_id
    (order,) = venue_orders(sim, "t-x")
    assert {k: order[k] for k in wire} == wire
    assert (order["symbol"], order["side"], order["qty"]) == ("AAPL", "buy", "4")


def test_moc_fills_at_the_bar_close(sim, gateway):
    gateway.place(buy("t-moc", 2, order_type=OrderType.MOC))
    gateway.end_of_bar(None)  # bar 0 opens ...
    gateway.end_of_bar(None)  # ... and closes (100.5) before bar 1
    seen = collect(gateway.events, filled("t-moc"))
    assert of(OrderFilled, seen, "t-moc")[0].price == 100.5


def test_bracket_exits_wait_for_the_entry_fill_then_go_out_as_one_oco(sim, gateway):
    gateway.place(buy("t-entry", 10))
    exits = {"parent_client_order_id": "t-entry", "oca_group": "b1"}
    gateway.place(
        OrderRequest(
            "t-tp",
            "AAPL",
            OrderSide.SELL,
            10,
            OrderType.LIMIT,
            limit_price=103.0,
            **exits,
        )
    )
    gateway.place(
        OrderRequest(
            "t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=90.0, **exits
        )
    )
    assert [o["client_order_id"] for o in sim.orders()] == ["t-entry"]  # exits held
    gateway.end_of_bar(None)  # bar 0: the entry fills at 100
    collect(gateway.events, filled("t-entry"))
    gateway.end_of_bar(None)  # the fill is known: the exits go out as one OCO
    (oco,) = venue_orders(sim, "t-tp")
    assert (oco["order_class"], oco["limit_price"]) == ("oco", "103")
    for _ in range(3):
        gateway.end_of_bar(None)
    seen = collect(
        gateway.events,
        lambda s: (
            bool(of(OrderFilled, s, "t-tp")) and bool(of(OrderCancelled, s, "t-sl"))
        ),
    )
    assert of(OrderFilled, seen, "t-tp")[0].price == 103.0


def test_a_held_exit_modified_before_it_is_sent_goes_out_modified(sim, gateway):
    gateway.place(buy("t-entry", 10))
    exits = {"parent_client_order_id": "t-entry", "oca_group": "b3"}
    tp = OrderRequest(
        "t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=150.0, **exits
    )
    gateway.place(tp)
    gateway.place(
        OrderRequest(
            "t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=90.0, **exits
        )
    )
    gateway.modify(
        OrderRequest(
            "t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=140.0
        )
    )
    (replaced,) = of(OrderReplaced, drain(gateway.events), "t-tp")
    assert replaced.limit_price == 140.0
    gateway.end_of_bar(None)
    collect(gateway.events, filled("t-entry"))
    gateway.end_of_bar(None)
    (oco,) = venue_orders(sim, "t-tp")
    assert (oco["order_class"], oco["limit_price"]) == ("oco", "140")


def test_bracket_exits_of_an_entry_that_never_fills_are_cancelled(sim, gateway):
    gateway.place(buy("t-entry", 10, order_type=OrderType.LIMIT, limit_price=50.0))
    gateway.place(
        OrderRequest(
            "t-tp",
            "AAPL",
            OrderSide.SELL,
            10,
            OrderType.LIMIT,
            limit_price=130.0,
            parent_client_order_id="t-entry",
            oca_group="b2",
        )
    )
    collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-entry")))
    gateway.cancel("t-entry")
    collect(gateway.events, lambda s: bool(of(OrderCancelled, s, "t-entry")))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, lambda s: bool(of(OrderCancelled, s, "t-tp")))
    assert "parent" in of(OrderCancelled, seen, "t-tp")[0].reason
    assert venue_orders(sim, "t-tp") == []


def test_two_exits_in_one_oca_group_become_one_alpaca_oco_order(sim, gateway):
    gateway.place(buy("t-entry", 10))
    gateway.end_of_bar(None)
    collect(gateway.events, filled("t-entry"))
    take = OrderRequest(
        "t-tp",
        "AAPL",
        OrderSide.SELL,
        10,
        OrderType.LIMIT,
        limit_price=103.0,
        oca_group="g",
    )
    stop = OrderRequest(
        "t-sl",
        "AAPL",
        OrderSide.SELL,
        10,
        OrderType.STOP,
        stop_price=90.0,
        oca_group="g",
    )
    gateway.place(take)
    gateway.place(stop)
    (oco,) = venue_orders(sim, "t-tp")
    assert (oco["order_class"], oco["type"], oco["limit_price"]) == (
        "oco",
        "limit",
        "103",
    )
    for _ in range(
        4
    ):  # AAPL opens 101, 102, 103, 104: the take-profit fills, the stop is canceled
        gateway.end_of_bar(None)
    seen = collect(
        gateway.events,
        lambda s: (
            bool(of(OrderFilled, s, "t-tp")) and bool(of(OrderCancelled, s, "t-sl"))
        ),
    )
    assert of(OrderFilled, seen, "t-tp")[0].quantity == 10
    assert not of(OrderFilled, seen, "t-sl")


def test_an_oca_pair_alpaca_cannot_express_is_refused_whole(sim, gateway):
    gateway.place(
        OrderRequest(
            "t-s1",
            "AAPL",
            OrderSide.SELL,
            5,
            OrderType.STOP,
            stop_price=90.0,
            oca_group="g2",
        )
    )
    with pytest.raises(OrderRefused, match="OCO"):
        gateway.place(
            OrderRequest(
                "t-s2",
                "AAPL",
                OrderSide.SELL,
                5,
                OrderType.STOP,
                stop_price=80.0,
                oca_group="g2",
            )
        )
    (first,) = of(OrderRejected, drain(gateway.events), "t-s1")
    assert first.code == "not_expressible"
    assert sim.orders() == []


# ------------------------------------------------------------------ replace, cancel
def test_replace_keeps_our_client_order_id(sim, gateway):
    gateway.place(buy("t-rep", 10, order_type=OrderType.LIMIT, limit_price=50.0))
    collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-rep")))
    gateway.modify(buy("t-rep", 6, order_type=OrderType.LIMIT, limit_price=150.0))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-rep"))
    assert of(OrderReplaced, seen, "t-rep")[0].limit_price == 150.0
    fill = of(OrderFilled, seen, "t-rep")[0]
    assert fill.quantity == 6 and fill.cumulative_quantity == 6
    old, new = sorted(sim.orders(), key=lambda o: o["created_at"])
    assert (old["status"], new["client_order_id"], new["replaces"]) == (
        "replaced",
        "t-rep.r1",
        old["id"],
    )
    assert not of(OrderCancelled, seen)


def test_cancel_reports_cancelled_and_a_late_cancel_is_refused(sim, gateway):
    gateway.place(buy("t-lim", 5, order_type=OrderType.LIMIT, limit_price=50.0))
    gateway.place(buy("t-now", 5))
    gateway.end_of_bar(None)
    collect(gateway.events, filled("t-now"))
    gateway.cancel("t-lim")
    with pytest.raises(CancelRefused, match="HTTP 422"):
        gateway.cancel("t-now")  # already filled: Alpaca answers 422
    seen = collect(gateway.events, lambda s: bool(of(OrderCancelled, s, "t-lim")))
    seen += drain(gateway.events)
    assert not of(OrderCancelled, seen, "t-now")  # the fill stands
    with pytest.raises(CancelRefused, match="Alpaca has no order t-nowhere"):
        gateway.cancel("t-nowhere")  # never placed: the look-up by client order id says 404


# ------------------------------------------------------------------ fills and rejections
def test_partial_fills_become_partially_filled_events_then_filled(sim, gateway):
    inject(sim, "partial_fill", parts=3)
    gateway.place(buy("t-part", 9))
    for _ in range(
        3
    ):  # the simulated venue may spread the executions over the next bars
        gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-part"))
    parts = of(OrderPartiallyFilled, seen, "t-part")
    assert len(parts) == 2
    assert sum(e.quantity for e in parts) + of(OrderFilled, seen)[
        0
    ].quantity == pytest.approx(9)
    assert [e.cumulative_quantity for e in parts + of(OrderFilled, seen)] == sorted(
        e.cumulative_quantity for e in parts + of(OrderFilled, seen)
    )
    assert of(OrderFilled, seen)[0].cumulative_quantity == pytest.approx(9)


def test_a_venue_rejection_arrives_as_order_rejected(sim, gateway):
    inject(sim, "reject_next", reason="simulated risk check")
    gateway.place(buy("t-rej"))  # accepted over REST, rejected by the venue afterwards
    gateway.end_of_bar(None)
    seen = collect(gateway.events, lambda s: bool(of(OrderRejected, s, "t-rej")))
    seen += drain(gateway.events)
    assert not of(OrderFilled, seen)
    assert [o["status"] for o in venue_orders(sim, "t-rej")] == ["rejected"]


def test_an_order_alpaca_refuses_outright_raises_order_refused(sim, gateway):
    with pytest.raises(
        OrderRefused, match="fractional"
    ):  # no fractional trailing stops
        gateway.place(
            buy("t-frac", 1.5, order_type=OrderType.TRAILING_STOP, trail_amount=1.0)
        )
    assert venue_orders(sim, "t-frac") == []


def test_a_fractional_quantity_goes_out_as_a_day_order(sim, gateway):
    gateway.place(buy("t-half", 0.5))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-half"))
    assert of(OrderFilled, seen, "t-half")[0].quantity == 0.5
    assert venue_orders(sim, "t-half")[0]["time_in_force"] == "day"


def test_a_reused_client_order_id_never_makes_a_second_order(sim, gateway):
    gateway.place(buy("t-dup", 10))
    gateway.place(buy("t-dup", 10))  # a restarted engine re-making the same decision
    assert len(venue_orders(sim, "t-dup")) == 1
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-dup"))
    seen += drain(gateway.events)
    assert len(of(OrderFilled, seen, "t-dup")) == 1


def test_a_decision_remade_after_a_restart_adopts_the_filled_order_without_a_second_fill(
    sim,
):
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    raw.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=2,
            side=AlpacaSide.BUY,
            time_in_force=TimeInForce.GTC,
            client_order_id="t-before-crash",
        )
    )
    raw.get_clock()  # it fills; then "we" crash and restart
    gw = AlpacaGateway(config_for(sim), is_ours=lambda cid: cid.startswith("t-"))
    try:
        assert gw.connect().positions["AAPL"].quantity == 2
        gw.place(
            buy("t-before-crash", 2)
        )  # the same deterministic id: Alpaca answers 422
        assert len(venue_orders(sim, "t-before-crash")) == 1
        assert of(OrderFilled, drain(gw.events)) == []  # already in the position
    finally:
        gw.close()


@pytest.mark.parametrize("status", [500, 503, 504])
def test_ambiguous_submit_is_resolved_by_client_order_id_lookup(sim, gateway, status):
    inject(sim, "submit_error", status=status)
    gateway.place(buy("t-amb", 10))  # accepted by the venue, answered with a 5xx
    assert len(venue_orders(sim, "t-amb")) == 1
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-amb"))
    seen += drain(gateway.events)
    assert len(of(OrderFilled, seen, "t-amb")) == 1
    assert len(of(OrderAccepted, seen, "t-amb")) == 1


def test_a_submit_into_a_dead_connection_ends_lost_after_bounded_lookups(sim):
    gw = AlpacaGateway(
        config_for(sim, order_poll_interval=0.2, unknown_order_lookups=2),
        is_ours=lambda cid: cid.startswith("t-"),
    )
    gw.connect()
    try:
        sim.close()  # the venue vanishes: the POST fails at the socket, and so does every look-up
        gw.place(buy("t-dark", 1))  # no exception: the order may or may not be at Alpaca
        seen = collect(gw.events, lambda s: bool(of(OrderLost, s, "t-dark")), timeout=15.0)
    finally:
        gw.close()
    assert of(VenueErrorReported, seen, "t-dark")[0].code == "submit_unconfirmed"
    assert "2 look-ups" in of(OrderLost, seen, "t-dark")[0].reason
    assert not of(OrderRejected, seen) and "t-dark" not in gw.stream.unknown


# ------------------------------------------------------------------ faults
def test_a_429_storm_is_absorbed_by_the_shared_budget(sim, gateway):
    inject(sim, "rate_limit_storm", count=2)
    gateway.place(buy("t-429", 1))
    assert gateway.rest.rate_limited == 2
    assert len(venue_orders(sim, "t-429")) == 1


def test_duplicated_trade_updates_are_counted_once(sim, gateway):
    inject(sim, "duplicate_trade_updates", count=20)
    gateway.place(buy("t-dupu", 10))
    gateway.place(buy("t-dupm", 3, asset="MSFT"))
    gateway.end_of_bar(None)
    seen = collect(
        gateway.events,
        lambda s: (
            bool(of(OrderFilled, s, "t-dupu")) and bool(of(OrderFilled, s, "t-dupm"))
        ),
    )
    seen += drain(gateway.events)
    assert len(of(OrderFilled, seen)) == 2 and len(of(OrderAccepted, seen)) == 2
    assert gateway.tracker.duplicates_dropped >= 2


def test_delayed_trade_updates_arrive_late_but_in_order_and_once(sim, gateway):
    inject(sim, "delay_trade_updates", seconds=0.2, count=2)
    gateway.place(buy("t-slow", 10))
    gateway.end_of_bar(None)
    seen = collect(gateway.events, filled("t-slow"))
    seen += drain(gateway.events)
    assert [type(e) for e in seen if e.client_order_id == "t-slow"] == [
        OrderAccepted,
        OrderFilled,
    ]


def test_updates_missed_while_the_trade_stream_was_down_are_recovered_once(
    sim, gateway
):
    from ml4t_live.events import BrokerDisconnected, BrokerReconnected

    gateway.place(buy("t-drop", 10, order_type=OrderType.LIMIT, limit_price=150.0))
    collect(gateway.events, lambda s: bool(of(OrderAccepted, s, "t-drop")))
    inject(sim, "drop_trade_stream")
    gateway.end_of_bar(None)  # the fill happens while the client reconnects
    seen = collect(
        gateway.events,
        lambda s: (
            any(isinstance(e, BrokerReconnected) for e in s)
            and bool(of(OrderFilled, s, "t-drop"))
        ),
    )
    seen += drain(gateway.events)
    assert any(isinstance(e, BrokerDisconnected) for e in seen)
    assert len(of(OrderFilled, seen, "t-drop")) == 1
    assert sim.state()["trade_connections"] == 2


def test_a_silent_trade_stream_is_caught_by_the_watchdog_and_reconnected(sim):
    gw = AlpacaGateway(
        config_for(sim, order_poll_interval=0.2),
        is_ours=lambda cid: cid.startswith("t-"),
    )
    gw.connect()
    try:
        gw.place(buy("t-quiet", 10, order_type=OrderType.LIMIT, limit_price=150.0))
        collect(gw.events, lambda s: bool(of(OrderAccepted, s, "t-quiet")))
        inject(sim, "silence_trade_stream")
        gw.end_of_bar(None)
        seen = collect(gw.events, filled("t-quiet"))
        assert of(OrderFilled, seen, "t-quiet")[0].quantity == 10
        collect(
            gw.events, lambda s: any(type(e).__name__ == "BrokerReconnected" for e in s)
        )
        assert sim.state()["trade_connections"] == 2
    finally:
        gw.close()


# ------------------------------------------------------------------ live guard, lifecycle
def test_live_trading_is_refused_without_the_explicit_opt_in(sim):
    for cfg in (
        config_for(sim, paper=False),
        config_for(sim, paper=False, allow_live=True),
        config_for(
            sim, paper=False, allow_live=True, confirm_live=lambda account: False
        ),
    ):
        gw = AlpacaGateway(cfg)
        with pytest.raises(LiveTradingRefused, match="LIVE"):
            gw.connect()
        gw.close()
    assert sim.state()["trade_connections"] == 0  # refused before any stream was opened
    asked: list[str] = []
    gw = AlpacaGateway(
        config_for(
            sim,
            paper=False,
            allow_live=True,
            confirm_live=lambda a: asked.append(a) or True,
        )
    )
    try:
        assert gw.connect().is_paper is False
        assert asked == ["PA3SIM000001"]
    finally:
        gw.close()


def test_wrong_keys_fail_to_connect_with_a_clear_error(sim):
    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.venues.alpaca.config import AlpacaConfig

    gw = AlpacaGateway(
        AlpacaConfig(key_id="PKWRONG", secret_key="nope", base_url=sim.base_url)
    )
    with pytest.raises(ConnectionFailed, match="401|not authorized"):
        gw.connect()
    gw.close()


def test_streams_stop_on_their_own_loop_without_alpaca_pys_5s_stop_path(sim):
    """Each stream is stopped by closing its socket on its own loop: its pending ``recv`` fails at
    once and the stream's task ends. alpaca-py's own stop path (``stop()``, i.e. ``stop_ws()``
    alone) leaves a stop request that its consume loop takes only when it next wakes: at a
    message, or when its 5 s ``recv`` timeout runs out.

    Proved on the stream's own state, not on wall-clock time: when ``close()`` returns, the stream's
    task has ended by itself and alpaca-py's stop request is still unread (its consume loop never
    woke to take it). ``stream_stop_timeout`` is far above the 5 s ``recv`` timeout, so a stop that
    waited on ``recv`` is never cut short (cancelled) before the loop takes the request. Each
    stream is closed once the last message the venue sends it before the next step (the trade
    stream's ``listening``, the data stream's first bar) has been taken, and straight after it:
    a ``recv`` timeout that ran out during the close would wake the loop too."""
    from ml4t_live.bridge import live_threads
    from ml4t_live.events import BarClosed
    from ml4t_live.venues.alpaca.feed import AlpacaFeed

    gw = AlpacaGateway(config_for(sim, stream_stop_timeout=60.0))
    gw.connect()
    gw.close()
    feed = AlpacaFeed(config_for(sim, stream_stop_timeout=60.0), ["AAPL"])
    feed.start()
    try:
        first = feed.next_event(10.0)  # the open's bar, sent at the start
        assert isinstance(first, BarClosed), first
    finally:
        feed.close()
    for session in (gw.stream.session, feed.session):
        assert session._task.done() and not session._task.cancelled(), session.thread.name
        # alpaca-py's own attribute, read only: the stop request its consume loop takes
        assert not session._stream._stop_stream_queue.empty(), session.thread.name
    assert not [t for t in live_threads() if "stream" in t]
