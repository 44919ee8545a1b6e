"""Pure translation between ib_async objects and ml4t types / events.

No I/O, no event loop, no state: every function takes ib_async objects (or plain values) and
returns ml4t_live / ml4t.backtest values, so each can be tested on recorded payloads
(``tests/resources/ib/``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from ib_async import Contract, Order, Stock, Trade
from ib_async.objects import AccountValue, Fill, Position
from ib_async.util import UNSET_DOUBLE
from ml4t.backtest import OrderSide, OrderType

from ...events import OrderFilled, OrderPartiallyFilled
from ...protocols import OrderRequest, VenueOrder, VenuePosition

PAPER_ACCOUNT_PREFIX = "DU"

_ORDER_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
    OrderType.MOC: "MOC",
}
_ORDER_TYPES_BACK = {v: k for k, v in _ORDER_TYPES.items()}

# IB order statuses -> VenueOrder.status
_OPEN = {
    "PendingSubmit",
    "ApiPending",
    "PreSubmitted",
    "Submitted",
    "PendingCancel",
    "ValidationError",
}
_CANCELLED = {"Cancelled", "ApiCancelled"}

# Error codes that end a live order as a rejection (anything that is neither a warning nor 202).
CANCEL_CONFIRMED = 202
_WARNING_CODES = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})


# ------------------------------------------------------------------------------- accounts
def is_paper_account(account_id: str) -> bool:
    """IB paper accounts are ``DU…`` (single) — the port says nothing reliable."""
    return account_id.upper().startswith(PAPER_ACCOUNT_PREFIX)


def account_totals(values: Iterable[AccountValue], account: str) -> tuple[float, float]:
    """(cash, equity) from ``updateAccountValue`` records; raises KeyError naming what is missing.

    Cash is ``TotalCashValue`` and equity ``NetLiquidation``, in the base currency
    (``BASE`` when IB reports it, else USD).
    """
    found: dict[tuple[str, str], float] = {}
    for v in values:
        if v.account != account or v.modelCode:
            continue
        if v.tag in ("TotalCashValue", "NetLiquidation"):
            try:
                found[(v.tag, v.currency)] = float(v.value)
            except ValueError:
                continue
    out = []
    for tag in ("TotalCashValue", "NetLiquidation"):
        value = found.get((tag, "BASE"), found.get((tag, "USD")))
        if value is None:
            raise KeyError(f"{tag} (BASE or USD) for account {account}")
        out.append(value)
    return out[0], out[1]


def position_from_ib(position: Position) -> VenuePosition:
    return VenuePosition(
        asset=asset_of(position.contract),
        quantity=float(position.position),
        avg_cost=float(position.avgCost),
    )


# ------------------------------------------------------------------------------- contracts
def contract_for(
    asset: str, exchange: str = "SMART", currency: str = "USD"
) -> Contract:
    """The contract an ml4t asset name stands for (US stocks: the symbol)."""
    return Stock(asset, exchange, currency)


def asset_of(contract: Contract) -> str:
    if contract.secType in ("", "STK"):
        return contract.symbol
    return contract.localSymbol or contract.symbol


# ------------------------------------------------------------------------------- orders
def side_from_action(action: str) -> OrderSide:
    """``BUY``/``BOT`` -> BUY; ``SELL``/``SLD``/``SSHORT`` -> SELL."""
    action = action.upper()
    if action in ("BUY", "BOT"):
        return OrderSide.BUY
    if action in ("SELL", "SLD", "SSHORT"):
        return OrderSide.SELL
    raise ValueError(f"unknown IB action/side {action!r}")


def ib_order_type(order_type: OrderType) -> str:
    return _ORDER_TYPES[order_type]


def order_type_from_ib(order_type: str) -> OrderType:
    try:
        return _ORDER_TYPES_BACK[order_type.upper()]
    except KeyError:
        raise ValueError(
            f"IB order type {order_type!r} has no ml4t equivalent"
        ) from None


def ib_order_from_request(
    request: OrderRequest, *, account: str = "", parent_order_id: int = 0
) -> Order:
    """A new ib_async ``Order`` for ``request``; ``orderRef`` carries the client order id."""
    order = Order(
        action="BUY" if request.side is OrderSide.BUY else "SELL",
        totalQuantity=float(request.quantity),
        orderType=ib_order_type(request.order_type),
        account=account,
        orderRef=request.client_order_id,
        tif="DAY"
        if request.order_type is OrderType.MOC
        else request.time_in_force.upper(),
        transmit=True,
    )
    _apply_prices(order, request)
    if request.oca_group:
        order.ocaGroup = request.oca_group
        order.ocaType = 1  # cancel the rest of the group on a fill, with block
    if parent_order_id:
        order.parentId = parent_order_id
    return order


def modified_order(order: Order, request: OrderRequest) -> Order:
    """The same order (same orderId / permId / orderRef) with the request's quantity and prices."""
    if request.client_order_id != order.orderRef:
        raise ValueError(
            f"modify of {request.client_order_id!r} applied to IB order with orderRef {order.orderRef!r}"
        )
    new = dataclasses.replace(order, totalQuantity=float(request.quantity))
    new.orderType = ib_order_type(request.order_type)
    new.lmtPrice = UNSET_DOUBLE
    new.auxPrice = UNSET_DOUBLE
    _apply_prices(new, request)
    return new


def _apply_prices(order: Order, request: OrderRequest) -> None:
    t = request.order_type
    if t in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if request.limit_price is None:
            raise ValueError(
                f"{t.name} order {request.client_order_id} needs a limit_price"
            )
        order.lmtPrice = float(request.limit_price)
    if t in (OrderType.STOP, OrderType.STOP_LIMIT):
        if request.stop_price is None:
            raise ValueError(
                f"{t.name} order {request.client_order_id} needs a stop_price"
            )
        order.auxPrice = float(request.stop_price)
    if t is OrderType.TRAILING_STOP:
        if request.trail_amount is None:
            raise ValueError(
                f"TRAILING_STOP order {request.client_order_id} needs a trail_amount"
            )
        order.auxPrice = float(request.trail_amount)


def _price(value: float) -> float | None:
    if (
        value is None
        or value == UNSET_DOUBLE
        or (isinstance(value, float) and math.isnan(value))
    ):
        return None
    return float(value)


def venue_status(ib_status: str) -> str:
    """ib_async ``OrderStatus.status`` -> ``open | filled | cancelled | rejected``."""
    if ib_status in _OPEN:
        return "open"
    if ib_status == "Filled":
        return "filled"
    if ib_status in _CANCELLED:
        return "cancelled"
    if ib_status == "Inactive":
        return "rejected"
    return "open"


def venue_order_from_trade(trade: Trade) -> VenueOrder | None:
    """The VenueOrder for an ib_async Trade, or None when it carries no client order id."""
    order = trade.order
    if not order.orderRef:
        return None
    # the largest IB gives: its cumulative count, the order's own, or the executions that reached
    # us (each may lag the others; executions may be withheld, a status may be stale)
    filled = max(
        float(sum(f.execution.shares for f in trade.fills)),
        float(trade.orderStatus.filled or 0.0),
        float(_price(getattr(order, "filledQuantity", None)) or 0.0),
    )
    order_type = order_type_from_ib(order.orderType)
    aux = _price(order.auxPrice)
    return VenueOrder(
        client_order_id=order.orderRef,
        venue_order_id=str(order.permId or order.orderId),
        asset=asset_of(trade.contract),
        side=side_from_action(order.action),
        quantity=float(order.totalQuantity),
        filled_quantity=float(filled),
        order_type=order_type,
        status=venue_status(trade.orderStatus.status),
        limit_price=_price(order.lmtPrice),
        stop_price=aux
        if order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        else None,
    )


def is_warning(error_code: int) -> bool:
    """The codes ib_async 2.1.0 treats as warnings (the order stays live)."""
    return error_code in _WARNING_CODES or 2100 <= error_code < 2200


def rejection_of(trade: Trade) -> tuple[str, str] | None:
    """(code, message) when the trade's last log entry is an order-ending error, else None.

    ib_async marks a trade Cancelled on any non-warning error before emitting ``errorEvent``;
    202 ("Order Canceled") is a confirmed cancel, not a rejection.
    """
    for entry in reversed(trade.log):
        if entry.errorCode:
            # a warning ended the order only when ib_async cancelled on it (110 on a new order)
            kept_live = is_warning(entry.errorCode) and entry.status != "Cancelled"
            if entry.errorCode == CANCEL_CONFIRMED or kept_live:
                return None
            return str(entry.errorCode), _strip_error_prefix(entry.message)
        if entry.status not in ("Cancelled", "Inactive"):
            return None
    return None


def validation_warning(trade: Trade) -> tuple[str, str] | None:
    """(code, message) of the last warning IB attached to the trade (ib_async then keeps the
    order live with status ValidationError), or None."""
    for entry in reversed(trade.log):
        if entry.errorCode and is_warning(entry.errorCode):
            return str(entry.errorCode), _strip_error_prefix(entry.message)
    return None


_ERROR_PREFIX = re.compile(r"^(?:Error|Warning) \d+, reqId -?\d+: ")


def _strip_error_prefix(message: str) -> str:
    """ib_async logs ``Error 201, reqId 7: <IB text>``; keep IB's text."""
    return _ERROR_PREFIX.sub("", message).split(", contract: ")[0]


# ------------------------------------------------------------------------------- fills
#: What IB sends for a commission not known yet: -1, "unset" (float max, also as +inf), NaN.
COMMISSION_SENTINELS = (-1.0,)


def commission_known(fill: Fill) -> bool:
    """Does ``fill`` carry a real commission (a report arrived and is not a pending sentinel)?"""
    report = fill.commissionReport
    if not report.execId:
        return False
    value = report.commission
    if value is None or not math.isfinite(value) or value >= UNSET_DOUBLE:
        return False
    return value not in COMMISSION_SENTINELS


def fill_event(
    fill: Fill,
    *,
    client_order_id: str,
    cumulative_quantity: float,
    total_quantity: float,
) -> OrderFilled | OrderPartiallyFilled:
    """One execution as an ml4t event: OrderFilled when it completes the order."""
    ex = fill.execution
    commission = fill.commissionReport.commission if commission_known(fill) else 0.0
    cls = (
        OrderFilled
        if cumulative_quantity >= total_quantity - 1e-9
        else OrderPartiallyFilled
    )
    ts = ex.time if isinstance(ex.time, datetime) else fill.time
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return cls(
        client_order_id=client_order_id,
        exec_id=ex.execId,
        asset=asset_of(fill.contract),
        side=side_from_action(ex.side),
        quantity=float(ex.shares),
        price=float(ex.price),
        timestamp=ts,
        commission=float(commission),
        cumulative_quantity=float(cumulative_quantity),
    )
