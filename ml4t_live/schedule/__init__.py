"""Exchange-calendar sessions: a run that knows the trading day (``ml4t-live run --calendar XNYS``).

* :mod:`.calendar` - sessions, half-days and holidays from exchange_calendars
* :mod:`.clock` - the session clock: this machine's, or a manual one (tests, rehearsals)
* :mod:`.plan` - today's plan: closed / over / wait / early / open, connect and end times
* :mod:`.feed` - :class:`SessionFeed`: warm-up bars before the open, the end at the close

The command line glue (exit codes, waiting, signals) is :mod:`ml4t_live.cli.calendar_session`.
"""

from .calendar import Closed, Session, trading_day
from .clock import ManualClock, SessionClock, SystemClock
from .feed import SessionFeed
from .plan import DayPlan, Phase, SessionSettings, parse_duration, plan_day

__all__ = [
    "Closed",
    "DayPlan",
    "ManualClock",
    "Phase",
    "Session",
    "SessionClock",
    "SessionFeed",
    "SessionSettings",
    "SystemClock",
    "parse_duration",
    "plan_day",
    "trading_day",
]
