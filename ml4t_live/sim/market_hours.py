"""NYSE regular trading hours for the simulated venues (holidays and early closes included).

Threading rule: pure functions over immutable, lazily built per-year tables (``lru_cache``); safe
to call from any thread, but the simulated venues call them from their one venue loop.

The sessions are ml4t.backtest's own (``ml4t.backtest.calendar.get_calendar_sessions("NYSE",
year)``, backed by ``pandas_market_calendars``), imported on first use only, so the venues and the
backtest agree on every holiday and early close. Session bounds are tz-aware UTC ``datetime``s; a
naive timestamp is read as UTC (ml4t.backtest's default ``timezone``).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from ..errors import ConfigError

NEW_YORK = ZoneInfo("America/New_York")
#: Alpaca's extended-hours window: 04:00 to 4 hours after the regular close.
PRE_MARKET_OPEN = time(4, 0)
POST_MARKET_HOURS = timedelta(hours=4)
#: How many calendar years next_open / next_close look ahead before giving up.
_LOOKAHEAD_YEARS = 2


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """One NYSE session as Alpaca's ``/v2/calendar`` describes it (times in New York)."""

    date: date
    open: time
    close: time
    session_open: time
    session_close: time
    open_at: datetime  # regular open, tz-aware UTC
    close_at: datetime  # regular close, tz-aware UTC


@dataclass(frozen=True, slots=True)
class _Year:
    dates: list[date]
    opens: list[datetime]
    closes: list[datetime]
    index: dict[date, int]


@lru_cache(maxsize=64)
def _year(year: int) -> _Year:
    if not 1900 < year < 2200:
        raise ConfigError(f"year {year} is outside the NYSE calendar this venue supports")
    from ml4t.backtest.calendar import get_calendar_sessions

    sessions = sorted(get_calendar_sessions("NYSE", year).values(), key=lambda s: s.session_date)
    dates = [s.session_date for s in sessions]
    opens = [s.market_open.astimezone(UTC) for s in sessions]
    closes = [s.market_close.astimezone(UTC) for s in sessions]
    return _Year(dates, opens, closes, {d: i for i, d in enumerate(dates)})


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def session(day: date) -> tuple[datetime, datetime] | None:
    """Regular ``(open, close)`` of the NYSE session on ``day`` (UTC), or None if it is closed."""
    table = _year(day.year)
    i = table.index.get(day)
    return None if i is None else (table.opens[i], table.closes[i])


def is_open(ts: datetime) -> bool:
    """Whether the NYSE regular session is open at ``ts`` (open inclusive, close exclusive)."""
    moment = _utc(ts)
    bounds = session(moment.astimezone(NEW_YORK).date())
    return bounds is not None and bounds[0] <= moment < bounds[1]


def next_open(ts: datetime) -> datetime:
    """The first regular open strictly after ``ts`` (UTC)."""
    return _next(_utc(ts), "opens")


def next_close(ts: datetime) -> datetime:
    """The first regular close strictly after ``ts`` (UTC)."""
    return _next(_utc(ts), "closes")


def calendar_days(start: date, end: date) -> list[CalendarDay]:
    """Every NYSE session with ``start <= date <= end``, in order (Alpaca's /v2/calendar)."""
    days = []
    for year in range(start.year, end.year + 1):
        table = _year(year)
        for i, day in enumerate(table.dates):
            if start <= day <= end:
                days.append(_calendar_day(day, table.opens[i], table.closes[i]))
    return days


def _next(moment: datetime, column: str) -> datetime:
    year = moment.astimezone(NEW_YORK).year
    for candidate in range(year, year + _LOOKAHEAD_YEARS + 1):
        values: list[datetime] = getattr(_year(candidate), column)
        i = bisect_right(values, moment)
        if i < len(values):
            return values[i]
    raise ConfigError(f"no NYSE session known within {_LOOKAHEAD_YEARS} years after {moment}")


def _calendar_day(day: date, open_at: datetime, close_at: datetime) -> CalendarDay:
    open_ny = open_at.astimezone(NEW_YORK)
    close_ny = close_at.astimezone(NEW_YORK)
    return CalendarDay(
        date=day,
        open=open_ny.time(),
        close=close_ny.time(),
        session_open=PRE_MARKET_OPEN,
        session_close=(close_ny + POST_MARKET_HOURS).time(),
        open_at=open_at,
        close_at=close_at,
    )
