"""The CLI seam for Interactive Brokers (see :mod:`ml4t_live.cli.venues`).

``make_broker`` / ``make_feed`` build (without connecting) an :class:`IBBroker` and an
:class:`IBFeed` from the command line's :class:`VenueOptions`; ``run_sim`` serves the simulated IB
Gateway until Ctrl-C (or SIGTERM); ``demo_venue`` wires a broker and a feed to a simulated gateway
on a free loopback port.

Paper vs live is decided by :class:`IBGateway` from the account the gateway reports (``DU...`` is
paper), never from the port: ``--live`` only *allows* a live account, and ``confirm_live`` must
still return True for it.

``VenueOptions.extra`` (the ``[venue]`` table) may hold ``client_id``, ``feed_client_id``,
``account``, ``request_timeout`` (seconds per IB request), ``warmup_bars``, ``tz``, ``end`` (ISO date-time: the feed ends there), the feed-health
bounds ``heartbeat_seconds``, ``silence_after``, ``outage_timeout`` (seconds); for the
simulator ``data``, ``speed``, ``faults`` (a scenario TOML), ``account`` (default ``DU1234567``).
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from loguru import logger

from ...cli.venues import feed_health, venue_end
from ...errors import ConfigError, LiveTradingRefused
from ...schedule.rehearsal import rehearsal_options
from .bar_parsing import ib_bar_size_setting
from .broker import IBBroker
from .config import IBConfig, whole_number
from .feed import IBFeed

_log = logger.bind(component="ib.entry")
#: the ``[venue]`` keys a run against IB reads (anything else is a ConfigError: a typo never
#: silently falls back to a default)
VENUE_KEYS = ("client_id", "feed_client_id", "account", "request_timeout", "warmup_bars", "tz", "end",
              "heartbeat_seconds", "silence_after", "outage_timeout")  # fmt: skip
PAPER_PORT = 7497  # TWS paper; IB Gateway paper is 4002

# Bar sizes the IB feed accepts from the command line: multiples of the 5-second real-time bar
# that IB's reqHistoricalData also knows (warm-up and post-reconnect backfill use it).
BAR_SIZES_SECONDS = (5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800,
                     3600, 7200, 10800, 14400, 28800)  # fmt: skip
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
}
_BAR_SIZE_TEXT = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


def _short(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def ib_bar_size(text: str | None) -> str:
    """A command-line bar size (``1min``, ``5min``, ``1 min``, ``5 mins``, ``30s``, ``1h`` ...)
    -> the IB bar-size setting :class:`IBFeed` takes (``"1 min"``, ``"5 mins"``, ``"30 secs"``).
    None -> ``"1 min"``. Anything else is a ConfigError listing the accepted values."""
    if text is None:
        return "1 min"
    m = _BAR_SIZE_TEXT.match(str(text).lower())
    seconds = (
        int(m.group(1)) * _UNITS[m.group(2)] if m and m.group(2) in _UNITS else None
    )
    if seconds not in BAR_SIZES_SECONDS:
        accepted = ", ".join(_short(s) for s in BAR_SIZES_SECONDS)
        raise ConfigError(
            f"unsupported --bar-size {text!r} for IB; accepted: {accepted} "
            "(also written '1 min', '5 mins', '30 secs', '1 hour')"
        )
    return ib_bar_size_setting(seconds)


def ib_config(options: Any, **overrides: Any) -> IBConfig:
    extra = dict(options.extra or {})
    values: dict[str, Any] = {
        "host": options.host or "127.0.0.1",
        "port": int(options.port or PAPER_PORT),
        "client_id": _int(extra, "client_id", 1),
        "feed_client_id": _int(extra, "feed_client_id", None),
        "account": str(extra.get("account") or ""),
        "allow_live": bool(options.live),
        "confirm_live": options.confirm_live if options.live else None,
    }
    if extra.get("request_timeout") is not None:
        values["request_timeout"] = _seconds(extra, "request_timeout")
    values.update(overrides)
    return IBConfig(**values)


class CommandLineIBBroker(IBBroker):
    """IBBroker whose live-account refusal names the command-line flags, not IBConfig fields."""

    def connect(self, config: Any) -> None:
        try:
            super().connect(config)
        except LiveTradingRefused as exc:
            if self.ib_config.allow_live:
                raise
            raise LiveTradingRefused(
                f"{exc}. On the command line: add --live to trade this real-money account "
                "(you are asked to confirm; --confirm-live confirms for unattended runs), or "
                "point --port at a paper gateway (paper accounts start with 'DU')"
            ) from exc


def _int(extra: dict[str, Any], key: str, default: int | None) -> int | None:
    """An integer ``[venue]`` setting (None or missing: ``default``), else a ConfigError: an
    integer, or a string of digits (2.5 is not read as 2, nor true as 1)."""
    value = extra.get(key)
    if value is None:
        return default
    number = whole_number(value)
    if number is None:
        raise ConfigError(f"[venue] {key} must be an integer, got {value!r}")
    return number


def _seconds(extra: dict[str, Any], key: str) -> float:
    """A ``[venue]`` setting in seconds, more than 0, else a ConfigError."""
    value = extra[key]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"[venue] {key} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not seconds > 0:
        raise ConfigError(f"[venue] {key} must be more than 0 seconds, got {value!r}")
    return seconds


def make_broker(options: Any, config: Any) -> IBBroker:
    return CommandLineIBBroker(ib_config(options))


def make_feed(options: Any) -> IBFeed:
    if not options.symbols:
        raise ConfigError("the IB feed needs --symbols (e.g. --symbols AAPL,MSFT)")
    extra = dict(options.extra or {})
    return IBFeed(
        ib_config(options),
        list(options.symbols),
        bar_size=ib_bar_size(options.bar_size),
        warmup_bars=_int(extra, "warmup_bars", 0),
        tz=str(extra.get("tz") or "UTC"),
        end=venue_end(extra.get("end")),
        **feed_health(extra),
    )


# ---------------------------------------------------------------------------------- simulator
def run_sim(options: Any) -> int:
    """``ml4t-live sim ib``: serve the simulated IB Gateway on ``host:port`` until Ctrl-C.

    ``--port 0`` takes a free port. One line on stdout says where it listens and how to connect
    (the command-line entry's output; everything else is logged). The gateway keeps serving after
    its replay ends (account, positions, executions stay queryable); Ctrl-C or SIGTERM closes it
    and the exit code is 0.
    """
    from ml4t_live.sim.ib import SimulatedIBGateway

    extra = dict(options.extra or {})
    speed = extra.get("speed")
    account = str(extra.get("account") or "DU1234567")
    sim = SimulatedIBGateway(
        extra["data"],
        host=options.host or "127.0.0.1",
        port=PAPER_PORT if options.port is None else int(options.port),
        speed=speed,
        account=account,
        faults=extra.get("faults"),
        history=extra.get("history"),
        commission=str(extra.get("commission") or "none"),
        account_type=str(extra.get("account_type") or "margin"),
    )
    symbols, step, last_end = _replayed(extra["data"])
    with _stop_signals():
        try:
            try:
                port = sim.start()
            except (
                OSError
            ) as exc:  # the address is taken (another gateway or simulator)
                raise ConfigError(
                    f"the simulated IB Gateway cannot listen on {sim.host}:{options.port}: "
                    f"{exc.strerror or exc}; pass another --port (--port 0 takes a free one)"
                ) from exc
            pace = (
                f"{speed:g}x real time"
                if speed
                else "step mode: bars advance as clients catch up"
            )
            _announce(options)(
                f"simulated IB Gateway listening on {sim.host}:{port} ({pace}), account "
                f"{account}, symbols {','.join(symbols)}\n"
                f"connect with: ml4t-live run STRATEGY --broker ib --port {port} "
                f"--symbols {','.join(symbols)} --bar-size {_short(int(step.total_seconds()))} "
                f"{rehearsal_options(last_end)}\n"
                "(the run ends by itself at the recorded session's close; earlier recorded days "
                "are its warm-up)\nCtrl-C stops it",
            )
            if not speed and len(symbols) > 1:
                _log.info(
                    "step mode: the first bar goes out once a client has subscribed to every "
                    "symbol of the data ({}) or sent reqCurrentTime; pass --speed to replay in "
                    "time instead",
                    ",".join(symbols),
                )
            while not sim.wait_finished(timeout=60.0):
                pass
            _log.info(
                "replay finished: {} bars; still serving until Ctrl-C",
                sim.bars_replayed,
            )
            signal.pause()
        except KeyboardInterrupt:
            _log.info("stopping the simulated IB Gateway")
        finally:
            sim.close()
    return 0


@contextmanager
def _stop_signals() -> Iterator[None]:
    """Ctrl-C (even when SIGINT was inherited as ignored, e.g. a background job) and SIGTERM
    raise KeyboardInterrupt in the main thread, so the simulator closes cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {
        sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def demo_venue(options: Any, bars: Any) -> Iterator[tuple[IBBroker, IBFeed]]:
    """A simulated IB Gateway (step mode) replaying ``bars``, and a broker + feed wired to it."""
    from ml4t_live.sim.ib import SimulatedIBGateway

    symbols, step, last_end = _replayed(bars)
    sim = SimulatedIBGateway(bars)
    try:
        sim.start()
        # a step-mode replay outruns real time: ib_async's 45 msg/s pacing would only slow it
        config = ib_config(
            options, host="127.0.0.1", port=sim.port, max_requests_per_second=0
        )
        broker = IBBroker(config)
        feed = IBFeed(
            config,
            symbols,
            bar_size=_bar_size(step),
            end=last_end,
        )
        yield broker, feed
    finally:
        sim.close()


def _replayed(bars: Any) -> tuple[list[str], timedelta, datetime]:
    """(symbols, bar interval, end of the last bar) of the bars replayed inside NYSE hours."""
    from ml4t_live.sim.bars import load_bars
    from ml4t_live.sim.market_hours import is_open

    frame = load_bars(bars)
    stamps = sorted({ts for ts in frame["timestamp"].to_list() if is_open(ts)})
    if len(stamps) < 2:
        raise ConfigError("the bars need at least two bars inside NYSE regular hours")
    step = min(b - a for a, b in pairwise(stamps))
    return sorted(frame["asset"].unique().to_list()), step, stamps[-1] + step


def _bar_size(step: timedelta) -> str:
    return ib_bar_size_setting(int(step.total_seconds()))


def _announce(options: Any) -> Any:
    """Where a message for the user goes: the command line's output, else the log."""
    return getattr(options, "announce", None) or (lambda text: _log.info("{}", text))
