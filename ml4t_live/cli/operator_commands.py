"""The operator's venue commands: ``status``, ``orders`` (read-only), ``flatten``, ``cancel-all``.

Each names the strategy by ``--strategy-id`` (its journal) and the venue by ``--broker`` plus
``--host`` / ``--port`` or the run's own ``--config`` file (its [venue] table is read; keys only
a run uses are ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ml4t_live.errors import ConfigError, ConnectionFailed

from . import options as opt
from .app import RUN_KEYS, ConfigFile, StateDir, Verbose, _guard, app
from .ui import Display

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
Broker = Annotated[str | None, typer.Option(help="The venue: ib or alpaca (or broker = ... in --config).")]
StatusBroker = Annotated[str | None, typer.Option(
    help="The venue: ib or alpaca, or shadow for a shadow run's journal (or broker = ... in --config)."
)]  # fmt: skip
Host = Annotated[str | None, typer.Option(help="Venue host (IB Gateway/TWS; Alpaca: the endpoint URL).")]
Port = Annotated[int | None, typer.Option(help="Venue port.")]
Account = Annotated[str | None, typer.Option(help="The account, when the strategy trades several.")]
ClientId = Annotated[int | None, typer.Option(
    help="IB: the API client id to connect with; never the running strategy's [default: 99]."
)]  # fmt: skip
Live = Annotated[bool | None, typer.Option("--live", help="Allow reading a LIVE account.", show_default=False)]
Day = Annotated[str | None, typer.Option(help="The day whose fills are shown, YYYY-MM-DD [default: today, UTC].")]
StrategyIdOpt = Annotated[str | None, typer.Option(
    help="The strategy's id (as in its client order ids and its journal's name; or strategy_id in --config)."
)]  # fmt: skip


def _options(config: Path | None, **cli: Any) -> dict[str, Any]:
    o = opt.merge_options({**cli, "params": {}}, config, (*RUN_KEYS, "account", "client_id"))
    if not o.get("strategy_id"):
        raise ConfigError("name the strategy: --strategy-id ID (or strategy_id in --config)")
    return o


def _venue(o: dict[str, Any], client_id: int | None) -> Any:
    """The venue options of an operator command (IB: its own client id)."""
    import dataclasses

    from .runner import _venue_options
    from .status import OPERATOR_CLIENT_ID

    name = str(o.get("broker") or "").lower()
    if name not in ("ib", "alpaca"):
        raise ConfigError("name the venue: --broker ib or --broker alpaca (or broker = ... in --config)")
    o = {**o, "confirm_live": o.get("live")}
    venue_opts = _venue_options(o, name)
    extra = dict(venue_opts.extra)
    if name == "ib":
        extra["client_id"] = client_id if client_id is not None else OPERATOR_CLIENT_ID
        extra.pop("feed_client_id", None)
    if o.get("account"):
        extra["account"] = o["account"]
    return dataclasses.replace(venue_opts, extra=extra)


@app.command()
@_guard
def status(
    strategy_id: StrategyIdOpt = None,
    broker: StatusBroker = None,
    host: Host = None,
    port: Port = None,
    account: Account = None,
    client_id: ClientId = None,
    state_dir: StateDir = None,
    config: ConfigFile = None,
    day: Day = None,
    as_json: Json = False,
    live: Live = None,
    verbose: Verbose = False,
) -> None:
    """A strategy at a glance, read-only: connection, trading state (ACTIVE / HALTED and why),
    positions (the strategy's own vs external), open orders, the day's fills, P&L and risk-limit
    usage. Never places, changes or cancels anything; safe while the strategy runs. Exit 3 when
    the venue cannot be read (the journal's part is still shown)."""
    from .status import gather, gather_shadow, parse_day, render_status

    display = Display(verbose=verbose, quiet=True)
    try:
        o = _options(config, strategy_id=strategy_id, broker=broker, host=host, port=port, account=account,
                     state_dir=state_dir, live=live)  # fmt: skip
        if not o.get("broker"):
            raise ConfigError("name the venue: --broker ib or --broker alpaca, or --broker shadow for a shadow "
                              "run's journal (or broker = ... in --config)")  # fmt: skip
        if str(o.get("broker") or "").lower() == "shadow":  # a shadow run's journal: no venue to read
            typer.echo(render_status(gather_shadow(o, parse_day(day)), as_json), nl=False)
            return
        facts = gather(o, _venue(o, client_id), parse_day(day))
        typer.echo(render_status(facts, as_json), nl=False)
        if not facts["connection"]["connected"]:
            raise ConnectionFailed(f"the venue could not be read: {facts['connection']['error']}")
    finally:
        display.close()


@app.command()
@_guard
def orders(
    strategy_id: StrategyIdOpt = None,
    broker: Broker = None,
    host: Host = None,
    port: Port = None,
    account: Account = None,
    client_id: ClientId = None,
    state_dir: StateDir = None,
    config: ConfigFile = None,
    as_json: Json = False,
    live: Live = None,
    verbose: Verbose = False,
) -> None:
    """Open orders at the venue, read-only: the strategy's (in its journal) and everyone else's
    (external), plus journal orders the venue no longer shows."""
    from ml4t_live.journal.operator_access import read_only

    from .operator import find_journal
    from .status import open_orders, read_venue, render_orders

    display = Display(verbose=verbose, quiet=True)
    try:
        o = _options(config, strategy_id=strategy_id, broker=broker, host=host, port=port, account=account,
                     state_dir=state_dir, live=live)  # fmt: skip
        venue_opts = _venue(o, client_id)
        path = find_journal({**o, "broker": venue_opts.venue})
        _, venue_orders = read_venue(venue_opts)
        journal = read_only(path)
        try:
            intents = journal.intents()
        finally:
            journal.close()
        typer.echo(render_orders(open_orders(intents, venue_orders, o["strategy_id"]), as_json), nl=False)
    finally:
        display.close()


# ------------------------------------------------------------------------------ acting commands
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts, cron).")]
Reason = Annotated[str | None, typer.Option(help="Why (kept in the journal, shown in the strategy's refusals).")]
OwnClientId = Annotated[int | None, typer.Option(
    help="IB: the client id the strategy's orders were placed under (default: the one its journal "
    "recorded, else [venue] client_id, default 1): IB lets only the client that placed an order cancel it."
)]  # fmt: skip


@app.command(name="cancel-all")
@_guard
def cancel_all(
    strategy_id: StrategyIdOpt = None,
    broker: Broker = None,
    host: Host = None,
    port: Port = None,
    account: Account = None,
    client_id: OwnClientId = None,
    state_dir: StateDir = None,
    config: ConfigFile = None,
    reason: Reason = None,
    yes: Yes = False,
    as_json: Json = False,
    live: Live = None,
    verbose: Verbose = False,
) -> None:
    """Cancel the strategy's own working orders (its journal's; nobody else's) and halt it, so it
    sends no new ones until `ml4t-live resume`. Running: the strategy cancels them itself before
    its next bar. Not running: they are cancelled at the venue now (and the next start finds
    them cancelled). Asks for confirmation (--yes to skip)."""
    from .acting import cancel_all as act

    display = Display(verbose=verbose, quiet=True)
    try:
        o = _options(config, strategy_id=strategy_id, broker=broker, host=host, port=port, account=account,
                     state_dir=state_dir, live=live)  # fmt: skip
        configured = (o.get("venue") or {}).get("client_id", 1) if o.get("broker") else None
        act(o, lambda use: _venue(o, use), reason, _confirmation(yes), as_json, client_id, configured)
    finally:
        display.close()


@app.command()
@_guard
def flatten(
    strategy_id: StrategyIdOpt = None,
    account: Account = None,
    broker: Broker = None,
    state_dir: StateDir = None,
    config: ConfigFile = None,
    reason: Reason = None,
    yes: Yes = False,
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Close every position the strategy owns (its journal's fills; external positions are never
    touched): the strategy cancels its working orders and sends a MARKET order per position before
    its next bar, then stays HALTED until `ml4t-live resume`. A strategy that is not running does
    it when it next starts, before its first live bar. Asks for confirmation (--yes to skip).
    The same as `ml4t-live halt --flatten`, with the positions shown first."""
    from .acting import flatten as act

    display = Display(verbose=verbose, quiet=True)
    try:
        o = _options(config, strategy_id=strategy_id, broker=broker, account=account, state_dir=state_dir)
        act(o, reason, _confirmation(yes), as_json)
    finally:
        display.close()


def _confirmation(yes: bool) -> Any:
    """Asks on the terminal (or --yes); without a terminal and --yes it refuses."""

    def confirm(question: str) -> bool:
        if yes:
            return True
        import sys

        if not sys.stdin.isatty():
            raise ConfigError(f"{question} -- there is no terminal to confirm on: pass --yes")
        return typer.confirm(question, default=False)

    return confirm
