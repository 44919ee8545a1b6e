"""Pure translation between IB order fields and the shared matching core's SimOrderSpec."""

from __future__ import annotations

from ml4t.backtest import OrderSide, OrderType

from ..matching import SimOrderSpec
from .contracts import SymbolInfo
from .decoders import PlaceOrder
from .encoders import OrderView

# IB orderType -> backtest OrderType
IB_ORDER_TYPES: dict[str, OrderType] = {
    "MKT": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STP LMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
    "MOC": OrderType.MOC,
}
# IB tif -> SimOrderSpec time_in_force
IB_TIF = {"DAY": "day", "GTC": "gtc", "IOC": "ioc", "OPG": "opg"}
# Statuses while an order works but is not yet at the "exchange" (IB holds stops itself).
HELD_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})


class OrderRefused(ValueError):
    """The request cannot become an order; the message is IB's rejection reason."""


def to_spec(req: PlaceOrder, sim_parent_id: int | None, oca_group: str | None) -> SimOrderSpec:
    """A SimOrderSpec for an IB placeOrder, or :class:`OrderRefused`."""
    kind = IB_ORDER_TYPES.get(req.order_type.upper())
    if kind is None:
        raise OrderRefused(f"order type {req.order_type!r} is not supported by this venue")
    action = req.action.upper()
    if action not in ("BUY", "SELL", "SSHORT"):
        raise OrderRefused(f"action {req.action!r} is not BUY or SELL")
    tif = IB_TIF.get(req.tif.upper())
    if tif is None:
        raise OrderRefused(f"time in force {req.tif!r} is not supported")
    limit = stop = trail = None
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        limit = req.lmt_price
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
        stop = req.aux_price
    if kind is OrderType.TRAILING_STOP:
        if req.trailing_percent is not None and req.aux_price is None:
            raise OrderRefused("TRAIL with trailingPercent is not supported; use auxPrice")
        trail = req.aux_price
    return SimOrderSpec(
        asset=req.contract.symbol.upper(),
        side=OrderSide.BUY if action == "BUY" else OrderSide.SELL,
        quantity=req.quantity,
        order_type=kind,
        limit_price=limit,
        stop_price=stop,
        trail_amount=trail,
        time_in_force=tif,
        client_order_id=req.order_ref,
        oca_group=oca_group,
        parent_id=sim_parent_id,
    )


def ib_side(side: OrderSide) -> str:
    return "BOT" if side is OrderSide.BUY else "SLD"


def working_status(order_type: str, held: bool) -> str:
    """IB's status for an accepted, unfilled order."""
    return "PreSubmitted" if held or order_type.upper() in HELD_TYPES else "Submitted"


def what_if_view(
    req: PlaceOrder, info: SymbolInfo, client_id: int, account: str, numbers: tuple[float, ...]
) -> OrderView:
    """The openOrder a whatIf request gets, carrying the account model's nine margin numbers."""
    margins = tuple(f"{v:.2f}" for v in numbers)
    return OrderView(
        order_id=req.order_id, client_id=client_id, perm_id=0, info=info,
        exchange=req.contract.exchange or "SMART", action=req.action.upper(),
        total_quantity=req.quantity, order_type=req.order_type.upper(),
        lmt_price=req.lmt_price, aux_price=req.aux_price, tif=req.tif.upper(),
        oca_group=req.oca_group, account=account, order_ref=req.order_ref,
        parent_id=req.parent_id, outside_rth=req.outside_rth, status="PreSubmitted",
        what_if=True, margins=margins, commission=0.0,
    )  # fmt: skip
