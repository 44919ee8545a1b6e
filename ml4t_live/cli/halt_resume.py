"""The operator's trading-state commands: ``halt`` and ``resume`` (a strategy's journal, from any
terminal; the running engine notices before its next bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml4t_live.errors import ConfigError

from .app import StateDir, _guard, app
from .ui import Display

_EFFECT = {
    "HALTED": " (a running strategy cancels its working orders and refuses new ones before its next bar)",
    "REDUCING": " (a running strategy sends only orders that reduce a position, from its next bar)",
    "ACTIVE": " (a running strategy trades again from its next bar)",
}


def _operator_command(state: str, strategy_id: str | None, state_dir: Path | None, broker: str | None,
                      account: str | None, reason: str | None, *, flatten: bool = False,
                      every: bool = False) -> None:  # fmt: skip
    from .operator import switch_all

    display = Display(quiet=True)
    try:
        if flatten and state == "REDUCING":
            raise ConfigError("--reducing and --flatten do not go together: --flatten halts and closes "
                              "every position; --reducing lets the strategy reduce them itself")  # fmt: skip
        switched = switch_all(dict(strategy_id=strategy_id, state_dir=state_dir, broker=broker,
                                   account=account, reason=reason, all=every), state, flatten=flatten)  # fmt: skip
        for path, before in switched:
            typer.echo(f"{path.name}: trading state {before} -> {state}" + _EFFECT[state]
                       + ("; it also closes every position it owns (MARKET orders)" if flatten else ""))  # fmt: skip
    finally:
        display.close()


# the options halt and resume share
OperatorId = Annotated[
    str, typer.Option(help="The strategy's id (as in its client order ids and its journal's name).")
]
OperatorBroker = Annotated[str | None, typer.Option(help="Narrow down to this venue's journal (ib, alpaca or "
                                                   "shadow).")]  # fmt: skip
OperatorAccount = Annotated[str | None, typer.Option(help="Narrow down to this account's journal.")]
OperatorReason = Annotated[str | None, typer.Option(help="Why (kept in the journal, shown in the refusals).")]


@app.command()
@_guard
def halt(
    strategy_id: OperatorId,
    state_dir: StateDir = None,
    broker: OperatorBroker = None,
    account: OperatorAccount = None,
    reason: OperatorReason = None,
    reducing: Annotated[bool, typer.Option("--reducing", help="REDUCING instead of HALTED: only orders "
                                           "that reduce a position leave; working orders stay.")] = False,
    flatten: Annotated[bool, typer.Option("--flatten", help="Also close every position the strategy owns "
                                          "(MARKET orders, before its next bar; external positions are "
                                          "never touched).")] = False,
) -> None:
    """Halt a strategy's trading from any terminal: it cancels its working orders and refuses new
    ones before its next bar (running or not; the state survives restarts) until resume."""
    _operator_command("REDUCING" if reducing else "HALTED", strategy_id, state_dir, broker, account, reason,
                      flatten=flatten)  # fmt: skip


@app.command()
@_guard
def resume(
    strategy_id: OperatorId,
    state_dir: StateDir = None,
    broker: OperatorBroker = None,
    account: OperatorAccount = None,
    reason: OperatorReason = None,
    every: Annotated[bool, typer.Option("--all", help="Resume every journal of the strategy found (its venue "
                                        "runs and its rehearsals); without it a resume that finds several "
                                        "lists them and changes nothing.")] = False,
) -> None:
    """Let a halted strategy trade again (from its next bar): the journal named (--broker /
    --account), or every one found with --all."""
    _operator_command("ACTIVE", strategy_id, state_dir, broker, account, reason, every=every)
