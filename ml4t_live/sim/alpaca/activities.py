"""``GET /v2/account/activities[/{activity_type}]``: the account's executions as Alpaca lists them.

Alpaca's account activities are the REST record of every execution (``activity_type`` ``FILL``),
one per ``trade_updates`` fill. Each has ``id`` in Alpaca's documented ``<timestamp>::<uuid>`` form
(17 digits, UTC to the millisecond); the uuid part is the ``execution_id`` of the trade update that
reported the same fill, so a client that missed the update can still key the fill by the venue's
execution id. The simulated account has only trade activities: any other valid type lists empty.

Query parameters as Alpaca documents them: ``activity_types`` (list endpoint; comma separated) or
``category`` (``trade_activity`` | ``non_trade_activity``), ``date`` (cannot be combined with
``after`` / ``until``), ``after`` / ``until`` (exclusive bounds on ``transaction_time``),
``direction`` (``asc`` | ``desc``, default ``desc``), ``page_size`` (default and maximum 100 unless
``date`` is given), ``page_token`` (the ``id`` of the last activity of the previous page) and
``order_id`` (only that order's activities). A bad value answers Alpaca's 4xx JSON error.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from . import data_api, payloads
from .order_forms import AlpacaError
from .records import FillRecord

ACTIVITY_TYPES = frozenset(
    [
        "FILL",
        "TRANS",
        "MISC",
        "ACATC",
        "ACATS",
        "CSD",
        "CSW",
        "DIV",
        "DIVCGL",
        "DIVCGS",
        "DIVFEE",
        "DIVFT",
        "DIVNRA",
        "DIVROC",
        "DIVTW",
        "DIVTXEX",
        "FEE",
        "CFEE",
        "INT",
        "INTNRA",
        "INTTW",
        "JNL",
        "JNLC",
        "JNLS",
        "MA",
        "NC",
        "OPASN",
        "OPEXP",
        "OPXRC",
        "PTC",
        "PTR",
        "REORG",
        "SC",
        "SSO",
        "SSP",
    ]
)
MAX_PAGE = 100


def _bad(message: str) -> AlpacaError:
    return AlpacaError(422, 42210000, message)  # the code leads with the HTTP status, as Alpaca's do


def activity_id(fill: FillRecord) -> str:
    utc = data_api._utc(fill.timestamp)
    return utc.strftime("%Y%m%d%H%M%S") + f"{utc.microsecond // 1000:03d}::{fill.execution_id}"


def activity_json(fill: FillRecord) -> dict[str, Any]:
    return {
        "id": activity_id(fill),
        "activity_type": "FILL",
        "transaction_time": payloads.ts_utc(fill.timestamp),
        "type": "partial_fill" if fill.leaves_qty > 1e-9 else "fill",
        "price": payloads.num(fill.price),
        "qty": payloads.num(fill.qty),
        "side": fill.side,
        "symbol": fill.symbol,
        "leaves_qty": payloads.num(fill.leaves_qty),
        "order_id": fill.order_id,
        "cum_qty": payloads.num(fill.cum_qty),
    }


def wanted_types(path_type: str | None, query: Any) -> set[str]:
    """The activity types asked for; a type or category Alpaca does not know is a 422."""
    if path_type is not None:
        if "activity_types" in query or "category" in query:
            raise _bad("activity_types and category cannot be used with an activity type in the path")
        types = [path_type]
    elif query.get("activity_types") and query.get("category"):
        raise _bad("activity_types and category are mutually exclusive")
    elif query.get("category"):
        category = query["category"]
        if category not in ("trade_activity", "non_trade_activity"):
            raise _bad(f"invalid category: {category}")
        return {"FILL"} if category == "trade_activity" else set(ACTIVITY_TYPES - {"FILL"})
    elif query.get("activity_types"):
        types = [t.strip() for t in query["activity_types"].split(",") if t.strip()]
    else:
        return set(ACTIVITY_TYPES)
    unknown = [t for t in types if t.upper() not in ACTIVITY_TYPES]
    if unknown:
        raise _bad(f"invalid activity type: {unknown[0]}")
    return {t.upper() for t in types}


def _page_size(query: Any, by_date: bool) -> int | None:
    text = query.get("page_size")
    if text is None or text == "":
        return None if by_date else MAX_PAGE
    try:
        size = int(text)
    except ValueError:
        raise _bad(f"invalid page_size: {text!r}") from None
    if size < 1 or (size > MAX_PAGE and not by_date):
        raise _bad(f"page_size must be between 1 and {MAX_PAGE}")
    return size


def _day(text: str) -> tuple[datetime, datetime]:
    """``date``: that New York trading day (``YYYY-MM-DD`` or a timestamp on it)."""
    parsed = data_api.parse_time(text, "date")
    assert parsed is not None
    day = parsed.astimezone(payloads.NEW_YORK).date() if "T" in text else parsed.date()
    start = datetime.combine(day, time(), payloads.NEW_YORK)
    return data_api._utc(start), data_api._utc(start + timedelta(days=1))


def list_activities(fills: list[FillRecord], types: set[str], query: Any) -> list[dict[str, Any]]:
    """One page of activities, Alpaca's way (see the module docstring)."""
    date = query.get("date")
    if date and (query.get("after") or query.get("until")):
        raise _bad("date cannot be used with after or until")
    direction = (query.get("direction") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise _bad(f"invalid direction: {query.get('direction')!r} (asc or desc)")
    size = _page_size(query, bool(date))
    if date:
        after, until = _day(date)
        after -= timedelta(microseconds=1)
    else:
        after = data_api.parse_time(query.get("after"), "after")
        until = data_api.parse_time(query.get("until"), "until")
    token = query.get("page_token") or None
    if token is not None and not _well_formed(token):
        raise _bad(f"invalid page_token: {token!r}")
    order_id = query.get("order_id") or None
    if "FILL" not in types:
        return []
    chosen = []
    for seq, fill in enumerate(fills):
        when = data_api._utc(fill.timestamp)
        if (after and when <= after) or (until and when >= until):
            continue
        if order_id is not None and fill.order_id != order_id:
            continue
        chosen.append((when, seq, fill))
    chosen.sort(key=lambda item: (item[0], item[1]), reverse=direction == "desc")
    items = [activity_json(fill) for _when, _seq, fill in chosen]
    if token is not None:
        items = _after_token(items, token, direction)
    return items if size is None else items[:size]


def _well_formed(token: str) -> bool:
    stamp, sep, rest = token.partition("::")
    return bool(sep) and len(stamp) == 17 and stamp.isdigit() and bool(rest)


def _after_token(items: list[dict[str, Any]], token: str, direction: str) -> list[dict[str, Any]]:
    """The activities past ``token`` in the listing's direction (the token's own excluded)."""
    for index, item in enumerate(items):
        if item["id"] == token:
            return items[index + 1 :]
    stamp = token[:17]  # an activity this listing does not hold: continue from its time
    if direction == "asc":
        return [item for item in items if item["id"][:17] > stamp]
    return [item for item in items if item["id"][:17] < stamp]
