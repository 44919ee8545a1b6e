"""Pure translation between alpaca-py models and ml4t types. No I/O, no state, no threads.

Order types (ml4t ``OrderType`` -> Alpaca):

=============  ==============================================================
MARKET         ``market`` with the request's time in force
LIMIT          ``limit``
STOP           ``stop``
STOP_LIMIT     ``stop_limit``
TRAILING_STOP  ``trailing_stop`` with ``trail_price = trail_amount`` (an absolute distance, as in
               ml4t.backtest)
MOC            ``market`` with time in force ``cls``
=============  ==============================================================

A fractional quantity with time in force ``gtc`` goes out as ``day``: Alpaca accepts fractional
orders only as DAY orders (a backtest order of a fractional share type fills, or not, long before
the day ends).

Two exits sharing an ``oca_group`` (a limit take-profit and a stop / stop-limit stop-loss on the
same asset, side and quantity) become one Alpaca ``oco`` order (:func:`to_oco_request`). What
Alpaca cannot express is refused before anything is sent (:class:`NotExpressible`): OCA groups of
any other shape, and a request that still names a parent (``parent_client_order_id``): Alpaca
takes bracket legs only in the entry's own request, so the gateway holds such exits until the
entry fills and sends them without the parent. Replace: alpaca-py's ``ReplaceOrderRequest.qty``
is an ``int``, so fractional quantities cannot be modified (cancel and place instead); the
replacement asks for what is left of the order, not its total (:func:`to_replace_request`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from alpaca.trading.enums import OrderClass, TimeInForce
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.enums import OrderType as AlpacaType
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import Position as AlpacaPosition
from alpaca.trading.models import TradeAccount
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.requests import OrderRequest as AlpacaOrderRequest
from ml4t.backtest import OrderSide, OrderType

from ...protocols import AccountSnapshot, OrderRequest, VenueOrder, VenuePosition


class NotExpressible(ValueError):
    """The order cannot be expressed as an Alpaca order; nothing was sent."""


_TIF = {tif.value: tif for tif in TimeInForce}
_TYPES = {
    AlpacaType.MARKET: OrderType.MARKET,
    AlpacaType.LIMIT: OrderType.LIMIT,
    AlpacaType.STOP: OrderType.STOP,
    AlpacaType.STOP_LIMIT: OrderType.STOP_LIMIT,
    AlpacaType.TRAILING_STOP: OrderType.TRAILING_STOP,
}
OPEN_STATUSES = frozenset(
    {
        AlpacaStatus.NEW,
        AlpacaStatus.PARTIALLY_FILLED,
        AlpacaStatus.ACCEPTED,
        AlpacaStatus.PENDING_NEW,
        AlpacaStatus.ACCEPTED_FOR_BIDDING,
        AlpacaStatus.PENDING_CANCEL,
        AlpacaStatus.PENDING_REPLACE,
        AlpacaStatus.PENDING_REVIEW,
        AlpacaStatus.HELD,
        AlpacaStatus.CALCULATED,
        AlpacaStatus.STOPPED,
        AlpacaStatus.SUSPENDED,
        AlpacaStatus.DONE_FOR_DAY,  # no more fills today; a GTC order resumes tomorrow
    }
)
CANCELLED_STATUSES = frozenset(
    {AlpacaStatus.CANCELED, AlpacaStatus.EXPIRED, AlpacaStatus.REPLACED}
)


# ------------------------------------------------------------------ scalars
def num(value: Any) -> float | None:
    """Alpaca numbers arrive as strings, floats or None."""
    if value is None or value == "":
        return None
    return float(value)


def side_to_alpaca(side: OrderSide) -> AlpacaSide:
    return AlpacaSide.BUY if side is OrderSide.BUY else AlpacaSide.SELL


def side_from_alpaca(side: Any) -> OrderSide:
    return (
        OrderSide.BUY if str(getattr(side, "value", side)) == "buy" else OrderSide.SELL
    )


def type_from_alpaca(order: AlpacaOrder) -> OrderType:
    kind = order.order_type or order.type
    if kind is AlpacaType.MARKET and order.time_in_force is TimeInForce.CLS:
        return OrderType.MOC
    return _TYPES.get(kind, OrderType.MARKET) if kind is not None else OrderType.MARKET


def status_of(order: AlpacaOrder) -> str:
    """``open`` | ``filled`` | ``cancelled`` | ``rejected`` (the :class:`VenueOrder` vocabulary)."""
    if order.status is AlpacaStatus.FILLED:
        return "filled"
    if order.status is AlpacaStatus.REJECTED:
        return "rejected"
    if order.status in CANCELLED_STATUSES:
        return "cancelled"
    return "open"


def _tif(name: str) -> TimeInForce:
    try:
        return _TIF[name.lower()]
    except KeyError:
        raise NotExpressible(
            f"time in force {name!r} is not one of {sorted(_TIF)}"
        ) from None


# ------------------------------------------------------------------ requests
def to_order_request(req: OrderRequest) -> AlpacaOrderRequest:
    """One simple Alpaca order for ``req`` (raises :class:`NotExpressible`)."""
    if req.parent_client_order_id is not None:
        raise NotExpressible(
            f"{req.client_order_id}: a child order (parent {req.parent_client_order_id}) cannot be "
            "sent on its own to Alpaca; bracket legs travel only with their entry"
        )
    if not (req.quantity > 0 and math.isfinite(req.quantity)):
        raise NotExpressible(
            f"{req.client_order_id}: quantity must be > 0, got {req.quantity}"
        )
    tif = _tif(req.time_in_force)
    if tif is TimeInForce.GTC and req.quantity != int(req.quantity):
        tif = TimeInForce.DAY  # Alpaca takes fractional quantities only as DAY orders
    common: dict[str, Any] = {
        "symbol": req.asset,
        "qty": req.quantity,
        "side": side_to_alpaca(req.side),
        "time_in_force": tif,
        "client_order_id": req.client_order_id,
    }
    kind = req.order_type
    try:
        if kind is OrderType.MARKET:
            return MarketOrderRequest(**common)
        if kind is OrderType.MOC:
            return MarketOrderRequest(**{**common, "time_in_force": TimeInForce.CLS})
        if kind is OrderType.LIMIT:
            return LimitOrderRequest(
                **common, limit_price=_price(req.limit_price, "limit", req)
            )
        if kind is OrderType.STOP:
            return StopOrderRequest(
                **common, stop_price=_price(req.stop_price, "stop", req)
            )
        if kind is OrderType.STOP_LIMIT:
            return StopLimitOrderRequest(
                **common,
                stop_price=_price(req.stop_price, "stop", req),
                limit_price=_price(req.limit_price, "limit", req),
            )
        if kind is OrderType.TRAILING_STOP:
            return TrailingStopOrderRequest(
                **common, trail_price=_price(req.trail_amount, "trail", req)
            )
    except ValueError as exc:  # pydantic's validation of the alpaca-py request model
        if isinstance(exc, NotExpressible):
            raise
        raise NotExpressible(f"{req.client_order_id}: {exc}") from exc
    raise NotExpressible(
        f"{req.client_order_id}: order type {kind!r} has no Alpaca equivalent"
    )


def to_oco_request(
    take_profit: OrderRequest, stop_loss: OrderRequest
) -> AlpacaOrderRequest:
    """One Alpaca ``oco`` exit from two ml4t orders in one OCA group.

    The OCO's own ``client_order_id`` is the take-profit's; its stop leg gets one from the venue
    (the gateway maps it back to the stop-loss's id by leg type).
    """
    if take_profit.order_type is not OrderType.LIMIT or stop_loss.order_type not in (
        OrderType.STOP,
        OrderType.STOP_LIMIT,
    ):
        raise NotExpressible(
            "an Alpaca OCO pairs a limit take-profit with a stop(-limit) stop-loss"
        )
    same = (take_profit.asset, take_profit.side, take_profit.quantity)
    if same != (stop_loss.asset, stop_loss.side, stop_loss.quantity):
        raise NotExpressible(
            "the two legs of an Alpaca OCO share asset, side and quantity"
        )
    loss = StopLossRequest(
        stop_price=_price(stop_loss.stop_price, "stop", stop_loss),
        limit_price=stop_loss.limit_price
        if stop_loss.order_type is OrderType.STOP_LIMIT
        else None,
    )
    return LimitOrderRequest(
        symbol=take_profit.asset,
        qty=take_profit.quantity,
        side=side_to_alpaca(take_profit.side),
        time_in_force=_tif(take_profit.time_in_force),
        client_order_id=take_profit.client_order_id,
        order_class=OrderClass.OCO,
        take_profit=TakeProfitRequest(
            limit_price=_price(take_profit.limit_price, "limit", take_profit)
        ),
        stop_loss=loss,
    )


def to_replace_request(
    req: OrderRequest, new_client_order_id: str, filled: float = 0.0
) -> ReplaceOrderRequest:
    """The PATCH of our order ``req`` (its new terms; ``quantity`` its total, fills included) that
    has ``filled`` so far, its replaced orders included.

    Alpaca's replace is a new order for the PATCH's ``qty`` (without one, the old order's whole
    ``qty``), not for what is left of a partly filled order (alpacahq/Alpaca-API#165), and the
    old order's fills stand. So ``qty`` is always sent, as what is left: ``req.quantity -
    filled``. A fill the count misses (one made between the modify's read and Alpaca's replace)
    is asked for again; the modify then cuts the replacement down (:mod:`.modify`).
    Nothing left: :class:`NotExpressible`."""
    qty = req.quantity - filled
    if qty <= 1e-9:
        raise NotExpressible(
            f"{req.client_order_id}: nothing left to replace ({filled:g} of {req.quantity:g} "
            "already filled)"
        )
    if abs(qty - round(qty)) > 1e-9:
        raise NotExpressible(
            f"{req.client_order_id}: alpaca-py replaces whole quantities only (got {qty:g} left "
            f"of {req.quantity:g}); cancel and place a new order instead"
        )
    qty = round(qty)
    fields: dict[str, Any] = {"qty": qty, "client_order_id": new_client_order_id}
    if req.limit_price is not None:
        fields["limit_price"] = req.limit_price
    if req.stop_price is not None:
        fields["stop_price"] = req.stop_price
    if req.trail_amount is not None:
        fields["trail"] = req.trail_amount
    return ReplaceOrderRequest(**fields)


def _price(value: float | None, what: str, req: OrderRequest) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        raise NotExpressible(
            f"{req.client_order_id}: a {req.order_type.value} order needs a {what} price"
        )
    return float(value)


# ------------------------------------------------------------------ venue state
def venue_order(order: AlpacaOrder, client_order_id: str | None = None) -> VenueOrder:
    return VenueOrder(
        client_order_id=client_order_id or order.client_order_id,
        venue_order_id=str(order.id),
        asset=order.symbol or "",
        side=side_from_alpaca(order.side),
        quantity=num(order.qty) or 0.0,
        filled_quantity=num(order.filled_qty) or 0.0,
        order_type=type_from_alpaca(order),
        status=status_of(order),
        limit_price=num(order.limit_price),
        stop_price=num(order.stop_price),
    )


def venue_position(position: AlpacaPosition) -> VenuePosition:
    qty = abs(num(position.qty) or 0.0)
    side = str(getattr(position.side, "value", position.side))
    return VenuePosition(
        asset=position.symbol,
        quantity=-qty if side == "short" else qty,
        avg_cost=num(position.avg_entry_price) or 0.0,
    )


def account_snapshot(
    account: TradeAccount,
    positions: list[AlpacaPosition],
    open_orders: list[VenueOrder],
    *,
    is_paper: bool,
) -> AccountSnapshot:
    return AccountSnapshot(
        account_id=account.account_number,
        is_paper=is_paper,
        cash=num(account.cash) or 0.0,
        equity=num(account.equity) or num(account.portfolio_value) or 0.0,
        positions={p.symbol: venue_position(p) for p in positions},
        open_orders=open_orders,
    )


def made_up_exec_id(order_id: Any, cumulative: float) -> str:
    """The execution id of a fill whose Alpaca execution is not known: ``<order id>:<cumulative
    qty>`` (the tracker's and the restart's alike, so the book drops a repeat of it)."""
    return f"{order_id}:{cumulative:g}"


def fill_price_delta(
    prev_qty: float, prev_avg: float | None, new_qty: float, new_avg: float | None
) -> float | None:
    """Price of the executions between two order snapshots (from the average fill prices)."""
    if new_avg is None or new_qty <= prev_qty:
        return None
    delta = new_qty - prev_qty
    return (new_avg * new_qty - (prev_avg or 0.0) * prev_qty) / delta


def flatten_open(orders: list[AlpacaOrder]) -> list[AlpacaOrder]:
    """A nested open-orders listing with the working legs (OCO / bracket) listed after parents."""
    out = []
    for order in orders:
        out.append(order)
        out.extend(leg for leg in (order.legs or []) if leg.status in OPEN_STATUSES)
    return out


def describe_foreign(order: AlpacaOrder) -> str:
    side = order.side.value if order.side else "?"
    return (
        f"open order {order.client_order_id} ({side} {order.qty} {order.symbol}) was not "
        "placed by this strategy; left untouched"
    )


# ------------------------------------------------------------------ bars
def bar_fields(bar: Any) -> dict[str, Any]:
    """An alpaca-py ``Bar`` -> the backtest's per-asset dict (``price`` is the close)."""
    close = float(bar.close)
    data: dict[str, Any] = {
        "price": close,
        "open": float(bar.open),
        "high": float(bar.high),
        "low": float(bar.low),
        "close": close,
        "volume": float(bar.volume),
        "signals": {},
    }
    return data


def bar_start(bar: Any) -> datetime:
    """Alpaca stamps a bar with its START; so does the backtest's recorded data."""
    return bar.timestamp  # type: ignore[no-any-return]
