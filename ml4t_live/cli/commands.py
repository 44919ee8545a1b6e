"""The commands: run, demo, replay, sim, reconcile (halt and resume: :mod:`.halt_resume`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml4t_live.errors import ConfigError

from . import options as opt
from .app import (
    RUN_KEYS,
    ConfigFile,
    ErrorPolicy,
    HeartbeatTimeout,
    InitialCash,
    MaxBars,
    NoSession,
    OnBadBars,
    Params,
    Preset,
    Quiet,
    Retain,
    SessionDir,
    SettleTimeout,
    SimSpeed,
    Speed,
    StateDir,
    StopAt,
    StrategyId,
    Verbose,
    _guard,
    app,
)
from .runner import fault_kinds, replay_session, run_command, run_demo, serve_sim
from .ui import Display

_HELP = {
    "strategy": "path/to/file.py:ClassName, path/to/file.py (its one Strategy subclass) or "
    "package.module:ClassName.",
    "data": "Recorded bars to replay: parquet or CSV in ml4t.backtest's long format "
    "(timestamp, symbol|asset, open, high, low, close, volume).",
    "signals": "Per-asset signals (timestamp, asset, ...), parquet or CSV.",
    "context": "Market-wide context (timestamp, ...), parquet or CSV.",
    "broker": "Where orders go: shadow (simulated fills, default), ib or alpaca (paper unless "
    "--live; a live account also needs confirmation).",
    "feed": "Where bars come from: replay (needs --data), ib or alpaca [default: replay with "
    "--data, else the broker's venue].",
    "host": "ib: the host of TWS / IB Gateway (default 127.0.0.1; with --port, default 7497). "
    "alpaca: the endpoint URL (e.g. http://127.0.0.1:8765 for ml4t-live sim alpaca; default: "
    "Alpaca's paper URL, its live URL with --live); a bare host needs --port.",
    "symbols": "Comma-separated symbols to subscribe to (venue feeds).",
    "live": "Allow a LIVE (real-money) account. Never the default; asks for confirmation.",
    "confirm_live": "With --live: confirm non-interactively (cron).",
    "demo_venue": "shadow: replay the bundled bars into the shadow broker (default). ib / "
    "alpaca: the same bars through a simulated venue on 127.0.0.1 and the real ib_async / "
    "alpaca-py client.",
    "session": "A session folder written by an earlier run (its bars.parquet, signals, context).",
    "replay_strategy": "path/to/file.py:ClassName (or package.module:ClassName); default: the "
    "session's own strategy and parameters (from its command.json).",
    "sim_venue": "ib (TWS API socket) or alpaca (REST + websockets).",
    "sim_data": "Bars the simulated venue replays (default: the bundled demo bars).",
    "sim_port": "Port to listen on (default: the venue's paper port).",
    "sim_account": "ib: the account id the simulated gateway reports (default DU1234567, a paper "
    "account; a U... id rehearses the live-account refusal).",
    "open_orders_at_end": "Venue runs: what happens to the strategy's working orders when the run "
    "ends in order (end of data, --max-bars, --stop-at, SIGTERM, Ctrl-C): cancel (default; "
    "the outcome is recorded), keep (left working; the summary lists them) or flatten (cancel, "
    "then close the strategy's positions with MARKET orders).",
    "on_divergence": "Warm restart: when the strategy does not repeat its journaled decisions "
    "(it is not deterministic): fail (default, exit 3, nothing sent) or continue.",
    "catch_up": "Orders placed on a catch-up bar (warm-up history, a backfill after an outage, "
    "a bar replayed after a crash): reject (default, REJECTED with the reason) or trade.",
    "external": "Venue positions no journal explains (another client's trades): warn (default: "
    "reported, never traded) or halt (also stop new orders until ml4t-live resume).",
    "adopt_positions": "Take over the account's existing positions as this strategy's own (only "
    "when its journal is created). Off by default: they stay external.",
    "sim_history": "The first N recorded bars (390) or a duration of them (90min, 2d) are "
    "history: served by the historical-data requests from the start; the replay begins after "
    "them.",
    "sim_commission": "ib: commission schedule on fills: none (default), ib-fixed (USD 0.005/share, "
    "min 1.00, max 1% of value) or ib-tiered (USD 0.0035/share, min 0.35, max 1%).",
    "sim_account_type": "ib: the account IB's pre-trade margin check models: margin (default; Reg "
    "T, initial margin 50%) or cash (a buy needs the cash; 5% cushion on market buys). An order "
    "over the limit gets 201 at submission.",
    "calendar": "Run one exchange session (an exchange_calendars name: XNYS, XNAS, XLON ...): on a "
    "closed day or after the close exit 4 without connecting; before the open wait, connect "
    "--connect-before the open, warm up (catch-up bars), trade until the close (+ --close-offset), "
    "apply --end-of-day, exit 0.",
    "as_of": "With --calendar: rehearse the session of this date (2024-11-29) or moment (ISO with "
    "offset) against a simulated venue replaying it: the clock follows its bars and never waits.",
    "end_of_day": "With --calendar, at the session's end: cancel the strategy's working orders "
    "(default), flatten (cancel them, close its positions with MARKET orders; the session then ends "
    "5 minutes before the close unless --close-offset says otherwise) or hold (leave them).",
    "connect_before": "With --calendar: connect (reconcile, warm up) this long before the open "
    "[default: 15min].",
    "close_offset": "With --calendar: end the session this long after the close (negative: before "
    "it), e.g. -5min [default: 0, flatten -5min].",
    "sim_faults": "TOML file of scripted faults ([[fault]] tables: kind, at_bar, count, seconds, "
    "params), e.g. dropped connections, rejections, partial fills, rate-limit storms. "
    "--list-faults prints the venue's kinds and their parameters.",
    "list_faults": "Print the fault kinds this simulated venue knows, with their parameters, "
    "and the scenario file format; then exit.",
}


ReportFlag = Annotated[bool | None, typer.Option(
    "--report", help="At the end, write report.html / report.png / parity.json into the session "
    "folder (ml4t-live report SESSION does the same later).", show_default=False)]  # fmt: skip


@app.command()
@_guard
def run(
    strategy: Annotated[str | None, typer.Argument(help=_HELP["strategy"], show_default=False)] = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help=_HELP["data"])] = None,
    signals: Annotated[Path | None, typer.Option(help=_HELP["signals"])] = None,
    context: Annotated[Path | None, typer.Option(help=_HELP["context"])] = None,
    param: Params = None,
    config: ConfigFile = None,
    speed: Speed = None,
    initial_cash: InitialCash = None,
    preset: Preset = None,
    session_dir: SessionDir = None,
    no_session: NoSession = None,
    error_policy: ErrorPolicy = None,
    settle_timeout: SettleTimeout = None,
    heartbeat_timeout: HeartbeatTimeout = None,
    stop_at: StopAt = None,
    max_bars: MaxBars = None,
    retain: Retain = None,
    on_bad_bars: OnBadBars = None,
    broker: Annotated[str | None, typer.Option(help=_HELP["broker"])] = None,
    feed: Annotated[str | None, typer.Option(help=_HELP["feed"])] = None,
    host: Annotated[str | None, typer.Option(help=_HELP["host"])] = None,
    port: Annotated[int | None, typer.Option(help="Venue port.")] = None,
    symbols: Annotated[str | None, typer.Option(help=_HELP["symbols"])] = None,
    bar_size: Annotated[str | None, typer.Option(help="Venue bar size, e.g. 1min, 5s.")] = None,
    live: Annotated[bool | None, typer.Option("--live", help=_HELP["live"], show_default=False)] = None,
    confirm_live: Annotated[
        bool | None, typer.Option("--confirm-live", help=_HELP["confirm_live"], show_default=False)
    ] = None,
    strategy_id: StrategyId = None,
    state_dir: StateDir = None,
    open_orders_at_end: Annotated[str | None, typer.Option(help=_HELP["open_orders_at_end"])] = None,
    on_divergence: Annotated[str | None, typer.Option(help=_HELP["on_divergence"])] = None,
    catch_up: Annotated[str | None, typer.Option(help=_HELP["catch_up"])] = None,
    external: Annotated[str | None, typer.Option(help=_HELP["external"])] = None,
    adopt_positions: Annotated[
        bool | None, typer.Option("--adopt-positions", help=_HELP["adopt_positions"], show_default=False)
    ] = None,
    report: ReportFlag = None,
    calendar: Annotated[str | None, typer.Option(help=_HELP["calendar"])] = None,
    as_of: Annotated[str | None, typer.Option(help=_HELP["as_of"])] = None,
    end_of_day: Annotated[str | None, typer.Option(help=_HELP["end_of_day"])] = None,
    connect_before: Annotated[str | None, typer.Option(help=_HELP["connect_before"])] = None,
    close_offset: Annotated[str | None, typer.Option(help=_HELP["close_offset"])] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run a strategy: shadow mode on recorded bars by default (--data), or against a venue.

    The --config TOML file holds the same names as these options (strategy = "file.py:Class",
    data = "bars.parquet", initial_cash = 50000, ...; paths relative to the file), plus the
    tables [params] (strategy constructor arguments), [backtest] (BacktestConfig sections, e.g.
    commission = { model = "percentage", rate = 0.0005 }) and [venue] (venue settings, e.g. IB
    client_id = 7, warmup_bars = 30, end = "2024-03-04T16:00:00-05:00"; every key is listed in
    docs/operations.md, "The [venue] table"; an unknown key is an error). A [notify] table sends
    chosen events to apprise URLs (urls = [...], events = [...]; docs/operations.md,
    "Notifications").
    """
    display = Display(verbose=verbose, quiet=quiet)
    cli = dict(strategy=strategy, data=data, signals=signals, context=context, speed=speed,
               initial_cash=initial_cash, preset=preset, session_dir=session_dir,
               no_session=no_session, error_policy=error_policy, settle_timeout=settle_timeout,
               heartbeat_timeout=heartbeat_timeout, stop_at=stop_at, max_bars=max_bars,
               retain=retain, broker=broker, feed=feed, host=host, port=port,
               symbols=symbols, bar_size=bar_size, live=live, confirm_live=confirm_live,
               strategy_id=strategy_id, state_dir=state_dir, open_orders_at_end=open_orders_at_end,
               on_divergence=on_divergence, catch_up=catch_up, external=external,
               adopt_positions=adopt_positions, report=report, on_bad_bars=on_bad_bars,
               calendar=calendar, as_of=as_of,
               end_of_day=end_of_day, connect_before=connect_before, close_offset=close_offset,
               quiet=quiet or None, verbose=verbose or None, params=opt.parse_params(param))  # fmt: skip
    o = opt.merge_options(cli, config, RUN_KEYS)
    display.set_level(verbose=bool(o.get("verbose")), quiet=bool(o.get("quiet")))
    try:
        run_command(o, display)
    finally:
        display.close()


DEMO_KEYS = ("speed", "initial_cash", "session_dir", "no_session", "quiet", "verbose", "venue", "report")


@app.command()
@_guard
def demo(
    venue: Annotated[str | None, typer.Option(help=_HELP["demo_venue"])] = None,
    config: ConfigFile = None,
    speed: Speed = None,
    initial_cash: InitialCash = None,
    session_dir: SessionDir = None,
    no_session: NoSession = None,
    report: ReportFlag = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run the bundled DemoMomentum strategy on two days of bundled 1-minute bars (AAPL, MSFT,
    SPY) through LiveEngine in shadow mode, then print a summary and the session folder."""
    display = Display(verbose=verbose, quiet=quiet)
    cli = dict(venue=venue, speed=speed, initial_cash=initial_cash, session_dir=session_dir,
               no_session=no_session, report=report, quiet=quiet or None, verbose=verbose or None,
               params={})  # fmt: skip
    o = opt.merge_options(cli, config, DEMO_KEYS)
    display.set_level(verbose=bool(o.get("verbose")), quiet=bool(o.get("quiet")))
    try:
        run_demo(o, display)
    finally:
        display.close()


REPLAY_KEYS = tuple(k for k in RUN_KEYS if k not in ("data", "signals", "context", "broker", "feed",
                    "host", "port", "symbols", "bar_size", "live", "confirm_live", "calendar", "as_of",
                    "end_of_day", "connect_before", "close_offset", "max_clock_skew"))  # fmt: skip


@app.command()
@_guard
def replay(
    session: Annotated[Path, typer.Argument(help=_HELP["session"], show_default=False)],
    strategy: Annotated[
        str | None, typer.Argument(help=_HELP["replay_strategy"], show_default=False)
    ] = None,
    param: Params = None,
    config: ConfigFile = None,
    speed: Speed = None,
    initial_cash: InitialCash = None,
    preset: Preset = None,
    session_dir: SessionDir = None,
    no_session: NoSession = None,
    error_policy: ErrorPolicy = None,
    settle_timeout: SettleTimeout = None,
    heartbeat_timeout: HeartbeatTimeout = None,
    stop_at: StopAt = None,
    max_bars: MaxBars = None,
    on_bad_bars: OnBadBars = None,
    strategy_id: StrategyId = None,
    state_dir: StateDir = None,
    on_divergence: Annotated[str | None, typer.Option(help=_HELP["on_divergence"])] = None,
    report: ReportFlag = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Re-run a recorded session's bars through a strategy, in shadow mode (a new session
    folder records the replay; a journal in the state directory: a killed replay restarts
    warm, ml4t-live halt --strategy-id ID reaches it). Without a strategy, the session's own
    one is used with the parameters, preset and cash it ran with; flags given here win."""
    display = Display(verbose=verbose, quiet=quiet)
    cli = dict(strategy=strategy, speed=speed, initial_cash=initial_cash, preset=preset,
               session_dir=session_dir, no_session=no_session, error_policy=error_policy,
               settle_timeout=settle_timeout, heartbeat_timeout=heartbeat_timeout,
               stop_at=stop_at, max_bars=max_bars, on_bad_bars=on_bad_bars, report=report,
               strategy_id=strategy_id, state_dir=state_dir, on_divergence=on_divergence,
               quiet=quiet or None, verbose=verbose or None, params=opt.parse_params(param))  # fmt: skip
    o = opt.merge_options(cli, config, REPLAY_KEYS)
    display.set_level(verbose=bool(o.get("verbose")), quiet=bool(o.get("quiet")))
    try:
        replay_session(session, o, display)
    finally:
        display.close()


@app.command()
@_guard
def sim(
    venue: Annotated[str, typer.Argument(help=_HELP["sim_venue"], show_default=False)],
    data: Annotated[Path | None, typer.Option("--data", "-d", help=_HELP["sim_data"])] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help=_HELP["sim_port"])] = None,
    speed: SimSpeed = None,
    faults: Annotated[Path | None, typer.Option(help=_HELP["sim_faults"])] = None,
    account: Annotated[str | None, typer.Option(help=_HELP["sim_account"])] = None,
    history: Annotated[str | None, typer.Option(help=_HELP["sim_history"])] = None,
    commission: Annotated[str | None, typer.Option(help=_HELP["sim_commission"])] = None,
    account_type: Annotated[str | None, typer.Option(help=_HELP["sim_account_type"])] = None,
    list_faults: Annotated[bool, typer.Option("--list-faults", help=_HELP["list_faults"])] = False,
    verbose: Verbose = False,
) -> None:
    """Serve a simulated venue on this machine, to rehearse a strategy's exact venue
    configuration offline: real TWS API socket (ib) or REST + websockets (alpaca) on 127.0.0.1,
    replaying recorded bars as live data and filling orders by ml4t.backtest's rules."""
    if list_faults:
        typer.echo(fault_kinds(venue))
        raise typer.Exit(0)
    display = Display(verbose=verbose)
    try:
        raise typer.Exit(serve_sim(venue, data, host, port, speed, faults, account, history,
                                   commission, account_type))
    finally:
        display.close()


RECONCILE_KEYS = ("strategy", "broker", "host", "port", "strategy_id", "state_dir", "live",
                  "confirm_live", "quiet", "verbose")  # fmt: skip


@app.command()
@_guard
def reconcile(
    strategy: Annotated[str | None, typer.Argument(help=_HELP["strategy"], show_default=False)] = None,
    broker: Annotated[str | None, typer.Option(help="The venue: ib or alpaca.")] = None,
    host: Annotated[str | None, typer.Option(help=_HELP["host"])] = None,
    port: Annotated[int | None, typer.Option(help="Venue port.")] = None,
    strategy_id: StrategyId = None,
    state_dir: StateDir = None,
    param: Params = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    live: Annotated[bool | None, typer.Option("--live", help="Allow reading a LIVE account.", show_default=False)] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compare a strategy's journal with the venue, read-only: positions (external or missing),
    open orders, executions. Never places, changes or cancels anything. Exit 0 when consistent,
    3 when not. The strategy is named by --strategy-id, or by the strategy and -p parameters it
    runs with (its default id). IB: give [venue] client_id a free id while the strategy runs;
    IB then shows that client's open orders only (positions and executions are the account's)."""
    from .reconcile import check, render
    from .reconcile import reconcile as compare
    from .runner import _venue_options

    display = Display(verbose=verbose, quiet=True)
    cli = dict(strategy=strategy, broker=broker, host=host, port=port, strategy_id=strategy_id,
               state_dir=state_dir, live=live, confirm_live=live, quiet=True,
               verbose=verbose or None, params=opt.parse_params(param))  # fmt: skip
    o = opt.merge_options(cli, config, RECONCILE_KEYS)
    try:
        name = (o.get("broker") or "").lower()
        if name not in ("ib", "alpaca"):
            raise ConfigError("reconcile needs --broker ib or --broker alpaca")
        differences, facts = compare(o, _venue_options(o, name))
        typer.echo(render(differences, facts, as_json), nl=False)
        check(differences)
    finally:
        display.close()
