"""The CLI seam for Alpaca (see :mod:`ml4t_live.cli.venues`).

``make_broker`` / ``make_feed`` build (without connecting) an :class:`AlpacaBroker` and an
:class:`AlpacaFeed` from the command line's :class:`VenueOptions`; ``run_sim`` serves the simulated
Alpaca until Ctrl-C; ``demo_venue`` wires a broker and a feed to a simulated Alpaca (step mode) on a
free loopback port.

Keys come ONLY from the environment (``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``): there is no
option for them, and :class:`AlpacaConfig` raises a ConfigError naming both when one is missing.

Endpoint (where all four alpaca-py clients go), first match wins:

* ``[venue] endpoint = "http://127.0.0.1:8765"`` (the session file's venue table);
* ``--host``: a URL (``--host http://127.0.0.1:8765``), or a host name with ``--port``
  (``--host 127.0.0.1 --port 8765`` or ``--port 8765`` alone -> ``http://127.0.0.1:8765``);
* nothing: alpaca-py's own paper URL (or live URL with ``--live``).

``VenueOptions.extra`` (the ``[venue]`` table) may also hold ``feed`` (iex | sip),
``warmup_bars``, ``tz``, ``end`` (ISO date-time: the feed ends with the bar closing there),
``max_requests_per_minute`` / ``rate_limit_burst`` (the client-side token bucket),
``request_timeout``, ``max_request_attempts``, ``order_poll_interval`` and
``unknown_order_lookups`` (how long an order of unknown outcome is looked up before it counts as
lost: see :mod:`.unknown`), the feed-health bounds ``heartbeat_seconds``, ``silence_after``,
``outage_timeout`` (seconds); for the
simulator ``data``, ``speed``, ``faults`` (a TOML scenario), ``rate_limit_per_minute``, ``history``
(``sim --history``: bars or a duration served as history before the replay); for
``demo_venue`` ``initial_cash`` (the simulated account's cash, default 100,000).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from loguru import logger

from ...cli.venues import feed_health, venue_end
from ...errors import ConfigError
from ...schedule.rehearsal import rehearsal_options
from .bars import parse_bar_size
from .broker import AlpacaBroker
from .config import KEY_ENV, SECRET_ENV, AlpacaConfig
from .feed import AlpacaFeed

_log = logger.bind(component="alpaca.entry")
#: the ``[venue]`` keys a run against Alpaca reads (anything else is a ConfigError: a typo never
#: silently falls back to a default)
VENUE_KEYS = ("endpoint", "feed", "max_requests_per_minute", "rate_limit_burst", "request_timeout",
              "order_poll_interval", "unknown_order_lookups", "max_request_attempts", "warmup_bars",
              "tz", "end", "heartbeat_seconds", "silence_after", "outage_timeout")  # fmt: skip
SIM_PORT = 8765  # `ml4t-live sim alpaca` listens here unless --port says otherwise
REAL_REQUESTS_PER_MINUTE = 200  # Alpaca's documented budget (AlpacaConfig's default)
REAL_BURST = 20
# A simulator on this machine: the client-side bucket must not be what paces a step-mode replay.
# Step mode advances one bar per GET /v2/clock (the engine sends one per bar), so a real-Alpaca
# budget of 200/min would stretch a 780-bar rehearsal to ~4 minutes of waiting on our own bucket.
# The simulator enforces its own limit (429 + Alpaca's headers) when it has one, and the adapter
# handles that as it would on Alpaca; `[venue] max_requests_per_minute` restores any budget.
LOOPBACK_REQUESTS_PER_MINUTE = 100_000
LOOPBACK_BURST = 1_000


# ====================================================================== options -> config
def endpoint(options: Any) -> str | None:
    """The one base URL for every client (a simulator), or None for alpaca-py's own URLs."""
    extra = dict(options.extra or {})
    url = extra.get("endpoint")
    host = options.host
    if url is None and host and "://" in str(host):
        if options.port is not None:
            raise ConfigError("--host is already a URL (with its port); drop --port")
        url = host
    elif url is None and (host or options.port is not None):
        if options.port is None:
            raise ConfigError(
                f"--host {host} needs --port (or pass the whole URL: --host http://{host}:8765)"
            )
        url = f"http://{_bracket(host or '127.0.0.1')}:{int(options.port)}"
    if url is None:
        return None
    url = str(url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the Alpaca endpoint must be an http(s):// URL, got {url!r}")
    return url


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(url: str | None) -> bool:
    """True for an endpoint on this machine (a simulator), False for alpaca-py's or any other."""
    if url is None:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: ``[venue]`` keys passed to :class:`AlpacaConfig` as they are (see its fields)
_TUNABLE: dict[str, type] = {
    "request_timeout": float,
    "order_poll_interval": float,
    "unknown_order_lookups": int,
    "max_request_attempts": int,
}


def alpaca_config(options: Any, **overrides: Any) -> AlpacaConfig:
    """An :class:`AlpacaConfig` (keys from the environment) for ``options``; paper unless --live."""
    extra = dict(options.extra or {})
    base_url = endpoint(options)
    local = is_loopback(base_url)
    values: dict[str, Any] = {
        "paper": not options.live,
        "base_url": base_url,
        "feed": str(extra.get("feed", "iex")),
        "allow_live": bool(options.live),
        "confirm_live": options.confirm_live if options.live else None,
        "max_requests_per_minute": int(
            extra.get(
                "max_requests_per_minute",
                LOOPBACK_REQUESTS_PER_MINUTE if local else REAL_REQUESTS_PER_MINUTE,
            )
        ),
        "rate_limit_burst": int(
            extra.get("rate_limit_burst", LOOPBACK_BURST if local else REAL_BURST)
        ),
    }
    for name, kind in _TUNABLE.items():  # [venue] keys that tune the adapter's patience
        if name in extra:
            try:
                values[name] = kind(extra[name])
            except (TypeError, ValueError):
                raise ConfigError(f"[venue] {name} must be a {kind.__name__}, got {extra[name]!r}") from None
    values.update(overrides)
    return AlpacaConfig(
        **values
    )  # ConfigError naming both variables when a key is missing


def make_broker(options: Any, config: Any) -> AlpacaBroker:
    return AlpacaBroker(alpaca_config(options))


def make_feed(options: Any) -> AlpacaFeed:
    if not options.symbols:
        raise ConfigError("the Alpaca feed needs --symbols (e.g. --symbols AAPL,MSFT)")
    extra = dict(options.extra or {})
    size = bar_size(options.bar_size or "1Min")
    try:
        parse_bar_size(size)
    except ValueError:
        raise ConfigError(
            f"--bar-size {options.bar_size!r}: Alpaca bars are minutes, use e.g. 1min, 5min or 1hour "
            "(aggregated from minute bars)"
        ) from None
    return AlpacaFeed(
        alpaca_config(options),
        list(options.symbols),
        bar_size=size,
        warmup_bars=int(extra.get("warmup_bars", 0)),
        tz=str(extra.get("tz", "UTC")),
        end=venue_end(extra.get("end")),
        **feed_health(extra),
    )


def bar_size(text: str) -> str:
    """``1 min`` / ``5 mins`` / ``1min`` / ``1Hour`` -> the feed's ``<n>Min`` / ``<n>Hour`` form."""
    compact = "".join(str(text).split()).lower()
    for suffix in ("mins", "hours"):
        if compact.endswith(suffix):
            compact = compact[:-1]
    return compact


# ====================================================================== ml4t-live sim alpaca
def run_sim(options: Any) -> int:
    """Serve the simulated Alpaca on ``host:port`` until Ctrl-C (or SIGTERM); exit code 0."""
    import signal

    from ml4t_live.sim.alpaca import SimulatedAlpaca
    from ml4t_live.sim.history import history_count

    extra = dict(options.extra or {})
    key_id, secret = os.environ.get(KEY_ENV) or None, os.environ.get(SECRET_ENV) or None
    if (key_id is None) != (secret is None):
        raise ConfigError(
            f"set both {KEY_ENV} and {SECRET_ENV}, or neither (a pair is generated)"
        )
    frame, stamps, step, symbols = _replayed(extra["data"])
    held = history_count(stamps, extra.get("history"))  # a ConfigError before anything listens
    stamps = stamps[held:]
    speed = extra.get("speed")
    # The simulator's own 429s: Alpaca's 200 requests per minute of venue time. At --speed N venue
    # time runs N times faster, so the wall-clock budget is N x 200; in step mode there is no fixed
    # ratio (each bar costs at least one GET /v2/clock), so the limit is off unless asked for.
    rate = extra.get(
        "rate_limit_per_minute",
        None if speed is None else int(REAL_REQUESTS_PER_MINUTE * speed),
    )
    sim = SimulatedAlpaca(
        frame,
        host=options.host or "127.0.0.1",
        port=int(options.port if options.port is not None else SIM_PORT),
        speed=speed,
        key_id=key_id,
        secret_key=secret,
        faults=extra.get("faults"),
        rate_limit_per_minute=rate,
        history=extra.get("history"),
    )
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop it, also when SIGINT was inherited as ignored (a background job)
    previous = (
        {
            sig: signal.signal(sig, lambda signum, frame: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        if threading.current_thread() is threading.main_thread()
        else {}
    )
    try:
        sim.start()
        _banner(
            sim,
            speed,
            symbols,
            len(stamps),
            stamps[-1] + step,
            generated=key_id is None,
            announce=getattr(options, "announce", None),
            history=held,
        )
        finished = False
        while not stop.is_set():
            if finished:
                stop.wait(1.0)
            elif sim.wait_finished(timeout=1.0):
                finished = True
                _log.info(
                    "replay finished ({} bars); serving until Ctrl-C", len(stamps)
                )
        _log.info("stopping the simulated Alpaca")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.close()
    return 0


def _replayed(bars: Any) -> tuple[Any, list[datetime], timedelta, list[str]]:
    """The bars, the minute stamps the simulator replays (NYSE regular hours), their spacing and
    the symbols; a ConfigError when nothing would be replayed or the bars are not minutes."""
    from ml4t_live.sim.bars import load_bars
    from ml4t_live.sim.market_hours import is_open

    frame = load_bars(bars)
    stamps = sorted({ts for ts in frame["timestamp"].to_list() if is_open(ts)})
    if not stamps:
        raise ConfigError(
            f"{bars}: no bar inside NYSE regular hours (the simulator replays only those)"
        )
    step = min((b - a for a, b in pairwise(stamps)), default=timedelta(minutes=1))
    if step < timedelta(minutes=1) or step % timedelta(minutes=1):
        raise ConfigError(
            f"{bars}: the simulated Alpaca replays minute bars; these are {step} apart"
        )
    return frame, stamps, step, sorted(frame["asset"].unique().to_list())


def _banner(
    sim: Any,
    speed: float | None,
    symbols: list[str],
    bars: int,
    end: datetime,
    *,
    generated: bool,
    announce: Any,
    history: int = 0,
) -> None:
    """What to set to point ``ml4t-live run --broker alpaca`` here (the command line's output).

    The one place a secret is shown: a key pair the simulator just generated for the user's
    own throwaway venue, and only on the command line's output (``announce``), never in a log.
    Keys taken from the environment are never echoed back.
    """
    if announce is None:  # no command line to show it on: say where, never the secret itself
        _log.info("simulated Alpaca listening on {} (key id {})", sim.base_url, sim.key_id)
        return
    mode = "step mode" if speed is None else f"{speed:g}x real time"
    lines = [f"simulated Alpaca listening on {sim.base_url} ({mode}); Ctrl-C stops it"]
    if generated:
        lines += [
            "generated throwaway keys for this simulator (set them where you run the strategy):",
            f"  export {KEY_ENV}={sim.key_id}",
            f"  export {SECRET_ENV}={sim.secret_key}",
        ]
    else:
        lines.append(
            f"using the keys in {KEY_ENV} / {SECRET_ENV} from this environment"
        )
    if history:
        lines.append(f"the first {history} bar times are history (GET /v2/stocks/bars serves them now; "
                     "warm up with [venue] warmup_bars)")
    lines += [
        f"replaying {bars} bars of {','.join(symbols)} up to {end.isoformat()}; run a strategy on them:",
        (
            f"  ml4t-live run my_strategy.py:MyStrategy --broker alpaca --host {sim.base_url} "
            f"--symbols {','.join(symbols)} --bar-size 1min {rehearsal_options(end)}"
        ),
        "  (it ends by itself at the recorded session's close; earlier recorded days are its warm-up)",
        f'  (or, in a --config file: [venue] endpoint = "{sim.base_url}", end = "{end.isoformat()}")',
    ]
    announce("\n".join(lines))


# ====================================================================== ml4t-live demo --venue alpaca
@contextmanager
def demo_venue(options: Any, bars: Any) -> Iterator[tuple[AlpacaBroker, AlpacaFeed]]:
    """A simulated Alpaca (step mode) replaying ``bars``, and a broker + feed wired to it."""
    from ml4t.backtest import BacktestConfig

    from ml4t_live.sim.alpaca import SimulatedAlpaca

    frame, stamps, step, symbols = _replayed(bars)
    # The demo's account matches the shadow demo's (BacktestConfig(): whole shares, 100,000 cash,
    # or `initial_cash` from the options) so its fills can be compared with `ml4t-live demo`.
    # Step mode outruns real time: the venue's 200/min limit would only slow the replay (each bar
    # costs a GET /v2/clock), so it is off.
    account = BacktestConfig()
    if (extra := dict(options.extra or {})).get("initial_cash") is not None:
        account.initial_cash = float(extra["initial_cash"])
    sim = SimulatedAlpaca(frame, config=account, rate_limit_per_minute=None)
    try:
        sim.start()
        config = alpaca_config(
            options,
            key_id=sim.key_id,  # the simulator's generated pair, never the user's environment
            secret_key=sim.secret_key,
            base_url=sim.base_url,
            paper=True,
            allow_live=False,
            confirm_live=None,
            max_requests_per_minute=LOOPBACK_REQUESTS_PER_MINUTE,
            rate_limit_burst=LOOPBACK_BURST,
        )
        broker = AlpacaBroker(config)
        feed = AlpacaFeed(
            config,
            symbols,
            bar_size=f"{step // timedelta(minutes=1)}Min",
            end=stamps[-1] + step,
        )
        yield broker, feed
    finally:
        sim.close()
