"""From merged options to a finished run: strategy, config, feed, broker, LiveEngine, summary."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from loguru import logger
from ml4t.specs import HistoricalStrategyCompatibilityError

from ml4t_live.errors import ConfigError, LiveTradingRefused, StrategyError
from ml4t_live.risk import RiskConfig

from . import notifying
from . import options as opt
from .stopping import StopConditions, parse_stop_at
from .ui import Display
from .venues import VENUES, VenueOptions, entry_point

_log = logger.bind(component="cli")


def run_command(o: dict[str, Any], display: Display, clock: Any = None) -> None:
    """``ml4t-live run``; ``clock`` (a session clock) only with ``calendar`` (tests inject one)."""
    cls = opt.load_strategy_class(o.get("strategy") or "")
    strategy = opt.build_strategy(cls, o["params"])
    o["strategy"] = opt.strategy_target(cls, o["strategy"])
    config = opt.build_config(o.get("preset"), o.get("initial_cash"), o["backtest"])
    RiskConfig.from_table(o.get("risk"))  # a bad [risk] table stops here, before anything connects
    broker_name = (o.get("broker") or "shadow").lower()
    venue_opts = _venue_options(o, broker_name)
    feed = _make_feed(o, broker_name, venue_opts)
    broker = _make_broker(broker_name, venue_opts, config, o)
    _own(broker, o)
    if o.get("calendar"):  # today's session decides when to connect and when to stop
        from .calendar_session import calendar_session

        feed = calendar_session(o, feed, clock)
    mode = "shadow" if broker_name == "shadow" else ("LIVE" if venue_opts.live else "paper")
    run_engine(strategy, broker, feed, config, o, display, mode=mode)


def _venue_options(o: dict[str, Any], broker_name: str) -> VenueOptions:
    if broker_name not in ("shadow", "ib", "alpaca"):
        raise ConfigError(f"--broker must be shadow, ib or alpaca (got {broker_name!r})")
    live = bool(o.get("live"))
    if live and broker_name == "shadow":
        raise ConfigError("--live needs --broker ib or --broker alpaca (shadow mode never trades)")
    _check_venue_keys(o.get("venue") or {}, {broker_name, (o.get("feed") or broker_name).lower()})
    symbols = o.get("symbols") or ()
    if isinstance(symbols, str):
        symbols = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
    return VenueOptions(
        venue=broker_name if broker_name != "shadow" else (o.get("feed") or "replay"),
        host=o.get("host"), port=o.get("port"), symbols=tuple(symbols), bar_size=o.get("bar_size"),
        live=live, confirm_live=_live_confirmation(bool(o.get("confirm_live"))), extra=o["venue"],
    )  # fmt: skip


#: options a [venue] table is mistaken for (they sit at the top of the file)
VENUE_FLAGS = ("host", "port", "symbols", "bar_size", "live", "confirm_live", "broker", "feed")


def _check_venue_keys(table: dict[str, Any], venues: set[str]) -> None:
    """Every ``[venue]`` key must be one the run's venues read (a typo is an error, exit 2)."""
    venues = {v for v in venues if v in VENUES}
    if not table or not venues:
        return
    known = sorted({k for v in venues for k in getattr(_entry_module(v), "VENUE_KEYS", ())})
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            option = difflib.get_close_matches(key, VENUE_FLAGS, n=1, cutoff=0.7)
            hint = (f" (did you mean {close[0]!r}?)" if close else
                    f" ({option[0]} is not a [venue] key but an option: put it above the first table, "
                    f"or pass --{option[0].replace('_', '-')})" if option else "")  # fmt: skip
            raise ConfigError(f"unknown key {key!r} in [venue] for {', '.join(sorted(venues))}{hint}; "
                              f"known keys: {', '.join(known)}")  # fmt: skip


def _entry_module(venue: str) -> Any:
    return importlib.import_module(f"ml4t_live.venues.{venue}.entry")


def _live_confirmation(confirmed: bool) -> Any:
    def confirm(account: str) -> bool:
        if confirmed:
            _log.warning("LIVE account {} confirmed by --confirm-live", account)
            return True
        if not sys.stdin.isatty():
            raise LiveTradingRefused(
                f"account {account} is a LIVE account and there is no terminal to confirm on; "
                "pass --confirm-live together with --live for unattended live runs"
            )
        answer = typer.prompt(f"Account {account} is a LIVE, real-money account. Type LIVE to trade it")
        return answer.strip() == "LIVE"

    return confirm


def _make_feed(o: dict[str, Any], broker_name: str, venue_opts: VenueOptions) -> Any:
    from ml4t_live.feeds.replay import ReplayFeed

    feed_name = (o.get("feed") or ("replay" if o.get("data") or broker_name == "shadow" else broker_name)).lower()
    if feed_name == "replay":
        if broker_name != "shadow":
            raise ConfigError(
                f"recorded bars (--data) can only drive the shadow broker, not --broker {broker_name}: "
                f"to rehearse against {broker_name} offline use its simulated venue (ml4t-live sim "
                f"{broker_name}), or drop --data to trade on the venue's own bars"
            )
        if not o.get("data"):
            raise ConfigError("no bars to replay: pass --data bars.parquet|.csv (or --feed ib|alpaca for live bars)")
        return ReplayFeed(o["data"], o.get("signals"), o.get("context"), speed=speed_option(o.get("speed")),
                          on_bad_bars=o.get("on_bad_bars") or "refuse")  # fmt: skip
    if o.get("data"):
        raise ConfigError(f"--data replays recorded bars; it cannot be combined with --feed {feed_name}")
    return entry_point(feed_name, "make_feed")(dataclasses.replace(venue_opts, venue=feed_name))


def _make_broker(broker_name: str, venue_opts: VenueOptions, config: Any, o: dict[str, Any]) -> Any:
    if broker_name == "shadow":
        return shadow_broker(config, o)
    return entry_point(broker_name, "make_broker")(venue_opts, config)


OWNERSHIP_KEYS = ("state_dir", "adopt_positions", "external", "catch_up", "on_divergence")


def shadow_broker(config: Any, o: dict[str, Any]) -> Any:
    """A shadow broker as the CLI runs it: the rails, and a journal in the state directory (a
    killed rehearsal restarts warm; ``ml4t-live halt`` reaches it)."""
    from ml4t_live.shadow import ShadowBroker

    return ShadowBroker(config, risk=o.get("risk"), journal=True, state_dir=o.get("state_dir"),
                        on_divergence=o.get("on_divergence") or "fail")  # fmt: skip


def _own(broker: Any, o: dict[str, Any]) -> None:
    """The journal and ownership options of a venue broker (a shadow broker has its journal)."""
    configure = getattr(broker, "configure", None)
    if configure is None:
        given = [k for k in ("adopt_positions", "external", "catch_up", "open_orders_at_end") if o.get(k) is not None]
        if given:
            _log.info("shadow mode has no venue positions or orders: {} ignored", ", ".join(given))
        return
    configure(risk=o.get("risk"), **{k: o[k] for k in OWNERSHIP_KEYS if o.get(k) is not None})


def speed_option(value: Any) -> float | None:
    if value is None or value == 0:
        return None
    return float(value)


def run_engine(strategy: Any, broker: Any, feed: Any, config: Any, o: dict[str, Any],
                display: Display, *, mode: str) -> Any:  # fmt: skip
    from ml4t_live.engine import LiveEngine
    from ml4t_live.journal import default_strategy_id
    from ml4t_live.session import SessionWriter

    from .operator import restart_notice

    # a journal left HALTED / REDUCING: said first, before anything connects
    notice = restart_notice(o.get("state_dir"), broker.venue, o.get("strategy_id") or default_strategy_id(strategy))
    if notice:
        _log.warning(notice)
    name = type(strategy).__name__
    kwargs: dict[str, Any] = {"config": config, "error_policy": o.get("error_policy")}
    if kwargs["error_policy"] not in (None, "raise", "log"):
        raise ConfigError(f"--error-policy must be 'raise' or 'log' (got {kwargs['error_policy']!r})")
    for key in ("settle_timeout", "heartbeat_timeout"):
        if o.get(key) is not None:
            kwargs[key] = float(o[key])
    if o.get("retain") is not None:
        kwargs["retain"] = int(o["retain"])
    for key in ("strategy_id", "open_orders_at_end"):
        if o.get(key) is not None:
            kwargs[key] = str(o[key])
    if o.get("no_session"):
        kwargs["session_dir"] = False
    else:
        try:
            writer_dir = SessionWriter.create(o.get("session_dir"), name, datetime.now(UTC)).dir
        except OSError as exc:
            where = o.get("session_dir") or "./sessions"
            raise ConfigError(f"cannot create the session folder under {where}: {exc.strerror or exc}; "
                              "pass a writable --session-dir (or --no-session)") from None
        display.log_to_file(writer_dir / "session.log")
        _write_command(writer_dir, o, mode)
        kwargs["session_dir"] = writer_dir
    stops = StopConditions(
        parse_stop_at(o["stop_at"]) if o.get("stop_at") else None, o.get("max_bars")
    )
    progress = stops.wrap_progress(display.progress_callback(name))
    notifier = notifying.create(o.get("notify"))  # [notify]: checked before anything starts
    feed, progress = notifying.wire(notifier, broker, feed, progress)
    if notifier is not None:
        kwargs["on_strategy_error"] = notifier.strategy_error
    try:
        engine = LiveEngine(strategy, broker, feed, progress=progress, **kwargs)
    except HistoricalStrategyCompatibilityError as exc:  # the backtest's own up-front checks
        raise StrategyError(f"{name} cannot run: {exc}", hook="validation") from exc
    _log.info("running {} in {} mode", name, mode)
    try:
        with stops.watch(engine):
            result = notifying.run(engine, notifier, name, mode)
    except Exception:
        if o.get("report"):  # a failed run's files are what one wants to look at
            _report(kwargs.get("session_dir"), display)
        raise
    display.summary(name, result, mode)
    if o.get("report"):
        _report(result.session_dir, display)
    return result


def _report(session_dir: Any, display: Display) -> None:
    from .report_commands import report_after_run

    report_after_run(session_dir or None, display)


#: What ``command.json`` keeps: enough for ``ml4t-live replay SESSION`` to rebuild the strategy.
RECORDED_KEYS = ("strategy", "params", "preset", "initial_cash", "backtest", "error_policy",
                 "strategy_id", "risk", "session_plan")  # fmt: skip


def _write_command(folder: Any, o: dict[str, Any], mode: str) -> None:
    """``command.json``: the command line and the resolved strategy / config options."""
    from ml4t_live.session import json_safe

    record = {"argv": sys.argv, "mode": mode, **{k: o.get(k) for k in RECORDED_KEYS}}
    (folder / "command.json").write_text(json.dumps(json_safe(record), indent=2) + "\n")


def recorded_command(session: Any) -> dict[str, Any]:
    """The options a session was run with (``command.json``), or {} for a session without one."""
    path = Path(session) / "command.json"
    if not path.is_file():
        return {}
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return {k: recorded[k] for k in RECORDED_KEYS if recorded.get(k) not in (None, {}, "")}


def run_demo(o: dict[str, Any], display: Display) -> Any:
    """``ml4t-live demo``: DemoMomentum on the bundled bars."""
    from ml4t_live.examples import DemoMomentum, demo_bars_path
    from ml4t_live.feeds.replay import ReplayFeed

    config = opt.build_config(None, o.get("initial_cash"), None)
    venue = (o.get("venue") or "shadow").lower()
    o["strategy"] = "ml4t_live.examples:DemoMomentum"  # command.json: what report / replay re-run
    if venue == "shadow":
        feed = ReplayFeed(demo_bars_path(), speed=speed_option(o.get("speed")))
        return run_engine(DemoMomentum(), shadow_broker(config, o), feed, config, o, display, mode="shadow")
    demo_venue = entry_point(venue, "demo_venue")
    # the simulated account starts with the demo's cash, so the return is measured from it
    extra = {**(o["venue"] if isinstance(o.get("venue"), dict) else {}),
             "initial_cash": config.initial_cash, "speed": speed_option(o.get("speed"))}  # fmt: skip
    with demo_venue(VenueOptions(venue=venue, extra=extra), demo_bars_path()) as (broker, feed):
        return run_engine(DemoMomentum(), broker, feed, config, o, display, mode=f"paper ({venue} simulated)")


def replay_session(session: Any, o: dict[str, Any], display: Display) -> Any:
    """``ml4t-live replay``: a recorded session's bars, signals and context through a strategy."""
    from ml4t_live.feeds.replay import ReplayFeed
    from ml4t_live.session import OPTIONAL_BAR_COLUMNS, read_session_bars

    prices, signals, context = read_session_bars(session)
    recorded = recorded_command(session)
    if not o.get("strategy"):  # the session's own strategy, with its parameters
        if "strategy" not in recorded:
            raise ConfigError(f"{session} does not record its strategy (no command.json): name one, "
                              "ml4t-live replay SESSION path/to/file.py:ClassName")  # fmt: skip
        o["strategy"] = recorded["strategy"]
        o["params"] = {**recorded.get("params", {}), **o["params"]}
    for key in ("preset", "initial_cash", "backtest", "risk"):  # the session's account and rails, unless overridden
        if not o.get(key) and key in recorded:
            o[key] = recorded[key]
    cls = opt.load_strategy_class(o["strategy"])
    strategy = opt.build_strategy(cls, o["params"])
    o["strategy"] = opt.strategy_target(cls, o["strategy"])
    config = opt.build_config(o.get("preset"), o.get("initial_cash"), o["backtest"])
    # the backtest delivers vwap / bid / ask ... only for declared columns: declare what was recorded
    declared = {f"{c}_col": c for c in OPTIONAL_BAR_COLUMNS if c in prices.columns}
    feed = ReplayFeed(prices, signals, context, speed=speed_option(o.get("speed")),
                      on_bad_bars=o.get("on_bad_bars") or "refuse", **declared)  # fmt: skip
    RiskConfig.from_table(o.get("risk"))
    return run_engine(strategy, shadow_broker(config, o), feed, config, o, display, mode="shadow replay")


def _announce(text: str) -> None:
    """The command line's own output (where a simulated venue listens, how to connect)."""
    print(text, flush=True)


_FAULT_EXAMPLES = {
    "ib": '[[fault]]\nkind = "drop_connection"\nat_bar = 5            # just before bar index 5 (0-based)\n\n'
          '[[fault]]\nkind = "partial_fill"\nat_bar = 10\nparams = { parts = 3 }',
    "alpaca": '[[fault]]\nkind = "rate_limit_storm"\nat_bar = 5            # just before bar index 5 (0-based)\n'
              'count = 10\n\n[[fault]]\nkind = "reject_next"\nat_bar = 10\n'
              'params = { reason = "insufficient buying power" }',
}


def fault_kinds(venue: str) -> str:
    """``sim VENUE --list-faults``: the kinds table from the venue's faults module (its docstring
    is the one description of what each kind does) and an example scenario file."""
    if venue not in VENUES:
        raise ConfigError(f"no simulated venue {venue!r}: ib or alpaca")
    text = importlib.import_module(f"ml4t_live.sim.{venue}.faults").__doc__ or ""
    text = re.sub(r"^``(\w+)``", r"\1    ", text, flags=re.MULTILINE)  # the kinds column keeps its width
    text = re.sub(r":\w+:`([^`]+)`", r"\1", text).replace("``", "")
    return (f"{text.strip()}\n\nA scenario file (ml4t-live sim {venue} --faults scenario.toml); seconds and "
            f"count are top-level keys, every other parameter goes in params:\n\n{_FAULT_EXAMPLES[venue]}")


def serve_sim(
    venue: str,
    data: Any,
    host: str,
    port: int | None,
    speed: float | None,
    faults: Any = None,
    account: str | None = None,
    history: str | None = None,
    commission: str | None = None,
    account_type: str | None = None,
) -> int:
    """``ml4t-live sim``: hand over to the venue's simulator (seam: venues.<venue>.entry.run_sim)."""
    from ml4t_live.examples import demo_bars_path

    run_sim = entry_point(venue, "run_sim")
    options = VenueOptions(venue=venue, host=host, port=port, announce=_announce,
                           extra={"data": str(data or demo_bars_path()), "speed": speed_option(speed),
                                  "faults": str(faults) if faults else None,
                                  **({"account": account} if account else {}),
                                  **({"history": history} if history else {}),
                                  **({"commission": commission} if commission else {}),
                                  **({"account_type": account_type} if account_type else {})})  # fmt: skip
    return int(run_sim(options) or 0)
