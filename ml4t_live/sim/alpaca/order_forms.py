"""Server-side validation of order requests (POST /v2/orders, PATCH /v2/orders/{id}).

alpaca-py validates most of this client-side, but raw HTTP and other clients do not, so the
simulator checks it again and answers with Alpaca-style bodies (``{"code", "message"}``; the code's
first three digits are the HTTP status). Pure functions: body dict in, :class:`OrderForm` out, or
:class:`AlpacaError` raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")
ORDER_CLASSES = ("", "simple", "bracket", "oco", "oto")
MAX_CLIENT_ORDER_ID = 128
MAX_NUMBER = 1e12  # no quantity or price beyond this is an order (and 1e308 would break the encoding)


class AlpacaError(Exception):
    """An HTTP error the simulator answers with Alpaca's body."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def unprocessable(message: str, **extra: Any) -> AlpacaError:
    return AlpacaError(422, 42210000, message, **extra)


def bad_request(message: str) -> AlpacaError:
    return AlpacaError(400, 40010001, message)


def not_found(message: str = "order not found") -> AlpacaError:
    return AlpacaError(404, 40410000, message)


def forbidden(message: str, **extra: Any) -> AlpacaError:
    return AlpacaError(403, 40310000, message, **extra)


@dataclass
class LegForm:
    limit_price: float | None = None
    stop_price: float | None = None


@dataclass
class OrderForm:
    """A validated submit request."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: float | None
    notional: float | None
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None
    order_class: str  # "" | bracket | oco | oto
    take_profit: LegForm | None
    stop_loss: LegForm | None
    client_order_id: str | None
    extended_hours: bool
    position_intent: str | None

    @property
    def fractional(self) -> bool:
        return self.notional is not None or (self.qty is not None and not float(self.qty).is_integer())


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key}: {value!r}") from None
    if not math.isfinite(number):
        raise bad_request(f"invalid {key}: {value!r}")
    if abs(number) > MAX_NUMBER:
        raise unprocessable(f"{key} is too large: {value!r}")
    return number


def _leg(body: dict[str, Any], key: str) -> LegForm | None:
    raw = body.get(key)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request(f"invalid {key}")
    return LegForm(limit_price=_number(raw, "limit_price"), stop_price=_number(raw, "stop_price"))


def parse_order(body: Any) -> OrderForm:
    """Validate a POST /v2/orders body the way Alpaca does (the subset the simulator models)."""
    if not isinstance(body, dict):
        raise bad_request("request body format is invalid")
    symbol = str(body.get("symbol") or "").upper()
    if not symbol:
        raise unprocessable("symbol is required")
    side = str(body.get("side") or "").lower()
    if side not in ("buy", "sell"):
        raise unprocessable(f"invalid side: {body.get('side')!r}")
    order_type = str(body.get("type") or body.get("order_type") or "").lower()
    if order_type not in ORDER_TYPES:
        raise unprocessable(f"invalid order type: {order_type!r}")
    tif = str(body.get("time_in_force") or "").lower()
    if tif not in TIME_IN_FORCE:
        raise unprocessable(f"invalid time_in_force: {tif!r}")
    order_class = str(body.get("order_class") or "").lower()
    if order_class not in ORDER_CLASSES:
        raise unprocessable(f"invalid order_class: {order_class!r}")
    order_class = "" if order_class == "simple" else order_class
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and len(str(client_order_id)) > MAX_CLIENT_ORDER_ID:
        raise unprocessable("client_order_id must be no more than 128 characters")
    form = OrderForm(
        symbol=symbol, side=side, type=order_type, time_in_force=tif,
        qty=_number(body, "qty"), notional=_number(body, "notional"),
        limit_price=_number(body, "limit_price"), stop_price=_number(body, "stop_price"),
        trail_price=_number(body, "trail_price"), trail_percent=_number(body, "trail_percent"),
        order_class=order_class, take_profit=_leg(body, "take_profit"), stop_loss=_leg(body, "stop_loss"),
        client_order_id=None if client_order_id is None else str(client_order_id),
        extended_hours=str(body.get("extended_hours", False)).lower() == "true",
        position_intent=body.get("position_intent"),
    )
    _check_quantity(form)
    _check_prices(form)
    _check_class(form)
    _check_extended_hours(form)
    return form


def _check_quantity(form: OrderForm) -> None:
    if (form.qty is None) == (form.notional is None):
        raise unprocessable("qty or notional is required" if form.qty is None else
                            "only one of qty or notional may be specified")
    if (form.qty is not None and form.qty <= 0) or (form.notional is not None and form.notional <= 0):
        raise unprocessable("qty must be > 0" if form.qty is not None else "notional must be > 0")
    if form.time_in_force == "fok":
        raise unprocessable("time_in_force fok is not supported by the simulated venue")
    if form.notional is not None and form.type not in ("market", "limit"):
        raise unprocessable("notional orders are only supported for market and limit orders")
    if form.fractional:
        if form.time_in_force != "day":
            raise unprocessable("fractional orders must be DAY orders")
        if form.type not in ("market", "limit", "stop", "stop_limit"):
            raise unprocessable("fractional orders are only supported for market, limit, stop and "
                                "stop_limit orders")
        if form.order_class:
            raise unprocessable("fractional orders cannot be bracket, oco or oto orders")


def _check_prices(form: OrderForm) -> None:
    needs_limit = form.type in ("limit", "stop_limit") and form.order_class != "oco"
    if needs_limit and form.limit_price is None:
        raise unprocessable("limit_price is required for limit orders")
    if form.type in ("stop", "stop_limit") and form.stop_price is None:
        raise unprocessable("stop_price is required for stop orders")
    if form.type == "trailing_stop":
        if (form.trail_price is None) == (form.trail_percent is None):
            raise unprocessable("exactly one of trail_price or trail_percent is required")
        if form.time_in_force not in ("day", "gtc"):
            raise unprocessable("trailing_stop orders must be DAY or GTC orders")
    for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        value = getattr(form, name)
        if value is not None and value <= 0:
            raise unprocessable(f"{name} must be > 0")
    if form.type == "market" and (form.limit_price is not None or form.stop_price is not None):
        raise unprocessable("market orders require no stop or limit price")


def _check_extended_hours(form: OrderForm) -> None:
    if form.extended_hours and (form.type != "limit" or form.time_in_force != "day" or form.order_class):
        raise unprocessable("extended hours orders must be simple DAY limit orders")


def _check_class(form: OrderForm) -> None:
    if form.order_class in ("bracket", "oco", "oto") and form.time_in_force not in ("day", "gtc"):
        raise unprocessable(f"{form.order_class} orders must be DAY or GTC orders")
    if form.order_class == "bracket":
        if form.type not in ("market", "limit"):
            raise unprocessable("bracket orders must be market or limit orders")
        if form.take_profit is None or form.stop_loss is None:
            raise unprocessable("bracket orders require take_profit and stop_loss")
    if form.order_class == "oco":
        if form.type != "limit":
            raise unprocessable("oco orders must be limit orders")
        if form.take_profit is None or form.stop_loss is None:
            raise unprocessable("oco orders require take_profit and stop_loss")
    if form.order_class == "oto" and (form.take_profit is None) == (form.stop_loss is None):
        raise unprocessable("oto orders require exactly one of take_profit or stop_loss")
    if form.take_profit is not None and form.take_profit.limit_price is None:
        raise unprocessable("take_profit.limit_price is required")
    if form.stop_loss is not None and form.stop_loss.stop_price is None:
        raise unprocessable("stop_loss.stop_price is required")
    if form.order_class == "" and (form.take_profit is not None or form.stop_loss is not None):
        raise unprocessable("take_profit / stop_loss need order_class bracket, oco or oto")


@dataclass
class ReplaceForm:
    qty: float | None
    time_in_force: str | None
    limit_price: float | None
    stop_price: float | None
    trail: float | None
    client_order_id: str | None


def parse_replace(body: Any) -> ReplaceForm:
    """Validate a PATCH /v2/orders/{id} body."""
    if not isinstance(body, dict):
        raise bad_request("request body format is invalid")
    tif = body.get("time_in_force")
    if tif is not None and str(tif).lower() not in TIME_IN_FORCE:
        raise unprocessable(f"invalid time_in_force: {tif!r}")
    form = ReplaceForm(
        qty=_number(body, "qty"), time_in_force=None if tif is None else str(tif).lower(),
        limit_price=_number(body, "limit_price"), stop_price=_number(body, "stop_price"),
        trail=_number(body, "trail"),
        client_order_id=None if body.get("client_order_id") is None else str(body["client_order_id"]),
    )
    if all(v is None for v in (form.qty, form.time_in_force, form.limit_price, form.stop_price, form.trail)):
        raise unprocessable("no fields to replace")
    if form.qty is not None and form.qty <= 0:
        raise unprocessable("qty must be > 0")
    return form
