"""The run options that rehearse a simulated venue's recorded bars as one calendar session.

Threading rule: a pure function; the ``ml4t-live sim`` banners call it on the main thread.

A simulated venue replays recorded bars inside NYSE regular hours. ``run --calendar XNYS --as-of
D`` for the LAST recorded session D ends by itself at D's close: the earlier recorded days reach
the strategy as warm-up (before D's open: catch-up bars, never traded). When the recording stops
before D's close, ``--close-offset`` ends the session with the last recorded bar instead of
waiting for bars that never come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .calendar import Session, exchange_date, trading_day

CALENDAR = "XNYS"  # the simulated venues keep NYSE hours (ml4t_live.sim.market_hours)


def rehearsal_options(last_end: datetime) -> str:
    """``--calendar XNYS --as-of D [--close-offset -Nmin]`` for a recording whose last bar ends at
    ``last_end`` (tz-aware)."""
    day = exchange_date(CALENDAR, last_end - timedelta(seconds=1))
    session = trading_day(CALENDAR, day)
    options = f"--calendar {CALENDAR} --as-of {day.isoformat()}"
    if isinstance(session, Session) and last_end < session.close:
        minutes = -int((session.close - last_end).total_seconds() // 60)
        options += f" --close-offset {minutes}min"
    return options
