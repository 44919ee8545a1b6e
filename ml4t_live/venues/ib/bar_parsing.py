"""Pure translation of IB bars: bar-size settings and durations, real-time and historical bars
as the per-asset values a backtest strategy sees.

No I/O, no event loop, no state, like :mod:`.parsing`; tested on recorded payloads
(``tests/resources/ib/``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from ib_async.objects import BarData, RealTimeBar

_BAR_SIZE = re.compile(r"^\s*(\d+)\s*(secs?|mins?|hours?|days?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400}


def bar_size_seconds(bar_size: str) -> int:
    """IB bar-size setting (``"5 secs"``, ``"1 min"``, ``"15 mins"``, ``"1 hour"``) -> seconds.

    Must be a multiple of 5 s (real-time bars are 5 s) that divides a day.
    """
    m = _BAR_SIZE.match(bar_size)
    if not m:
        raise ValueError(
            f"unsupported bar size {bar_size!r}; use e.g. '5 secs', '1 min', '1 hour'"
        )
    unit = m.group(2).lower().rstrip("s") or "sec"
    seconds = int(m.group(1)) * _UNIT_SECONDS[unit]
    if seconds % 5 or 86400 % seconds:
        raise ValueError(
            f"bar size {bar_size!r} must be a multiple of 5 s that divides a day"
        )
    return seconds


def ib_bar_size_setting(seconds: int) -> str:
    """Seconds -> the barSizeSetting string reqHistoricalData accepts."""
    if seconds % 86400 == 0:
        return "1 day"
    if seconds % 3600 == 0:
        n = seconds // 3600
        return f"{n} hour" if n == 1 else f"{n} hours"
    if seconds % 60 == 0:
        n = seconds // 60
        return f"{n} min" if n == 1 else f"{n} mins"
    return f"{seconds} secs"


def duration_str(seconds: int) -> str:
    """A reqHistoricalData durationStr covering at least ``seconds``."""
    if seconds <= 86400:
        return f"{max(seconds, 1)} S"
    return f"{math.ceil(seconds / 86400)} D"


def bar_values(
    open_: float, high: float, low: float, close: float, volume: float
) -> dict[str, Any]:
    """The per-asset dict a backtest strategy sees in ``data[asset]``."""
    return {
        "price": float(close),
        "open": float(open_),
        "high": float(high),
        "low": float(low),
        "close": float(close),
        "volume": float(volume),
        "signals": {},
    }


def realtime_bar_row(bar: RealTimeBar) -> tuple[int, float, float, float, float, float]:
    """(start epoch seconds, open, high, low, close, volume) of a 5-second real-time bar."""
    t = bar.time
    start = int(t.timestamp()) if isinstance(t, datetime) else int(t)
    return (
        start,
        float(bar.open_),
        float(bar.high),
        float(bar.low),
        float(bar.close),
        float(bar.volume),
    )


def historical_bar_row(bar: BarData, tz: tzinfo) -> tuple[datetime, dict[str, Any]]:
    """(label, values) of a historical bar; the label is the bar's start, in ``tz``."""
    date = bar.date
    if isinstance(date, datetime):
        label = date if date.tzinfo else date.replace(tzinfo=UTC)
    else:  # a daily bar: midnight of that day in tz
        label = datetime(date.year, date.month, date.day, tzinfo=tz)
    return label.astimezone(tz), bar_values(
        bar.open, bar.high, bar.low, bar.close, bar.volume
    )
