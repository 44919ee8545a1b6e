"""Pure encoders: the simulated Alpaca's objects -> the JSON / msgpack that real Alpaca sends.

Traps this module exists for (see shared/reference/alpaca_protocol.md §4, §6, §10):
money and quantity fields are JSON *strings*; unset fields are explicit ``null``; order timestamps
are UTC with nine fractional digits and ``Z``; clock timestamps carry the New York offset;
calendar times are ``HH:MM``; ``AccountStatus`` is upper case; positions need a valid exchange;
bars always carry ``n`` and ``vw`` (``null`` when the recording has none); on the data stream ``t``
is a msgpack Timestamp, never a string.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

from .records import ACCOUNT_ID, ACCOUNT_NUMBER, AlpacaOrder, asset_id_for

NEW_YORK = ZoneInfo("America/New_York")


# ------------------------------------------------------------------ scalars
def num(value: float | None) -> str | None:
    """A number as Alpaca writes it: a plain decimal string, no exponent, no trailing zeros."""
    if value is None:
        return None
    text = format(Decimal(repr(float(value))).quantize(Decimal("1e-9")).normalize(), "f")
    return "0" if text in ("-0", "") else text


def ts_utc(when: datetime | None) -> str | None:
    """Order-style timestamp: ``2026-11-24T14:31:00.123456000Z`` (UTC, nine digits)."""
    if when is None:
        return None
    utc = _aware(when).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}000Z"


def ts_ny(when: datetime) -> str:
    """Clock-style timestamp with the New York offset: ``2026-11-24T09:31:00.000000000-05:00``."""
    local = _aware(when).astimezone(NEW_YORK)
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}000{offset[:3]}:{offset[3:]}"


def ts_bar(when: datetime) -> str:
    """Historical-bar timestamp: ``2026-11-24T14:30:00Z`` (whole seconds)."""
    return _aware(when).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# ------------------------------------------------------------------ errors
def error_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """Alpaca's error object: an 8-digit code whose first three digits are the HTTP status."""
    return {"code": code, "message": message, **extra}


# ------------------------------------------------------------------ trading objects
def order_json(order: AlpacaOrder, legs: list[AlpacaOrder] | None = None) -> dict[str, Any]:
    """The full order object (REST responses and the ``order`` field of trade updates)."""
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": ts_utc(order.created_at),
        "updated_at": ts_utc(order.updated_at or order.created_at),
        "submitted_at": ts_utc(order.created_at),
        "filled_at": ts_utc(order.filled_at),
        "expired_at": ts_utc(order.expired_at),
        "canceled_at": ts_utc(order.canceled_at),
        "failed_at": ts_utc(order.failed_at),
        "replaced_at": ts_utc(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": num(order.notional),
        "qty": num(order.qty),
        "filled_qty": num(order.filled_qty),
        "filled_avg_price": num(order.filled_avg_price),
        "order_class": order.order_class,
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": order.position_intent,
        "time_in_force": order.time_in_force,
        "limit_price": num(order.limit_price),
        "stop_price": num(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": [order_json(leg) for leg in legs] if legs else None,
        "trail_percent": num(order.trail_percent),
        "trail_price": num(order.trail_price),
        "hwm": num(order.hwm),
        "subtag": None,
        "source": None,
        "expires_at": None,
    }


#: the account-standing fields a ``SimulatedAlpaca(account_state=...)`` may set, with their types
ACCOUNT_STATE_FIELDS: dict[str, type] = {
    "status": str, "trading_blocked": bool, "account_blocked": bool,
    "trade_suspended_by_user": bool, "transfers_blocked": bool,
}


def account_json(*, cash: float, equity: float, long_value: float, short_value: float,
                 last_equity: float, created_at: datetime, multiplier: float = 1.0,
                 standing: dict[str, Any] | None = None) -> dict[str, Any]:
    """``standing``: values for :data:`ACCOUNT_STATE_FIELDS` (e.g. a blocked account) over the
    defaults of an active, unblocked account."""
    buying_power = max(cash, 0.0) * multiplier if multiplier <= 1 else max(equity, 0.0) * multiplier
    return {
        "id": ACCOUNT_ID,
        "account_number": ACCOUNT_NUMBER,
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "buying_power": num(buying_power),
        "regt_buying_power": num(buying_power),
        "non_marginable_buying_power": num(max(cash, 0.0)),
        "options_buying_power": num(max(cash, 0.0)),
        "cash": num(cash),
        "accrued_fees": "0",
        "pending_transfer_in": None,
        "pending_transfer_out": None,
        "portfolio_value": num(equity),
        "equity": num(equity),
        "last_equity": num(last_equity),
        "long_market_value": num(long_value),
        "short_market_value": num(short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": num(multiplier),
        "shorting_enabled": True,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "created_at": ts_utc(created_at),
        "options_approved_level": 0,
        "options_trading_level": 0,
    } | (standing or {})


def account_configuration_json(fractional: bool = True) -> dict[str, Any]:
    return {
        "fractional_trading": fractional,
        "max_margin_multiplier": "1",
        "no_shorting": False,
        "suspend_trade": False,
        "trade_confirm_email": "none",
        "ptp_no_exception_entry": False,
        "max_options_trading_level": 0,
    }


def position_json(symbol: str, qty: float, avg_price: float, price: float,
                  last_close: float | None = None) -> dict[str, Any]:
    market_value = qty * price
    cost_basis = qty * avg_price
    unrealized = market_value - cost_basis
    lastday = last_close if last_close is not None else price
    return {
        "asset_id": asset_id_for(symbol),
        "symbol": symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "qty": num(qty),
        "qty_available": num(qty),
        "avg_entry_price": num(avg_price),
        "side": "long" if qty >= 0 else "short",
        "market_value": num(market_value),
        "cost_basis": num(cost_basis),
        "unrealized_pl": num(unrealized),
        "unrealized_plpc": num(unrealized / abs(cost_basis) if cost_basis else 0.0),
        "unrealized_intraday_pl": num(qty * (price - lastday)),
        "unrealized_intraday_plpc": num((price - lastday) / lastday if lastday else 0.0),
        "current_price": num(price),
        "lastday_price": num(lastday),
        "change_today": num((price - lastday) / lastday if lastday else 0.0),
    }


def asset_json(symbol: str) -> dict[str, Any]:
    return {
        "id": asset_id_for(symbol),
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "name": f"{symbol} (simulated)",
        "status": "active",
        "tradable": True,
        "marginable": True,
        "shortable": True,
        "easy_to_borrow": True,
        "fractionable": True,
        "maintenance_margin_requirement": 30,
        "attributes": ["fractional_eh_enabled"],
    }


def clock_json(now: datetime, is_open: bool, next_open: datetime, next_close: datetime) -> dict[str, Any]:
    return {
        "timestamp": ts_ny(now),
        "is_open": is_open,
        "next_open": ts_ny(next_open),
        "next_close": ts_ny(next_close),
    }


def calendar_json(day: date, open_at: datetime, close_at: datetime, session_open: time | None = None,
                  session_close: time | None = None) -> dict[str, Any]:
    """A ``/v2/calendar`` row: regular times as ``HH:MM`` (alpaca-py parses exactly that)."""
    o, c = open_at.astimezone(NEW_YORK), close_at.astimezone(NEW_YORK)
    return {
        "date": day.isoformat(),
        "open": o.strftime("%H:%M"),
        "close": c.strftime("%H:%M"),
        "session_open": (session_open or time(4, 0)).strftime("%H%M"),
        "session_close": (session_close or time(20, 0)).strftime("%H%M"),
        "settlement_date": None,
    }


# ------------------------------------------------------------------ streams
def trade_update(event: str, order: AlpacaOrder, when: datetime, legs: list[AlpacaOrder] | None = None,
                 **fill: Any) -> dict[str, Any]:
    """A ``trade_updates`` message; ``fill`` carries price / qty / position_qty / execution_id."""
    data: dict[str, Any] = {"event": event, "timestamp": ts_utc(when), "order": order_json(order, legs)}
    for key in ("execution_id", "price", "qty", "position_qty"):
        if key in fill and fill[key] is not None:
            data[key] = fill[key] if key == "execution_id" else num(fill[key])
    return {"stream": "trade_updates", "data": data}


def bar_fields(bar: Any) -> dict[str, Any]:
    """The common bar keys from a recorded bar (any object with open/high/low/close/volume)."""
    n = getattr(bar, "trade_count", None)
    vw = getattr(bar, "vwap", None)
    volume = float(bar.volume)
    return {
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": int(volume) if volume.is_integer() else volume,
        "n": None if n is None else int(n),
        "vw": None if vw is None else float(vw),
    }


def rest_bar(bar: Any, start: datetime) -> dict[str, Any]:
    return {"t": ts_bar(start), **bar_fields(bar)}


def rest_trade(price: float, size: float, when: datetime, trade_id: int) -> dict[str, Any]:
    """A REST trade (latest / historical / snapshot ``latestTrade``)."""
    return {"t": ts_utc(when), "x": "V", "p": float(price), "s": int(size) if float(size).is_integer() else size,
            "c": ["@"], "i": trade_id, "z": "C"}


def rest_quote(bid: float, ask: float, when: datetime, size: int = 100) -> dict[str, Any]:
    """A REST quote (latest / historical / snapshot ``latestQuote``)."""
    return {"t": ts_utc(when), "ax": "V", "ap": round(float(ask), 6), "as": size, "bx": "V",
            "bp": round(float(bid), 6), "bs": size, "c": ["R"], "z": "C"}


def stream_bar(symbol: str, bar: Any, start: datetime, kind: str = "b") -> dict[str, Any]:
    """A data-stream bar (``T`` b / u / d); ``t`` is the bar's START as a msgpack Timestamp."""
    return {"T": kind, "S": symbol, "t": msgpack.Timestamp.from_datetime(_aware(start)), **bar_fields(bar)}


def stream_quote(symbol: str, bid: float, ask: float, when: datetime, size: int = 100) -> dict[str, Any]:
    return {"T": "q", "S": symbol, "t": msgpack.Timestamp.from_datetime(_aware(when)), "bx": "V",
            "bp": bid, "bs": size, "ax": "V", "ap": ask, "as": size, "c": ["R"], "z": "C"}


def stream_trade(symbol: str, price: float, size: float, when: datetime, trade_id: int) -> dict[str, Any]:
    return {"T": "t", "S": symbol, "t": msgpack.Timestamp.from_datetime(_aware(when)), "i": trade_id,
            "x": "V", "p": price, "s": size, "c": ["@"], "z": "C"}


def pack(messages: list[dict[str, Any]]) -> bytes:
    """Data-stream frame: every server message is an array of objects."""
    return msgpack.packb(messages, datetime=True)
