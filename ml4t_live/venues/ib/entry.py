"""The CLI seam for Interactive Brokers (see :mod:`ml4t_live.cli.venues`).

``make_broker`` / ``make_feed`` build (without connecting) an :class:`IBBroker` and an
:class:`IBFeed` from the command line's :class:`VenueOptions`; ``run_sim`` serves the simulated IB
Gateway until the replay ends or Ctrl-C; ``demo_venue`` wires a broker and a feed to a simulated
gateway on a free loopback port.

``VenueOptions.extra`` (the ``[venue]`` table) may hold ``client_id``, ``feed_client_id``,
``account``, ``warmup_bars``, ``tz``, ``end`` (ISO date-time: the feed ends there); for the simulator ``data``, ``speed``, ``faults``,
``account``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from loguru import logger

from ...errors import ConfigError
from .broker import IBBroker
from .config import IBConfig
from .feed import IBFeed

_log = logger.bind(component="ib.entry")
PAPER_PORT = 7497  # TWS paper; IB Gateway paper is 4002


def ib_config(options: Any, **overrides: Any) -> IBConfig:
    extra = dict(options.extra or {})
    values: dict[str, Any] = {
        "host": options.host or "127.0.0.1",
        "port": int(options.port or PAPER_PORT),
        "client_id": int(extra.get("client_id", 1)),
        "feed_client_id": extra.get("feed_client_id"),
        "account": str(extra.get("account", "")),
        "allow_live": bool(options.live),
        "confirm_live": options.confirm_live if options.live else None,
    }
    values.update(overrides)
    return IBConfig(**values)


def make_broker(options: Any, config: Any) -> IBBroker:
    return IBBroker(ib_config(options))


def make_feed(options: Any) -> IBFeed:
    if not options.symbols:
        raise ConfigError("the IB feed needs --symbols (e.g. --symbols AAPL,MSFT)")
    extra = dict(options.extra or {})
    return IBFeed(
        ib_config(options),
        list(options.symbols),
        bar_size=options.bar_size or "1 min",
        warmup_bars=int(extra.get("warmup_bars", 0)),
        tz=str(extra.get("tz", "UTC")),
        end=_end(extra.get("end")),
    )


def _end(value: Any) -> datetime | None:
    """``[venue] end = "2024-03-05T21:00:00Z"``: the feed ends with the bar closing there."""
    if value is None or isinstance(value, datetime):
        end = value
    else:
        try:
            end = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(
                f"[venue] end must be an ISO date-time, got {value!r}"
            ) from None
    if end is not None and end.tzinfo is None:
        raise ConfigError("[venue] end needs a time zone (e.g. 2024-03-05T21:00:00Z)")
    return end


def run_sim(options: Any) -> int:
    """Serve the simulated IB Gateway on ``host:port`` until its replay ends (or Ctrl-C)."""
    from ml4t_live.sim.ib import SimulatedIBGateway

    extra = dict(options.extra or {})
    sim = SimulatedIBGateway(
        extra["data"],
        host=options.host or "127.0.0.1",
        port=int(options.port or PAPER_PORT),
        speed=extra.get("speed"),
        account=str(extra.get("account", "DU1234567")),
        faults=extra.get("faults"),
    )
    port = sim.start()
    _log.info("simulated IB Gateway on {}:{}; Ctrl-C stops it", sim.host, port)
    try:
        while not sim.wait_finished(timeout=1.0):
            pass
        _log.info("replay finished: {} bars", sim.bars_replayed)
    except KeyboardInterrupt:
        _log.info("stopping the simulated IB Gateway")
    finally:
        sim.close()
    return 0


@contextmanager
def demo_venue(options: Any, bars: Any) -> Iterator[tuple[IBBroker, IBFeed]]:
    """A simulated IB Gateway (step mode) replaying ``bars``, and a broker + feed wired to it."""
    from ml4t_live.sim.bars import load_bars
    from ml4t_live.sim.ib import SimulatedIBGateway
    from ml4t_live.sim.market_hours import is_open

    frame = load_bars(bars)
    stamps = sorted({ts for ts in frame["timestamp"].to_list() if is_open(ts)})
    if len(stamps) < 2:
        raise ConfigError(
            "the demo bars need at least two bars inside NYSE regular hours"
        )
    step = min(b - a for a, b in pairwise(stamps))
    symbols = sorted(frame["asset"].unique().to_list())
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
            end=stamps[-1] + step,
        )
        yield broker, feed
    finally:
        sim.close()


def _bar_size(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "1 min" if minutes == 1 else f"{minutes} mins"
    return f"{seconds} secs"
