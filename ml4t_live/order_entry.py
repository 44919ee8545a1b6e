"""Order entry rules shared by the venue brokers, as ml4t.backtest's ``Broker`` applies them.

Pure functions: validation and side inference for ``submit_order``, the bracket price sanity
warnings of ``submit_bracket``, and the :class:`~ml4t_live.protocols.OrderRequest` a venue gets.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from ml4t.backtest import Order, OrderSide, OrderType

from .protocols import OrderRequest

MIN_QUANTITY = 1e-8
_NEEDS_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_NEEDS_STOP = (OrderType.STOP, OrderType.STOP_LIMIT)


def check_order(
    quantity: float,
    side: OrderSide | None,
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    trail_amount: float | None,
) -> tuple[OrderSide, float] | None:
    """(side, absolute quantity), None for a near-zero quantity; ValueError for a bad order (its
    prices are checked first, as the backtest does).

    The side comes from the sign of ``quantity`` only when ``side`` is None (the backtest's rule).
    """
    if limit_price is not None or order_type in _NEEDS_LIMIT:
        _check_price("limit_price", limit_price, order_type)
    if stop_price is not None or order_type in _NEEDS_STOP:
        _check_price("stop_price", stop_price, order_type)
    if not math.isfinite(quantity):
        raise ValueError(f"quantity must be finite, got {quantity}")
    if side is None:
        side = OrderSide.BUY if quantity >= 0 else OrderSide.SELL
    quantity = abs(quantity)
    if quantity <= MIN_QUANTITY:
        return None
    if order_type is OrderType.TRAILING_STOP and (trail_amount is None or trail_amount <= 0):
        raise ValueError("TRAILING_STOP order requires a positive trail_amount")
    return side, quantity


def _check_price(name: str, price: float | None, order_type: OrderType) -> None:
    """A price the order needs or was given is finite and positive (the backtest's rule: a NaN
    or infinite price raises there, so it never reaches a venue here)."""
    if price is None or not 0 < price < math.inf:
        raise ValueError(f"{order_type.value} order requires a finite positive {name} (got {price})")


def warn_inverted_bracket(
    asset: str, side: OrderSide, reference: float | None, take_profit: float, stop_loss: float
) -> None:
    """The backtest's sanity warnings for bracket prices on the wrong side of the entry."""
    if reference is None:
        return
    long = side is OrderSide.BUY
    if (take_profit <= reference) if long else (take_profit >= reference):
        warnings.warn(
            f"Bracket order for {'LONG' if long else 'SHORT'} {asset}: take_profit ({take_profit}) "
            f"is on the wrong side of the entry ({reference})",
            UserWarning,
            stacklevel=3,
        )
    if (stop_loss >= reference) if long else (stop_loss <= reference):
        warnings.warn(
            f"Bracket order for {'LONG' if long else 'SHORT'} {asset}: stop_loss ({stop_loss}) "
            f"is on the wrong side of the entry ({reference})",
            UserWarning,
            stacklevel=3,
        )


def order_request(order: Order, *, oca_group: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=order.order_id,
        asset=order.asset,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        trail_amount=order.trail_amount,
        time_in_force="cls" if order.order_type is OrderType.MOC else "gtc",
        oca_group=oca_group,
        filled_quantity=order.filled_quantity,
    )


def intent_args(request: OrderRequest) -> dict[str, Any]:
    """The journaled form of an order request (plain values; the client order id is the key)."""
    return {
        "asset": request.asset,
        "side": request.side.value,
        "quantity": float(request.quantity),
        "order_type": request.order_type.value,
        "limit_price": request.limit_price,
        "stop_price": request.stop_price,
        "trail_amount": request.trail_amount,
        "time_in_force": request.time_in_force,
        "oca_group": request.oca_group,
    }


def order_from_request(cid: str, request: dict[str, Any]) -> Order:
    """The ``Order`` a journaled request (:func:`intent_args`) describes, as it was sent."""
    return Order(
        asset=request["asset"], side=OrderSide(request["side"]), quantity=request["quantity"],
        order_type=OrderType(request["order_type"]), limit_price=request.get("limit_price"),
        stop_price=request.get("stop_price"), trail_amount=request.get("trail_amount"),
        order_id=cid,
    )  # fmt: skip
