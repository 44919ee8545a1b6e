"""Today's plan for a calendar session: is there a session, when to connect, when to stop.

Threading rule: pure values and functions; the CLI builds them on the main thread.

A run started at any time of day (cron, a systemd timer) looks at the exchange's date *now*::

    closed day (weekend, holiday)        -> Phase.CLOSED: nothing to do, exit without connecting
    now >= close + close_offset          -> Phase.OVER:   today's session is over, same
    now <  open - connect_before         -> Phase.WAIT:   sleep until then, then connect
    open - connect_before <= now < open  -> Phase.EARLY:  connect, reconcile, warm up, wait
    open <= now < close + close_offset   -> Phase.OPEN:   connect and trade at once

The session ends at ``close + close_offset`` (the calendar's close: a half-day ends early).
The end-of-day policy says what happens then to the strategy's orders and positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from ..errors import ConfigError
from .calendar import Closed, Session, exchange_date, trading_day

#: end_of_day -> LiveEngine's open_orders_at_end
END_OF_DAY = {"flatten": "flatten", "cancel": "cancel", "hold": "keep"}
DEFAULT_CONNECT_BEFORE = timedelta(minutes=15)
#: flatten needs the market open for its orders: by default the session ends 5 minutes early
DEFAULT_FLATTEN_OFFSET = timedelta(minutes=-5)
DEFAULT_MAX_CLOCK_SKEW = timedelta(seconds=60)
_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(value: Any, name: str) -> timedelta:
    """``"15min"``, ``"-5min"``, ``"90s"``, ``"1h"``, or a bare number of minutes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        value = None
    m = _DURATION.match(str(value)) if value is not None else None
    if m is None:
        raise ConfigError(f"{name} must be a duration such as 15min, -5min, 90s or 1h (a bare number "
                          f"is minutes), got {value!r}")  # fmt: skip
    unit = (m.group(2) or "min")[0]
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[unit])


@dataclass(frozen=True, slots=True)
class SessionSettings:
    calendar: str
    end_of_day: str = "cancel"
    connect_before: timedelta = DEFAULT_CONNECT_BEFORE
    close_offset: timedelta = timedelta(0)
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW

    @classmethod
    def from_options(cls, o: dict[str, Any]) -> SessionSettings:
        """The ``calendar``, ``end_of_day``, ``connect_before``, ``close_offset`` and
        ``max_clock_skew`` options (flags or session file), checked."""
        name = str(o["calendar"]).strip().upper()
        end_of_day = str(o.get("end_of_day") or "cancel").lower()
        if end_of_day not in END_OF_DAY:
            raise ConfigError(f"end_of_day must be one of {', '.join(END_OF_DAY)} (got {end_of_day!r})")
        if o.get("open_orders_at_end") is not None and END_OF_DAY[end_of_day] != o["open_orders_at_end"]:
            raise ConfigError(f"open_orders_at_end = {o['open_orders_at_end']!r} contradicts end_of_day = "
                              f"{end_of_day!r}; a calendar session takes end_of_day (flatten, cancel, hold)")  # fmt: skip
        before = parse_duration(o.get("connect_before", DEFAULT_CONNECT_BEFORE), "connect_before")
        if before < timedelta(0):
            raise ConfigError(f"connect_before must not be negative (got {o.get('connect_before')!r})")
        default_offset = DEFAULT_FLATTEN_OFFSET if end_of_day == "flatten" else timedelta(0)
        offset = parse_duration(o.get("close_offset", default_offset), "close_offset")
        skew = parse_duration(o.get("max_clock_skew", DEFAULT_MAX_CLOCK_SKEW), "max_clock_skew")
        if skew <= timedelta(0):
            raise ConfigError("max_clock_skew must be more than 0")
        return cls(name, end_of_day, before, offset, skew)

    @property
    def open_orders_at_end(self) -> str:
        return END_OF_DAY[self.end_of_day]


class Phase(Enum):
    CLOSED = "closed"
    OVER = "over"
    WAIT = "wait"
    EARLY = "early"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class DayPlan:
    settings: SessionSettings
    now: datetime
    phase: Phase
    session: Session | None = None
    closed: Closed | None = None

    @property
    def connect_at(self) -> datetime:
        assert self.session is not None
        return self.session.open - self.settings.connect_before

    @property
    def end_at(self) -> datetime:
        assert self.session is not None
        return self.session.close + self.settings.close_offset

    @property
    def trades(self) -> bool:
        return self.phase in (Phase.WAIT, Phase.EARLY, Phase.OPEN)

    def record(self) -> dict[str, Any]:
        """What the session folder keeps about the plan (``command.json``'s ``session_plan``)."""
        s = self.session
        assert s is not None
        return {"calendar": self.settings.calendar, "date": s.day.isoformat(), "open": s.open.isoformat(),
                "close": s.close.isoformat(), "early_close": s.early_close, "end": self.end_at.isoformat(),
                "end_of_day": self.settings.end_of_day, "started": self.now.isoformat(), "phase": self.phase.value}  # fmt: skip

    def describe(self) -> str:
        """One line for the log: what today is and what this run does."""
        cal = self.settings.calendar
        if self.closed is not None:
            return f"{cal} is closed on {self.closed.day:%a %Y-%m-%d} ({self.closed.reason}); nothing to do"
        s = self.session
        assert s is not None
        day = f"{cal} session {s.day:%a %Y-%m-%d} {s.local(s.open)}-{s.local(s.close)}" + (
            " (early close)" if s.early_close else "")  # fmt: skip
        end = f"ends at {s.local(self.end_at)} (end of day: {self.settings.end_of_day})"
        match self.phase:
            case Phase.OVER:
                return f"{day}: over at {s.local(self.end_at)}, it is {s.local(self.now)}; nothing to do"
            case Phase.WAIT:
                return f"{day}: connecting at {s.local(self.connect_at)}; the run {end}"
            case Phase.EARLY:
                return f"{day}: before the open, connecting now; the run {end}"
            case _:
                return f"{day}: in session, connecting now; the run {end}"


def plan_day(settings: SessionSettings, now: datetime) -> DayPlan:
    """What a run started at ``now`` does today (ConfigError for a date the calendar lacks)."""
    day = trading_day(settings.calendar, exchange_date(settings.calendar, now))
    if isinstance(day, Closed):
        return DayPlan(settings, now, Phase.CLOSED, closed=day)
    end_at = day.close + settings.close_offset
    if end_at <= day.open:
        raise ConfigError(f"close_offset {settings.close_offset} ends the {day.day} session before "
                          f"its open ({day.local(day.open)}-{day.local(day.close)})")  # fmt: skip
    if now >= end_at:
        phase = Phase.OVER
    elif now >= day.open:
        phase = Phase.OPEN
    elif now >= day.open - settings.connect_before:
        phase = Phase.EARLY
    else:
        phase = Phase.WAIT
    return DayPlan(settings, now, phase, session=day)
