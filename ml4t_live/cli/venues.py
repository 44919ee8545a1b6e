"""The seam between the command line and the venue adapters (IB, Alpaca).

The CLI knows nothing about a venue beyond its name. For ``--broker ib`` / ``--feed alpaca`` /
``ml4t-live sim ib`` / ``ml4t-live demo --venue alpaca`` it imports
``ml4t_live.venues.<venue>.entry`` and calls, when the module offers them::

    make_broker(options: VenueOptions, config: BacktestConfig) -> broker   # a LiveBroker
    make_feed(options: VenueOptions) -> feed                                # a Feed
    run_sim(options: VenueOptions) -> int          # serve the simulated venue until stopped
    demo_venue(options: VenueOptions, bars: Path)  # context manager -> (broker, feed) wired to
                                                   # a simulated venue replaying ``bars``

``make_broker`` / ``make_feed`` build objects without connecting: ``LiveEngine.run()`` calls
``broker.connect(config)`` and ``feed.start()``, and closes both. A venue whose entry module (or
the needed function) is missing is reported as a ConfigError (exit code 2) saying so, never as a
traceback. Venue errors raised later (``ConnectionFailed`` ...) exit with code 3.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml4t_live.errors import ConfigError

VENUES = ("ib", "alpaca")


@dataclass(frozen=True)
class VenueOptions:
    """Venue settings from the command line / the ``[venue]`` table of a session file."""

    venue: str
    host: str | None = None
    port: int | None = None
    symbols: tuple[str, ...] = ()
    bar_size: str | None = None
    live: bool = False
    #: asks a human (or checks --confirm-live) before a live account is used; returns True to go on
    confirm_live: Callable[[str], bool] | None = None
    #: shows a message to the user on the command line's own output (the library never prints)
    announce: Callable[[str], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def entry_point(venue: str, function: str) -> Callable[..., Any]:
    """``ml4t_live.venues.<venue>.entry.<function>``, or a ConfigError naming what is missing."""
    if venue not in VENUES:
        raise ConfigError(f"unknown venue {venue!r}; choose one of: {', '.join(VENUES)}")
    module_name = f"ml4t_live.venues.{venue}.entry"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in (module_name, f"ml4t_live.venues.{venue}"):
            raise
        raise ConfigError(
            f"the {venue} venue is not yet available in this build ({module_name} is missing); "
            "use --broker shadow with --data to replay recorded bars"
        ) from exc
    fn = getattr(module, function, None)
    if fn is None:
        raise ConfigError(f"the {venue} venue does not offer {function!r} yet ({module_name})")
    return fn


def venue_end(value: Any) -> datetime | None:
    """``[venue] end = "2024-03-05T21:00:00Z"``: the feed ends with the bar closing there."""
    if value is None or isinstance(value, datetime):
        end = value
    else:
        try:
            end = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"[venue] end must be an ISO date-time, got {value!r}") from None
    if end is not None and end.tzinfo is None:
        raise ConfigError("[venue] end needs a time zone (e.g. 2024-03-05T21:00:00Z)")
    return end


#: ``[venue]`` keys for the feed's health bounds (seconds; see docs/operations.md "Feed health")
FEED_HEALTH_KEYS = ("heartbeat_seconds", "silence_after", "outage_timeout")


def feed_health(extra: dict[str, Any]) -> dict[str, float]:
    """The feed-health bounds given in ``[venue]``, as keyword arguments of a venue feed."""
    out = {}
    for key in FEED_HEALTH_KEYS:
        value = extra.get(key)
        if value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"[venue] {key} must be a number of seconds, got {value!r}") from None
        if not seconds > 0:
            raise ConfigError(f"[venue] {key} must be more than 0 seconds, got {value!r}")
        out[key] = seconds
    return out
