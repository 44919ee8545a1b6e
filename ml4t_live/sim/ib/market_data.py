"""Real-time and historical bars from recorded bars (pure functions).

* :func:`split_bar` cuts one recorded bar into 5-second real-time bars whose aggregate is the
  recorded bar EXACTLY: first open, max high, min low, last close, and volumes that sum to
  the recorded volume with no rounding (whole shares split in whole shares; a fractional
  volume goes whole into the last sub-bar).
* :func:`aggregate` builds historical bars of the size a client asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..bars import SimBar
from .encoders import HistBar

NY = ZoneInfo("America/New_York")
REALTIME_SECONDS = 5
_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600,
          "day": 86400, "days": 86400, "week": 7 * 86400, "weeks": 7 * 86400}  # fmt: skip
_DURATION = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 31 * 86400, "Y": 366 * 86400}


class BarSizeError(ValueError):
    """A bar size or duration string this simulator does not understand."""


def as_utc(ts: datetime) -> datetime:
    """Recorded timestamps: tz-aware as given; naive ones are taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def bar_size_seconds(text: str) -> int:
    """``"1 min"`` -> 60, ``"5 secs"`` -> 5, ``"1 day"`` -> 86400."""
    m = re.fullmatch(r"\s*(\d+)\s+([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise BarSizeError(f"unsupported bar size {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def duration_seconds(text: str) -> int:
    """``"1 D"`` -> 86400, ``"3600 S"`` -> 3600."""
    m = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text)
    if not m:
        raise BarSizeError(f"unsupported duration {text!r}")
    return int(m.group(1)) * _DURATION[m.group(2)]


def split_bar(bar: SimBar, seconds: int) -> list[HistBar]:
    """``seconds // 5`` real-time bars for one recorded bar of ``seconds`` length."""
    n = max(1, seconds // REALTIME_SECONDS)
    start = as_utc(bar.timestamp)
    o, h, lo, c = bar.open, bar.high, bar.low, bar.close
    path = [o] + [_between(o + (c - o) * k / n, o, c) for k in range(1, n)] + [c]
    volumes = _split_volume(bar.volume, n)
    hi_at, lo_at = (n - 1) * 2 // 3, (n - 1) // 3
    if c < o:
        hi_at, lo_at = lo_at, hi_at
    out = []
    for k in range(n):
        a, b = path[k], path[k + 1]
        high = h if k == hi_at else max(a, b)
        low = lo if k == lo_at else min(a, b)
        wap = (high + low + b) / 3
        out.append(HistBar(start + timedelta(seconds=REALTIME_SECONDS * k), a, high, low, b,
                           volumes[k], wap, 1 if volumes[k] else 0))  # fmt: skip
    return out


def _between(x: float, a: float, b: float) -> float:
    x = round(x, 4)
    return min(max(x, min(a, b)), max(a, b))


def _split_volume(volume: float, n: int) -> list[float]:
    if n == 1:
        return [volume]
    if float(volume).is_integer() and volume >= 0:
        whole = int(volume)
        base, extra = divmod(whole, n)
        return [float(base + (1 if k < extra else 0)) for k in range(n)]
    return [0.0] * (n - 1) + [volume]


def aggregate(bars: Iterable[SimBar], bar_seconds: int, size: int) -> list[HistBar]:
    """Recorded bars (one asset, time order) as bars of ``size`` seconds.

    Equal sizes pass through; larger sizes group by bucket start (days by New York date);
    smaller sizes split each recorded bar with :func:`split_bar`.
    """
    out: list[HistBar] = []
    if size < bar_seconds:
        for bar in bars:
            sub = split_bar(bar, bar_seconds)
            per = max(1, size // REALTIME_SECONDS)
            for i in range(0, len(sub), per):
                out.append(_merge(sub[i : i + per], sub[i].start))
        return out
    groups: dict[datetime, list[HistBar]] = {}
    for bar in bars:
        start = as_utc(bar.timestamp)
        one = HistBar(start, bar.open, bar.high, bar.low, bar.close, bar.volume,
                      (bar.high + bar.low + bar.close) / 3, 1)  # fmt: skip
        groups.setdefault(_bucket(start, size), []).append(one)
    return [_merge(g, k) for k, g in groups.items()]


def _bucket(ts: datetime, size: int) -> datetime:
    if size >= 86400:
        local = ts.astimezone(NY)
        return datetime(local.year, local.month, local.day, tzinfo=NY)
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % size, UTC)


def _merge(parts: list[HistBar], start: datetime) -> HistBar:
    volume = sum(p.volume for p in parts)
    wap = sum(p.wap * p.volume for p in parts) / volume if volume else parts[-1].close
    return HistBar(
        start, parts[0].open, max(p.high for p in parts), min(p.low for p in parts),
        parts[-1].close, volume, wap, sum(p.count for p in parts),
    )  # fmt: skip


def in_regular_hours(ts: datetime) -> bool:
    """09:30 <= New York time < 16:00 (the useRTH filter; holidays are not in recorded data)."""
    local = as_utc(ts).astimezone(NY)
    minutes = local.hour * 60 + local.minute
    return local.weekday() < 5 and 570 <= minutes < 960
