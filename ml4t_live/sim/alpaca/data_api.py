"""Historical market-data REST: ``GET /v2/stocks/{bars,quotes,trades}`` and the latest objects.

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
from . import params, payloads
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

    def index(self, symbol: str, when: datetime) -> int:
        """Position of the bar starting at ``when`` in ``symbol``'s series."""
        return bisect.bisect_left(self._times.get(symbol, []), when)

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
    for suffix, factor, most in (("Min", 1, 59), ("T", 1, 59), ("Hour", 60, 23), ("H", 60, 23)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit() and 1 <= int(text[: -len(suffix)]) <= most:
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


def bars_response(store: BarStore, query: Any, now: datetime,
                  symbols: list[str] | None = None, kind: str = "bars") -> dict[str, Any]:
    """The body of GET /v2/stocks/{bars|quotes|trades} for ``query`` at virtual time ``now``:
    recorded bars (aggregated to ``timeframe``), or the one quote / trade derived per minute bar
    (see :func:`derived`)."""
    names = symbols or params.symbols(query)
    frame = _timeframe_minutes(params.text(query, "timeframe") or "1Min") if kind == "bars" else 1
    start = parse_time(query.get("start"), "start")
    end = parse_time(query.get("end"), "end")
    limit = params.integer(query, "limit", 1000, high=MAX_LIMIT, clamp=True)
    descending = params.choice(query, "sort", "asc", ("asc", "desc")) == "desc"
    check_common(query)
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
        out.setdefault(symbol, []).append(derived(kind, store, symbol, ts, bar))
    token = _encode_token(page[-1][0], page[-1][1]) if rest and page else None
    return {kind: out, "next_page_token": token}


def derived(kind: str, store: BarStore, symbol: str, start: datetime, bar: Any) -> dict[str, Any]:
    """One REST object for the minute bar starting at ``start``: the bar itself; or the trade at
    its close (price = close, size = volume, stamped at the bar's end, id = the bar's 1-based index
    for the symbol); or the quote at its close (close -/+ 0.01, 100 x 100, stamped at the bar's end).
    The data stream derives its quotes and trades the same way."""
    if kind == "bars":
        return payloads.rest_bar(bar, start)
    end = start + MINUTE
    if kind == "trades":
        return payloads.rest_trade(bar.close, max(float(bar.volume), 1.0), end, store.index(symbol, start) + 1)
    return payloads.rest_quote(bar.close - 0.01, bar.close + 0.01, end)


FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "otc")
ADJUSTMENTS = ("raw", "split", "dividend", "spin-off", "all")


def check_common(query: Any) -> None:
    """``feed`` / ``adjustment`` / ``currency``: accepted when they name something Alpaca has
    (the recorded bars are served for every feed and adjustment), a 422 otherwise."""
    params.choice(query, "feed", "iex", FEEDS)
    params.choice(query, "adjustment", "raw", ADJUSTMENTS)
    params.choice(query, "currency", "usd", ("usd",))


def latest(store: BarStore, kind: str, symbol: str, now: datetime) -> dict[str, Any] | None:
    """The latest bar / trade / quote of ``symbol`` at ``now`` (from its last CLOSED minute bar)."""
    window = store.window(symbol, None, None, now)
    if not window:
        return None
    ts, bar = window[-1]
    return derived(kind, store, symbol, ts, bar)


def latest_response(store: BarStore, kind: str, symbols: list[str], now: datetime) -> dict[str, Any]:
    """GET /v2/stocks/{kind}/latest: ``{kind: {SYM: object}}``; symbols without data are left out."""
    found = {s: latest(store, kind, s, now) for s in symbols}
    return {kind: {s: obj for s, obj in found.items() if obj is not None}}


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
