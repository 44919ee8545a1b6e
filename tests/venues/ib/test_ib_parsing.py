"""Parsing on recorded gateway frames, replayed through ib_async's real decoder and wrapper."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ib_async import IB
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderFilled, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.ib import bar_parsing as bp
from ml4t_live.venues.ib import parsing as p

PAYLOADS = json.loads(
    (Path(__file__).parents[2] / "resources" / "ib" / "payloads.json").read_text()
)
FRAMES = PAYLOADS["frames"]
REF = "strat-1|AAPL|buy|0"


def replay(*names: str) -> IB:
    ib = IB()
    ib.client.decoder.serverVersion = 178
    ib.wrapper.clientId = 1
    for name in names:
        ib.client.decoder.interpret(FRAMES[name])
    return ib


def test_partial_then_final_fill_become_partial_and_filled_events():
    ib = replay(
        "open_order_submitted",
        "order_status_submitted",
        "exec_partial",
        "commission_partial",
    )
    (trade,) = ib.trades()
    first = trade.fills[0]
    ev = p.fill_event(
        first, client_order_id=REF, cumulative_quantity=4.0, total_quantity=10.0
    )
    assert isinstance(ev, OrderPartiallyFilled)
    assert (ev.asset, ev.side, ev.quantity, ev.price, ev.commission) == (
        "AAPL",
        OrderSide.BUY,
        4.0,
        190.5,
        1.0,
    )
    assert ev.exec_id == "0000e1.01"
    assert ev.timestamp == datetime(2026, 11, 24, 14, 31, tzinfo=UTC)
    for name in (
        "exec_final",
        "open_order_filled",
        "order_status_filled",
        "commission_final",
    ):
        ib.client.decoder.interpret(FRAMES[name])
    last = trade.fills[1]
    ev2 = p.fill_event(
        last, client_order_id=REF, cumulative_quantity=10.0, total_quantity=10.0
    )
    assert isinstance(ev2, OrderFilled)
    assert (ev2.quantity, ev2.price, ev2.commission, ev2.cumulative_quantity) == (
        6.0,
        190.4,
        1.2,
        10.0,
    )


def test_open_order_becomes_venue_order_with_client_order_id():
    ib = replay("open_order_submitted", "order_status_submitted")
    (trade,) = ib.openTrades()
    vo = p.venue_order_from_trade(trade)
    assert vo is not None
    assert vo.client_order_id == REF
    assert vo.venue_order_id == "1870000007"
    assert (vo.asset, vo.side, vo.quantity, vo.order_type, vo.status) == (
        "AAPL",
        OrderSide.BUY,
        10.0,
        OrderType.LIMIT,
        "open",
    )
    assert (
        vo.limit_price == 190.5 and vo.stop_price is None and vo.filled_quantity == 0.0
    )


def test_trailing_stop_and_foreign_orders():
    ib = replay("open_order_trail", "open_order_foreign")
    by_id = {t.order.orderId: t for t in ib.trades()}
    trail = p.venue_order_from_trade(by_id[9])
    assert (
        trail is not None
        and trail.order_type is OrderType.TRAILING_STOP
        and trail.side is OrderSide.SELL
    )
    assert trail.stop_price is None  # a trail amount is not a stop price
    assert p.venue_order_from_trade(by_id[10]) is None  # no orderRef: foreign


def test_rejection_keeps_ibs_code_and_text(ib_log_guard):
    ib_log_guard.expect(r"Error 201, reqId 8")
    ib = replay("open_order_stop", "order_status_stop", "error_201")
    trade = next(t for t in ib.trades() if t.order.orderId == 8)
    assert trade.orderStatus.status == "Cancelled"  # ib_async's view of the 201
    assert p.rejection_of(trade) == (
        "201",
        "Order rejected - reason:Insufficient buying power",
    )
    for name in ("open_order_stop_inactive", "order_status_stop_inactive"):
        ib.client.decoder.interpret(FRAMES[name])
    assert trade.orderStatus.status == "Inactive"
    assert p.rejection_of(trade) == (
        "201",
        "Order rejected - reason:Insufficient buying power",
    )
    assert p.venue_status(trade.orderStatus.status) == "rejected"


def test_positions_and_account_values():
    ib = replay("position", "account_cash", "account_netliq")
    (pos,) = ib.positions()
    vp = p.position_from_ib(pos)
    assert (vp.asset, vp.quantity, vp.avg_cost) == ("AAPL", 10.0, 190.44)
    assert p.account_totals(ib.accountValues(), "DU1234567") == (98095.60, 100000.0)
    with pytest.raises(KeyError, match="NetLiquidation"):
        p.account_totals(ib.accountValues()[:1], "DU1234567")


def test_realtime_and_historical_bars():
    ib = IB()
    ib.client.decoder.serverVersion = 178
    bars = ib.wrapper.reqId2Subscriber
    from ib_async.objects import RealTimeBarList

    sub = RealTimeBarList()
    bars[3] = sub
    ib.client.decoder.interpret(FRAMES["realtime_bar"])
    assert bp.realtime_bar_row(sub[0]) == (
        int(datetime(2026, 11, 24, 14, 31, tzinfo=UTC).timestamp()),
        190.0,
        190.6,
        189.9,
        190.5,
        1200.0,
    )
    async def decode_history(key: str, req_id: int) -> list:
        # ib_async's own request book-keeping (public Wrapper.startReq): the recorded frame
        # ends the request, which completes the future with the decoded bars
        bars = ib.wrapper.startReq(req_id)
        ib.client.decoder.interpret(FRAMES[key])
        return await asyncio.wait_for(bars, 1)

    for key, req_id in (("historical_data", 4), ("historical_data_epoch", 5)):
        (bar,) = asyncio.run(decode_history(key, req_id))
        label, values = bp.historical_bar_row(bar, UTC)
        assert label == datetime(2026, 11, 24, 14, 31, tzinfo=UTC), key
        assert values == {
            "price": 190.5,
            "open": 190.0,
            "high": 191.0,
            "low": 189.5,
            "close": 190.5,
            "volume": 5000.0,
            "signals": {},
        }


@pytest.mark.parametrize(
    ("order_type", "kw", "ib_type", "lmt", "aux"),
    [
        (OrderType.MARKET, {}, "MKT", None, None),
        (OrderType.LIMIT, {"limit_price": 10.5}, "LMT", 10.5, None),
        (OrderType.STOP, {"stop_price": 9.5}, "STP", None, 9.5),
        (
            OrderType.STOP_LIMIT,
            {"stop_price": 9.5, "limit_price": 9.4},
            "STP LMT",
            9.4,
            9.5,
        ),
        (OrderType.TRAILING_STOP, {"trail_amount": 0.75}, "TRAIL", None, 0.75),
        (OrderType.MOC, {}, "MOC", None, None),
    ],
)
def test_order_request_to_ib_order(order_type, kw, ib_type, lmt, aux):
    from ib_async.util import UNSET_DOUBLE

    req = OrderRequest(
        "cid-1", "AAPL", OrderSide.SELL, 7, order_type, oca_group="oca-1", **kw
    )
    o = p.ib_order_from_request(req, account="DU1", parent_order_id=42)
    assert (o.action, o.totalQuantity, o.orderType, o.orderRef, o.account) == (
        "SELL",
        7.0,
        ib_type,
        "cid-1",
        "DU1",
    )
    assert o.lmtPrice == (UNSET_DOUBLE if lmt is None else lmt)
    assert o.auxPrice == (UNSET_DOUBLE if aux is None else aux)
    assert (o.ocaGroup, o.parentId) == ("oca-1", 42)
    assert o.tif == ("DAY" if order_type is OrderType.MOC else "GTC")
    assert p.order_type_from_ib(ib_type) is order_type


def test_modified_order_keeps_identity_and_changes_prices():
    req = OrderRequest(
        "cid-1", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=100.0
    )
    o = p.ib_order_from_request(req)
    o.orderId, o.permId = 5, 99
    new = p.modified_order(
        o,
        OrderRequest(
            "cid-1", "AAPL", OrderSide.BUY, 12, OrderType.LIMIT, limit_price=101.0
        ),
    )
    assert (new.orderId, new.permId, new.orderRef, new.totalQuantity, new.lmtPrice) == (
        5,
        99,
        "cid-1",
        12.0,
        101.0,
    )
    assert o.totalQuantity == 10.0  # the original is untouched
    with pytest.raises(ValueError, match="orderRef"):
        p.modified_order(o, OrderRequest("other", "AAPL", OrderSide.BUY, 1))


def test_missing_prices_are_refused():
    with pytest.raises(ValueError, match="limit_price"):
        p.ib_order_from_request(
            OrderRequest("c", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT)
        )
    with pytest.raises(ValueError, match="trail_amount"):
        p.ib_order_from_request(
            OrderRequest("c", "AAPL", OrderSide.BUY, 1, OrderType.TRAILING_STOP)
        )


def test_sides_accounts_and_bar_sizes():
    assert (
        p.side_from_action("BOT") is OrderSide.BUY
        and p.side_from_action("SLD") is OrderSide.SELL
    )
    assert p.is_paper_account("DU1234567") and not p.is_paper_account("U1234567")
    assert [
        bp.bar_size_seconds(s) for s in ("5 secs", "1 min", "15 mins", "1 hour")
    ] == [5, 60, 900, 3600]
    with pytest.raises(ValueError):
        bp.bar_size_seconds("7 secs")
    assert (
        bp.ib_bar_size_setting(60) == "1 min" and bp.ib_bar_size_setting(300) == "5 mins"
    )
    assert bp.duration_str(600) == "600 S" and bp.duration_str(3 * 86400) == "3 D"


def test_a_filled_order_with_some_executions_withheld_is_filled_at_ibs_cumulative_quantity():
    # IB says Filled 10 (orderStatus.filled) but only the 4-share execution reached us: the
    # executions' sum replaced IB's own count ("filled 4"), so the owed-executions check doubted
    # the order and never made up the missing 6
    ib = replay(
        "open_order_submitted",
        "order_status_submitted",
        "exec_partial",
        "commission_partial",
        "open_order_filled",
        "order_status_filled",
    )
    (trade,) = ib.trades()
    assert sum(f.execution.shares for f in trade.fills) == 4.0
    vo = p.venue_order_from_trade(trade)
    assert vo is not None
    assert (vo.status, vo.quantity, vo.filled_quantity) == ("filled", 10.0, 10.0)


def test_a_venue_orders_filled_quantity_is_the_largest_ib_gives():
    # the executions' sum may run ahead of a stale orderStatus (4 executed, status still 0)
    ib = replay("open_order_submitted", "order_status_submitted", "exec_partial")
    (trade,) = ib.trades()
    assert trade.orderStatus.filled == 0.0
    vo = p.venue_order_from_trade(trade)
    assert vo is not None and vo.filled_quantity == 4.0


def test_an_order_ib_shows_by_its_executions_alone_is_of_unknown_end_not_filled():
    # a look-up by orderRef that finds no open or completed order, only executions (an order
    # filled in part, then cancelled or expired, as often as a filled one), said "filled" at the
    # executions' sum: the runtime read the order as filled
    from ml4t_live.venues.ib.inflight import Found
    from ml4t_live.venues.ib.outcomes import _venue_order

    ib = replay("exec_partial", "commission_partial")
    vo = _venue_order(REF, None, Found(trades=[], fills=ib.fills()))
    assert (vo.status, vo.filled_quantity, vo.asset, vo.side) == (
        "unknown",
        4.0,
        "AAPL",
        OrderSide.BUY,
    )
