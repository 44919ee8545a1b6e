"""Historical market-data REST: ``GET /v2/stocks/bars`` (and the single-symbol / latest forms).

Only bars that have CLOSED on the virtual clock are served (bar ``t`` once ``t + 1 min <= now``),
so a warm-up request never sees the future. Paging matches alpaca-py's client loop: ``limit``
counts bars across all symbols, results are symbol-major, ``next_page_token`` is base64 of
``SYMBOL|timestamp`` of the last bar returned (as Alpaca's tokens decode), ``null`` on the last page.
"""

from __future__ import annotations

import base64
import bisect
from datetime import UTC, datetime, timedelta
from typing import Any

from ..bars import SimBar
from . import payloads
from .order_forms import AlpacaError

MINUTE = timedelta(minutes=1)
MAX_LIMIT = 10_000


class BarStore:
    """Recorded minute bars indexed by symbol, for the REST endpoints."""

    def __init__(self, groups: list[tuple[datetime, dict[str, SimBar]]]) -> None:
        self._times: dict[str, list[datetime]] = {}
        self._bars: dict[str, list[SimBar]] = {}
        for ts, bars in groups:
            for symbol, bar in bars.items():
                self._times.setdefault(symbol, []).append(_utc(ts))
                self._bars.setdefault(symbol, []).append(bar)

    @property
    def symbols(self) -> set[str]:
        return set(self._bars)

    def window(self, symbol: str, start: datetime | None, end: datetime | None,
               closed_by: datetime) -> list[tuple[datetime, SimBar]]:
        """Minute bars with ``start <= t <= end`` that have closed by ``closed_by``."""
        times = self._times.get(symbol, [])
        lo = 0 if start is None else bisect.bisect_left(times, start)
        last_start = closed_by - MINUTE
        hi_time = last_start if end is None else min(end, last_start)
        hi = bisect.bisect_right(times, hi_time)
        return [(times[i], self._bars[symbol][i]) for i in range(lo, hi)]


def parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AlpacaError(400, 40010001, f"invalid {name}: {value!r}") from None
    return _utc(parsed)


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _timeframe_minutes(value: str) -> int | str:
    """Minutes per bar for ``{n}Min`` / ``{n}Hour``; ``"day"`` for ``1Day``."""
    text = value.strip()
    for suffix, factor in (("Min", 1), ("T", 1), ("Hour", 60), ("H", 60)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * factor
    if text in ("1Day", "1D"):
        return "day"
    raise AlpacaError(422, 42210000, f"timeframe {value!r} is not supported by the simulated venue "
                                     "(use {n}Min, {n}Hour or 1Day)")


def aggregate(bars: list[tuple[datetime, SimBar]], frame: int | str) -> list[tuple[datetime, Any]]:
    """Aggregate minute bars into ``frame`` buckets (labels: bucket start; days: New York midnight)."""
    if frame == 1:
        return list(bars)
    buckets: dict[datetime, list[SimBar]] = {}
    for ts, bar in bars:
        if frame == "day":
            local = ts.astimezone(payloads.NEW_YORK)
            key = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        else:
            epoch_min = int(ts.timestamp() // 60)
            key = datetime.fromtimestamp((epoch_min - epoch_min % int(frame)) * 60, UTC)
        buckets.setdefault(key, []).append(bar)
    out: list[tuple[datetime, Any]] = []
    for key, members in buckets.items():
        out.append((key, SimBar(members[0].asset, key, members[0].open, max(b.high for b in members),
                                min(b.low for b in members), members[-1].close, sum(b.volume for b in members))))
    return out


def bars_response(store: BarStore, query: dict[str, str], now: datetime,
                  symbols: list[str] | None = None) -> dict[str, Any]:
    """The body of GET /v2/stocks/bars for ``query`` at virtual time ``now``."""
    names = symbols or [s for s in (query.get("symbols") or "").split(",") if s]
    if not names:
        raise AlpacaError(400, 40010001, "symbols is required")
    frame = _timeframe_minutes(query.get("timeframe", "1Min"))
    start = parse_time(query.get("start"), "start")
    end = parse_time(query.get("end"), "end")
    limit = min(int(query.get("limit") or 1000), MAX_LIMIT)
    descending = (query.get("sort") or "asc").lower() == "desc"
    after = _decode_token(query.get("page_token"))
    items: list[tuple[str, datetime, Any]] = []
    for symbol in sorted({n.upper() for n in names}):
        series = aggregate(store.window(symbol, start, end, now), frame)
        if descending:
            series.reverse()
        items.extend((symbol, ts, bar) for ts, bar in series)
    if after is not None:
        items = _after(items, after, descending)
    page, rest = items[:limit], items[limit:]
    out: dict[str, list[dict[str, Any]]] = {}
    for symbol, ts, bar in page:
        out.setdefault(symbol, []).append(payloads.rest_bar(bar, ts))
    token = _encode_token(page[-1][0], page[-1][1]) if rest and page else None
    return {"bars": out, "next_page_token": token}


def latest_bars_response(store: BarStore, symbols: list[str], now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for symbol in symbols:
        window = store.window(symbol.upper(), None, None, now)
        if window:
            ts, bar = window[-1]
            out[symbol.upper()] = payloads.rest_bar(bar, ts)
    return {"bars": out}


def _after(items: list[tuple[str, datetime, Any]], key: tuple[str, datetime],
           descending: bool) -> list[tuple[str, datetime, Any]]:
    symbol, when = key
    for i, (s, ts, _bar) in enumerate(items):
        if s > symbol or (s == symbol and ((ts < when) if descending else (ts > when))):
            return items[i:]
    return []


def _encode_token(symbol: str, when: datetime) -> str:
    return base64.b64encode(f"{symbol}|{when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}".encode()).decode()


def _decode_token(token: str | None) -> tuple[str, datetime] | None:
    if not token:
        return None
    try:
        symbol, stamp = base64.b64decode(token.encode()).decode().split("|", 1)
        return symbol, _utc(datetime.fromisoformat(stamp))
    except ValueError:
        raise AlpacaError(400, 40010001, "invalid page_token") from None
