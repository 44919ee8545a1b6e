"""``run --calendar XNYS``: decide today's session, wait for it, hold the feed to it.

A run started by cron or a systemd timer at any time of day: on a closed day, or after today's
session, it logs why and exits with :data:`~ml4t_live.cli.app.EXIT_NO_SESSION` without
connecting; before the connect time (``open - connect_before``) it sleeps (SIGTERM / Ctrl-C end the
wait, exit 0); then the run connects (reconciles), warms up on catch-up bars and trades until
``close + close_offset``, where the end-of-day policy applies. ``--as-of`` rehearses a recorded day
against a simulated venue: the session clock starts then, follows the replayed bars, and never
waits (see :mod:`ml4t_live.schedule`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import Any

import typer
from loguru import logger

from ml4t_live.errors import ConfigError
from ml4t_live.schedule import (
    ManualClock,
    Phase,
    SessionClock,
    SessionFeed,
    SessionSettings,
    SystemClock,
    plan_day,
)
from ml4t_live.schedule.calendar import exchange_tz

from .app import EXIT_NO_SESSION

_log = logger.bind(component="session")

def session_clock(o: dict[str, Any], calendar: str) -> SessionClock:
    """``as_of`` (a rehearsal of a recorded day) or this machine's clock."""
    text = o.get("as_of")
    if text is None:
        return SystemClock()
    try:
        if isinstance(text, datetime):
            when = text
        elif isinstance(text, date) or len(str(text)) == 10:
            day = text if isinstance(text, date) else date.fromisoformat(str(text))
            when = datetime.combine(day, time(0), exchange_tz(calendar))
        else:
            when = datetime.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"as_of must be a date (2024-11-29) or an ISO date-time with its offset "
                          f"(2024-11-29T09:00:00-05:00), got {text!r}") from None  # fmt: skip
    if when.tzinfo is None:
        raise ConfigError(f"as_of {text!r} needs a time zone offset (e.g. -05:00 or Z)")
    _log.info("rehearsal as of {}: the session clock follows the venue's bars and never waits", when.isoformat())
    return ManualClock(when, follows_bars=True)


def calendar_session(o: dict[str, Any], feed: Any, clock: SessionClock | None = None) -> Any:
    """The feed held to today's session, after any wait; ``typer.Exit`` when there is none today
    (EXIT_NO_SESSION) or the wait was stopped (0). Sets ``o["open_orders_at_end"]``."""
    settings = SessionSettings.from_options(o)
    if (o.get("broker") or "shadow").lower() == "shadow":
        raise ConfigError("a calendar session needs --broker ib or --broker alpaca (the shadow broker "
                          "would trade its warm-up bars); rehearse a recorded day against a simulated "
                          "venue: ml4t-live sim ib|alpaca --data bars.parquet")  # fmt: skip
    if str(o.get("catch_up") or "reject") == "trade":
        raise ConfigError("catch_up = 'trade' cannot be combined with a calendar session: its warm-up "
                          "bars never trade")  # fmt: skip
    clock = clock or session_clock(o, settings.calendar)
    plan = plan_day(settings, clock.now())
    _log.info("{}", plan.describe())
    if not plan.trades:
        raise typer.Exit(EXIT_NO_SESSION)
    if plan.phase is Phase.WAIT:
        with _stop_event() as stop:
            if not clock.wait_until(plan.connect_at, stop):
                _log.warning("stopped while waiting for the session; nothing was started")
                raise typer.Exit(0)
    o["open_orders_at_end"] = settings.open_orders_at_end
    o["session_plan"] = plan.record()
    return SessionFeed(feed, plan, clock)


@contextmanager
def _stop_event() -> Iterator[threading.Event]:
    """SIGTERM / Ctrl-C set the event (main thread only) while the run waits for its session."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, frame: Any) -> None:
        _log.warning("{} while waiting for the session: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
