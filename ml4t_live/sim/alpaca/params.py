"""Query-string parameters, checked the way Alpaca does: a malformed value is a 4xx JSON answer.

Pure functions over a mapping (aiohttp's ``request.query`` or a dict). A value that does not parse
(``limit=abc``) is ``400 {"code": 40010001, "message": "invalid limit: 'abc'"}``; a value that
parses but is out of range or not one of the choices is ``422 {"code": 42210000, ...}``. Nothing
a client sends in a query string reaches the venue as an unchecked ``int()`` / ``float()`` (which
would surface as a 500).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .order_forms import AlpacaError, bad_request, unprocessable


def text(query: Mapping[str, str], name: str) -> str | None:
    """The stripped value, or None when absent or empty."""
    value = query.get(name)
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def integer(query: Mapping[str, str], name: str, default: int, *, low: int = 1,
            high: int | None = None, clamp: bool = False) -> int:
    """An integer in ``[low, high]``; above ``high`` is clamped when ``clamp`` (Alpaca's data API
    caps ``limit`` at 10000 silently), else a 422."""
    raw = text(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"invalid {name}: {raw!r} (an integer is expected)") from None
    if value < low:
        raise unprocessable(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        if clamp:
            return high
        raise unprocessable(f"{name} must be <= {high}, got {value}")
    return value


def number(query: Mapping[str, str], name: str, *, positive: bool = True) -> float | None:
    """A finite decimal number (``> 0`` when ``positive``), or None when absent."""
    raw = text(query, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"invalid {name}: {raw!r} (a number is expected)") from None
    if not math.isfinite(value):
        raise bad_request(f"invalid {name}: {raw!r} (a number is expected)")
    if positive and value <= 0:
        raise unprocessable(f"{name} must be > 0, got {raw}")
    return value


def choice(query: Mapping[str, str], name: str, default: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (case-insensitive), ``default`` when absent."""
    raw = text(query, name)
    if raw is None:
        return default
    value = raw.lower()
    if value not in choices:
        raise unprocessable(f"invalid {name}: {raw!r} (one of {', '.join(choices)})")
    return value


def symbols(query: Mapping[str, str], name: str = "symbols", *, required: bool = True) -> list[str]:
    """A comma-separated symbol list, upper-cased and de-duplicated in the order given."""
    raw = text(query, name)
    out: list[str] = []
    for item in (raw or "").split(","):
        symbol = item.strip().upper()
        if symbol and symbol not in out:
            out.append(symbol)
    if required and not out:
        raise bad_request(f"{name} is required (a comma-separated list such as AAPL,MSFT)")
    return out


__all__ = ["AlpacaError", "choice", "integer", "number", "symbols", "text"]
