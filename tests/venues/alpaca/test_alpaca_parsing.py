"""Pure translation and bookkeeping, on recorded payloads (tests/resources/alpaca/).

``payloads.json`` was recorded from the simulated Alpaca through alpaca-py in raw mode
(``record_payloads.py``); ``alpaca_docs_examples.json`` holds hand-written payloads in the format
Alpaca documents (string numbers, no ``execution_id``) for shapes the simulator does not emit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.models import BarSet
from alpaca.trading.models import Order, Position, TradeAccount, TradeUpdate
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import (
    OrderFilled,
    OrderPartiallyFilled,
)
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.alpaca.config import AlpacaConfig
from ml4t_live.venues.alpaca.parsing import (
    NotExpressible,
    account_snapshot,
    bar_fields,
    status_of,
    to_oco_request,
    to_order_request,
    to_replace_request,
    venue_order,
)
from ml4t_live.venues.alpaca.rest import error_details
from ml4t_live.venues.alpaca.tracker import OrderTracker

RESOURCES = Path(__file__).parents[2] / "resources" / "alpaca"
RECORDED = json.loads((RESOURCES / "payloads.json").read_text())
DOCS = json.loads((RESOURCES / "alpaca_docs_examples.json").read_text())
CONFIG = AlpacaConfig(key_id="PKTEST", secret_key="not-a-real-secret-0123456789")


def updates() -> list[TradeUpdate]:
    return [TradeUpdate(**u) for u in RECORDED["trade_updates"]]


def tracker_for_recording() -> OrderTracker:
    tracker = OrderTracker()
    for cid in ("rec-mkt", "rec-part", "rec-lim", "rec-cxl", "rec-oco", "rec-rej"):
        tracker.register(cid)
    tracker.alias("rec-lim.r1", "rec-lim")
    for leg in RECORDED["rest"]["submit_oco"]["legs"]:
        tracker.alias(leg["client_order_id"], "rec-oco-stop")
    return tracker


# ------------------------------------------------------------------ trade updates -> events
def test_recorded_trade_updates_become_order_events():
    tracker = tracker_for_recording()
    events = [e for u in updates() for e in tracker.on_trade_update(u)]
    summary = [
        (type(e).__name__, e.client_order_id, getattr(e, "quantity", None))
        for e in events
    ]
    assert summary == [
        ("OrderAccepted", "rec-mkt", None),
        ("OrderAccepted", "rec-part", None),
        ("OrderAccepted", "rec-lim", None),
        (
            "OrderAccepted",
            "rec-lim",
            None,
        ),  # the replacement order (new Alpaca id), same order of ours
        ("OrderAccepted", "rec-cxl", None),
        ("OrderFilled", "rec-mkt", 10.0),
        ("OrderPartiallyFilled", "rec-part", 2.0),
        ("OrderCancelled", "rec-cxl", None),
        ("OrderAccepted", "rec-oco", None),
        ("OrderAccepted", "rec-oco-stop", None),
        ("OrderRejected", "rec-rej", None),
        ("OrderFilled", "rec-part", 2.0),
    ]
    fill = events[5]
    assert (fill.asset, fill.side, fill.price, fill.cumulative_quantity) == (
        "AAPL",
        OrderSide.BUY,
        100.0,
        10.0,
    )
    assert fill.exec_id == RECORDED["trade_updates"][6]["execution_id"]
    assert events[-1].cumulative_quantity == 4.0


def test_a_replayed_stream_produces_nothing_the_second_time():
    tracker = tracker_for_recording()
    first = [e for u in updates() for e in tracker.on_trade_update(u)]
    again = [e for u in updates() for e in tracker.on_trade_update(u)]
    assert first and again == []
    assert (
        tracker.duplicates_dropped == 3
    )  # the three executions; lifecycle repeats are silent


def test_updates_for_orders_that_are_not_ours_are_ignored():
    tracker = OrderTracker()
    assert [e for u in updates() for e in tracker.on_trade_update(u)] == []
    assert tracker.foreign_updates == len(RECORDED["trade_updates"])


def test_documented_string_numbers_without_execution_ids():
    partial, fill = (TradeUpdate(**u) for u in DOCS["partial_then_fill"])
    tracker = OrderTracker()
    tracker.register("doc-1")
    events = tracker.on_trade_update(partial) + tracker.on_trade_update(fill)
    assert [type(e) for e in events] == [OrderPartiallyFilled, OrderFilled]
    assert [(e.quantity, e.price, e.cumulative_quantity) for e in events] == [
        (40, 179.08, 40),
        (60, 179.18, 100),
    ]
    assert events[0].exec_id != events[1].exec_id
    assert (
        tracker.on_trade_update(fill) == [] and tracker.on_trade_update(partial) == []
    )


def test_a_missed_partial_is_folded_into_the_next_fill_at_the_average_price():
    _partial, fill = (TradeUpdate(**u) for u in DOCS["partial_then_fill"])
    tracker = OrderTracker()
    tracker.register("doc-1")
    (event,) = tracker.on_trade_update(fill)
    assert isinstance(event, OrderFilled)
    assert (event.quantity, event.cumulative_quantity) == (100, 100)
    assert event.price == pytest.approx(
        179.14
    )  # qty 60 in the update != 100 missing: use the average


def test_a_rest_snapshot_reports_only_what_the_stream_did_not():
    partial, fill = (TradeUpdate(**u) for u in DOCS["partial_then_fill"])
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.on_trade_update(partial)
    (event,) = tracker.on_order_snapshot(fill.order)  # the fill update itself was lost
    assert (type(event), event.quantity, event.cumulative_quantity) == (
        OrderFilled,
        60,
        100,
    )
    assert event.price == pytest.approx((179.14 * 100 - 179.08 * 40) / 60)
    assert tracker.on_trade_update(fill) == []  # arriving late, it is not counted again
    assert tracker.open_venue_ids() == []


# ------------------------------------------------------------------ REST models
def test_recorded_orders_translate_to_venue_orders():
    orders = {o["client_order_id"]: Order(**o) for o in RECORDED["rest"]["orders_all"]}
    replacement = venue_order(orders["rec-lim.r1"], "rec-lim")
    assert (
        replacement.client_order_id,
        replacement.order_type,
        replacement.quantity,
    ) == ("rec-lim", OrderType.LIMIT, 6)
    assert (replacement.limit_price, replacement.status) == (55.0, "open")
    assert status_of(orders["rec-mkt"]) == "filled"
    assert status_of(orders["rec-cxl"]) == "cancelled"
    assert status_of(orders["rec-rej"]) == "rejected"
    assert status_of(orders["rec-lim"]) == "cancelled"  # replaced
    part = venue_order(orders["rec-part"])
    assert (part.asset, part.side, part.quantity, part.filled_quantity) == (
        "MSFT",
        OrderSide.BUY,
        4,
        4,
    )
    oco = orders["rec-oco"]
    assert oco.order_class.value == "oco" and [leg.type.value for leg in oco.legs] == [
        "stop"
    ]


def test_recorded_account_and_positions_make_a_snapshot():
    account = TradeAccount(**RECORDED["rest"]["account"])
    positions = [Position(**p) for p in RECORDED["rest"]["positions"]]
    snap = account_snapshot(account, positions, [], is_paper=True)
    assert snap.account_id == "PA3SIM000001" and snap.is_paper
    assert snap.cash == pytest.approx(100_000 - 10 * 100 - 4 * 200)
    assert {a: (p.quantity, p.avg_cost) for a, p in snap.positions.items()} == {
        "AAPL": (10, 100),
        "MSFT": (4, 200),
    }


def test_recorded_historical_bars_are_labelled_by_their_start():
    barset = BarSet(RECORDED["rest"]["bars"])
    first = barset.data["AAPL"][0]
    assert first.timestamp == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    assert bar_fields(first) == {
        "price": 100.5,
        "open": 100,
        "high": 101,
        "low": 99,
        "close": 100.5,
        "volume": 1000,
        "signals": {},
    }
    assert [b.timestamp.minute for b in barset.data["MSFT"]] == [
        30,
        31,
    ]  # only bars closed by then


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, (403, "40310000", "insufficient qty available")),
        (1, (401, "", "unauthorized")),
        (2, (502, "", "<html>bad gateway</html>")),
    ],
)
def test_error_bodies_of_any_shape_are_understood(index, expected):
    sample = DOCS["error_bodies"][index]

    class _Response:
        status_code = sample["status"]

    class _HTTPError(Exception):
        response = _Response()

    status, code, message = error_details(
        APIError(sample["body"], _HTTPError()), CONFIG
    )
    assert (status, code) == expected[:2] and expected[2] in message


# ------------------------------------------------------------------ requests
def req(kind: OrderType, **kw: object) -> OrderRequest:
    return OrderRequest("c-1", "AAPL", OrderSide.SELL, 4, kind, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (req(OrderType.MARKET), {"type": "market", "time_in_force": "gtc"}),
        (req(OrderType.MOC), {"type": "market", "time_in_force": "cls"}),
        (
            req(OrderType.LIMIT, limit_price=10.5),
            {"type": "limit", "time_in_force": "gtc", "limit_price": 10.5},
        ),
        (
            req(OrderType.STOP, stop_price=9.0),
            {"type": "stop", "time_in_force": "gtc", "stop_price": 9.0},
        ),
        (
            req(OrderType.STOP_LIMIT, stop_price=9.0, limit_price=8.5),
            {
                "type": "stop_limit",
                "time_in_force": "gtc",
                "stop_price": 9.0,
                "limit_price": 8.5,
            },
        ),
        (
            req(OrderType.TRAILING_STOP, trail_amount=1.25),
            {"type": "trailing_stop", "time_in_force": "gtc", "trail_price": 1.25},
        ),
        (
            req(OrderType.MARKET, time_in_force="day"),
            {"type": "market", "time_in_force": "day"},
        ),
    ],
)
def test_order_requests_become_alpaca_request_bodies(request_, fields):
    body = to_order_request(request_).to_request_fields()
    assert body == {
        "symbol": "AAPL",
        "qty": 4.0,
        "side": "sell",
        "client_order_id": "c-1",
        **fields,
    }


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (req(OrderType.LIMIT), "limit price"),
        (req(OrderType.TRAILING_STOP), "trail price"),
        (req(OrderType.MARKET, time_in_force="gtd"), "time in force"),
        (req(OrderType.MARKET, parent_client_order_id="p-1"), "parent"),
        (OrderRequest("c-0", "AAPL", OrderSide.BUY, 0.0), "quantity"),
    ],
)
def test_what_alpaca_cannot_take_is_refused_before_sending(request_, why):
    with pytest.raises(NotExpressible, match=why):
        to_order_request(request_)


def test_an_oca_pair_becomes_one_oco_body():
    take = req(OrderType.LIMIT, limit_price=12.0, oca_group="g")
    stop = OrderRequest(
        "c-2",
        "AAPL",
        OrderSide.SELL,
        4,
        OrderType.STOP_LIMIT,
        limit_price=8.5,
        stop_price=9.0,
    )
    body = to_oco_request(take, stop).to_request_fields()
    assert body["order_class"] == "oco" and body["client_order_id"] == "c-1"
    assert body["take_profit"] == {"limit_price": 12.0}
    assert body["stop_loss"] == {"stop_price": 9.0, "limit_price": 8.5}
    with pytest.raises(NotExpressible, match="share asset"):
        to_oco_request(
            take,
            OrderRequest(
                "c-3", "MSFT", OrderSide.SELL, 4, OrderType.STOP, stop_price=9.0
            ),
        )


def test_replace_bodies_and_the_whole_share_limit_of_alpaca_py():
    body = to_replace_request(
        req(OrderType.LIMIT, limit_price=11.0), "c-1.r1"
    ).to_request_fields()
    assert body == {"qty": 4, "limit_price": 11.0, "client_order_id": "c-1.r1"}
    with pytest.raises(NotExpressible, match="whole quantities"):
        to_replace_request(
            OrderRequest(
                "c-1", "AAPL", OrderSide.BUY, 2.5, OrderType.LIMIT, limit_price=1.0
            ),
            "x",
        )


def test_a_replace_asks_for_what_is_left_of_a_partly_filled_order():
    """Alpaca's replacement is a new order for the PATCH's qty, the old order's fills standing
    (alpacahq/Alpaca-API#165): 3 of 4 filled, the PATCH asks for 1; nothing left, no PATCH."""
    body = to_replace_request(
        req(OrderType.LIMIT, limit_price=11.0), "c-1.r1", filled=3
    ).to_request_fields()
    assert body == {"qty": 1, "limit_price": 11.0, "client_order_id": "c-1.r1"}
    with pytest.raises(NotExpressible, match="nothing left"):
        to_replace_request(req(OrderType.LIMIT, limit_price=11.0), "c-1.r1", filled=4)


def _doc_update(index: int, **order: object) -> TradeUpdate:
    raw = json.loads(json.dumps(DOCS["partial_then_fill"][index]))
    raw["order"].update({k: v for k, v in order.items() if k not in ("event", "qty_now")})
    if "event" in order:
        raw["event"] = order["event"]
    if "qty_now" in order:
        raw["qty"] = order["qty_now"]
    return TradeUpdate(**raw)


def test_a_late_fill_of_a_replaced_order_counts_in_its_replacements_cumulative_quantity():
    """doc-1 (100) filled 40 as the modify read it, so doc-1.r1 asks for the 60 left; a fill of
    10 of doc-1 made between that read and the replace arrives late. It counts in doc-1.r1's base
    (was not: the base stayed at the 40 known at the replace, and the broker reads a reconstructed
    execution's new part from the cumulative quantity), so doc-1.r1's fill of its 60 reports
    cumulative 110: the order traded 10 more than its 100, the fill the modify's read missed
    (docs/operations.md, "a modify of a partly filled order asks for what is left")."""
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.alias("doc-1.r1", "doc-1")
    old_id, new_id = "308266a6-7b03-47a4-821a-d08a04e83444", "5f5b1c9e-0c1e-4b8e-9d0a-2f9e6c1d7a11"
    (first,) = tracker.on_trade_update(_doc_update(0))
    assert first.cumulative_quantity == 40
    tracker.carry_over(old_id, new_id)
    assert tracker.filled_total(new_id) == 40
    (late,) = tracker.on_trade_update(_doc_update(
        0, filled_qty="50", filled_avg_price="179.10", status="replaced", qty_now="10"))
    assert (late.quantity, late.cumulative_quantity) == (10, 50)
    (last,) = tracker.on_trade_update(_doc_update(
        1, id=new_id, client_order_id="doc-1.r1", qty="60", filled_qty="60", filled_avg_price="179.2",
        replaces=old_id, qty_now="60"))
    assert isinstance(last, OrderFilled)
    assert (last.client_order_id, last.quantity, last.cumulative_quantity) == ("doc-1", 60, 110)
    assert tracker.filled_total(new_id) == 110


def test_refused_changes_and_done_for_day_leave_the_order_working():
    from ml4t_live.events import VenueErrorReported

    order = dict(DOCS["partial_then_fill"][0]["order"])
    tracker = OrderTracker()
    tracker.register("doc-1")
    stamp = "2026-11-23T20:59:59Z"
    refused = TradeUpdate(event="order_replace_rejected", timestamp=stamp, order=order)
    (event,) = tracker.on_trade_update(refused)
    assert isinstance(event, VenueErrorReported) and event.client_order_id == "doc-1"
    resting = TradeUpdate(
        event="done_for_day", timestamp=stamp, order={**order, "status": "done_for_day"}
    )
    assert tracker.on_trade_update(resting) == []
    assert len(tracker.open_venue_ids()) == 1  # still ours to follow tomorrow
