"""Exchange sessions from a maintained calendar library (exchange_calendars), never a hand-made list.

Threading rule: pure functions over calendars cached per name (``lru_cache``); safe anywhere, the
CLI calls them on the main thread before a run.

:func:`trading_day` answers "what does exchange X do on date D?": a :class:`Session` (open and
close as tz-aware UTC datetimes, ``early_close`` for a half-day) or a :class:`Closed` (weekend, or
the holiday's name). A name the library does not know, or a date outside the range the calendar
covers (exchange_calendars knows about 20 years back and one year ahead), is a ConfigError: an
unknown day is never read as an open or a closed one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session of ``calendar`` on ``day`` (exchange-local date)."""

    calendar: str
    day: date
    open: datetime  # tz-aware UTC
    close: datetime  # tz-aware UTC
    early_close: bool
    tz: ZoneInfo

    def local(self, moment: datetime) -> str:
        """``moment`` as the exchange's wall time, for log lines (``09:30 EST``)."""
        return moment.astimezone(self.tz).strftime("%H:%M %Z")


@dataclass(frozen=True, slots=True)
class Closed:
    """``calendar`` holds no session on ``day``; ``reason`` says why (weekend, the holiday)."""

    calendar: str
    day: date
    reason: str


@lru_cache(maxsize=8)
def exchange_calendar(name: str) -> Any:
    """The exchange_calendars calendar ``name`` (e.g. XNYS, XNAS, XLON, CMES), or a ConfigError."""
    import exchange_calendars as xcals
    from exchange_calendars.errors import InvalidCalendarName

    try:
        with _library_quiet():
            return xcals.get_calendar(name)
    except InvalidCalendarName:
        raise ConfigError(
            f"unknown market calendar {name!r}; use an exchange_calendars name such as XNYS (NYSE), "
            "XNAS (Nasdaq), XLON, XTSE, CMES (see exchange_calendars.get_calendar_names())"
        ) from None


def exchange_tz(name: str) -> ZoneInfo:
    return ZoneInfo(str(exchange_calendar(name).tz))


def exchange_date(name: str, moment: datetime) -> date:
    """The date at the exchange (its own time zone) at ``moment`` (tz-aware)."""
    if moment.tzinfo is None:
        raise ConfigError(f"{moment} has no time zone; session times must be tz-aware")
    return moment.astimezone(exchange_tz(name)).date()


def trading_day(name: str, day: date) -> Session | Closed:
    """The session of calendar ``name`` on ``day``, or why there is none (ConfigError when the
    calendar does not cover ``day``)."""
    import pandas as pd

    cal = exchange_calendar(name)
    first, last = cal.first_session.date(), cal.last_session.date()
    if not first <= day <= last:
        raise ConfigError(
            f"market calendar {name} does not know {day.isoformat()}: it covers {first.isoformat()} "
            f"to {last.isoformat()} (exchange_calendars publishes about one year ahead); check this "
            "machine's date, or update exchange_calendars"
        )
    label = pd.Timestamp(day)
    with _library_quiet():
        if not cal.is_session(label):
            return Closed(name, day, _closed_reason(cal, label))
        opens, closes = cal.session_open_close(label)
    return Session(
        calendar=name,
        day=day,
        open=opens.to_pydatetime().astimezone(UTC),
        close=closes.to_pydatetime().astimezone(UTC),
        early_close=bool(label in cal.early_closes),
        tz=ZoneInfo(str(cal.tz)),
    )


def in_session(name: str, moment: datetime, after_open: float = 0.0) -> bool | None:
    """True if calendar ``name`` is in a regular session at ``moment`` (tz-aware), at least
    ``after_open`` seconds after its open and before its close; False outside sessions (the night,
    a weekend, a holiday, after an early close); None when the calendar does not cover the date."""
    try:
        day = trading_day(name, exchange_date(name, moment))
    except ConfigError:
        return None
    if isinstance(day, Closed):
        return False
    return day.open.timestamp() + after_open <= moment.timestamp() < day.close.timestamp()


def seconds_to_open(name: str, moment: datetime) -> float | None:
    """Seconds from ``moment`` (tz-aware) to the open of calendar ``name`` on the exchange's
    date at ``moment`` (negative: it opened that long ago); None when that date has no session
    or the calendar does not cover it."""
    try:
        day = trading_day(name, exchange_date(name, moment))
    except ConfigError:
        return None
    return None if isinstance(day, Closed) else day.open.timestamp() - moment.timestamp()


@contextmanager
def _library_quiet() -> Iterator[None]:
    """exchange_calendars 4.13 reads ``Series.values`` on tz-aware data, which pandas 3 deprecates
    (a Pandas4Warning from inside the library, not about our call): that one warning is ignored."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray that drops timezone")
        yield


def _closed_reason(cal: Any, label: Any) -> str:
    if label.weekday() >= 5:
        return f"{label:%A}, the exchange does not trade"
    named = cal.regular_holidays.holidays(label, label, return_name=True) if cal.regular_holidays else None
    if named is not None and len(named):
        return f"holiday: {named.iloc[0]}"
    if any(label == h for h in cal.adhoc_holidays):
        return "special closure (ad hoc holiday)"
    return "no session in the calendar"
