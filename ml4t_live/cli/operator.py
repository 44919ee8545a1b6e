"""``ml4t-live halt [--reducing] [--flatten]`` / ``resume``: the operator's switch, from any
terminal or process.

They find the strategy's journals in the state directory (by strategy id: every one, its venue
runs and its shadow rehearsals, unless ``--broker`` / ``--account`` narrow it down) and write
only their trading state. A halt acts on every journal found (the kill switch never stops at
"which one?"); a resume lifts a halt only where the operator names it: when several journals
are found it needs ``--all`` (a halt a reconciliation or a limit set on the venue run is not
lifted by a resume meant for a rehearsal). A running strategy re-reads the state before each
bar: HALTED cancels its working orders and refuses new ones (REJECTED, with the reason);
REDUCING lets only orders that reduce a position leave; ``--flatten`` also has it close every
position it owns; ACTIVE trades again. The state survives restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml4t_live.errors import ConfigError
from ml4t_live.journal import check_strategy_id, resume_command, state_dir
from ml4t_live.journal.identity import journal_part
from ml4t_live.journal.operator_access import read_only, set_trading_state


def find_journals(o: dict[str, Any]) -> list[Path]:
    """Every journal of the strategy id in the state directory (``--broker`` / ``--account``
    narrow it down); a ConfigError when there is none."""
    sid = check_strategy_id(str(o.get("strategy_id") or ""))
    folder = state_dir(o.get("state_dir"))
    venue, account = o.get("broker"), o.get("account")
    found = [p for p in sorted(folder.glob(f"*-{sid}.journal"))
             if (not venue or p.name.startswith(f"{journal_part(venue)}-"))
             and (not account or f"-{journal_part(account)}-" in p.name)]  # fmt: skip
    if not found:
        raise ConfigError(f"no journal for strategy {sid} in {folder}"
                          + (f" (venue {venue})" if venue else "") + (f" (account {account})" if account else "")
                          + "; check --strategy-id / --state-dir")  # fmt: skip
    return found


def find_journal(o: dict[str, Any]) -> Path:
    found = find_journals(o)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError(f"strategy {o.get('strategy_id')} has several journals ({names}): add --broker and/or "
                          "--account")  # fmt: skip
    return found[0]


_DEFAULT_REASON = {"HALTED": "halted by the operator", "REDUCING": "set to REDUCING by the operator",
                   "ACTIVE": "resumed by the operator"}  # fmt: skip


def switch(o: dict[str, Any], state: str, *, flatten: bool = False, cancel_all: bool = False) -> tuple[Path, str]:
    path = find_journal(o)
    before = set_trading_state(path, state, str(o.get("reason") or _DEFAULT_REASON[state]), flatten=flatten,
                               cancel_all=cancel_all)  # fmt: skip
    return path, before


def switch_all(o: dict[str, Any], state: str, *, flatten: bool = False) -> list[tuple[Path, str]]:
    """``halt``: every journal of the strategy (its venue runs and its shadow rehearsals alike,
    unless ``--broker`` / ``--account`` narrow it), so the kill switch never stops at "which
    one?". ``resume``: the one journal named, or every one found with ``o["all"]``; several
    found without it is a ConfigError that lists them with their states (nothing changed)."""
    reason = str(o.get("reason") or _DEFAULT_REASON[state])
    found = find_journals(o)
    if state == "ACTIVE" and len(found) > 1 and not o.get("all"):
        listed = "\n".join(f"  {path.name}: {_state_of(path)}\n    {resume_command(path)}" for path in found)
        raise ConfigError(f"strategy {o.get('strategy_id')} has {len(found)} journals; nothing was resumed. A "
                          f"resume lifts a halt only where you name it: resume one of them\n{listed}\nor every "
                          "one with --all")  # fmt: skip
    return [(path, set_trading_state(path, state, reason, flatten=flatten)) for path in found]


def _state_of(path: Path) -> str:
    """A journal's trading state and its reason, for the operator to choose by."""
    try:
        journal = read_only(path)
    except ConfigError as exc:
        return f"unreadable ({exc})"
    try:
        state, why = journal.meta("trading_state") or "ACTIVE", journal.meta("trading_state_reason", "")
    finally:
        journal.close()
    return f"{state} ({why})" if why and state != "ACTIVE" else state


def restart_notice(state_dir_arg: Any, venue: str, strategy_id: str) -> str | None:
    """Before a venue run connects: a line saying its journal is HALTED / REDUCING (a restart
    starts in the state it was left in), or None."""
    for path in sorted(state_dir(state_dir_arg).glob(f"{venue}-*-{strategy_id}.journal")):
        try:
            journal = read_only(path)
        except ConfigError:
            continue
        try:
            state, why = journal.meta("trading_state") or "ACTIVE", journal.meta("trading_state_reason", "")
        finally:
            journal.close()
        if state != "ACTIVE":
            return (f"strategy {strategy_id} is {state} ({why or 'no reason given'}) in {path.name}: "
                    + ("its orders are refused" if state == "HALTED" else "only orders that reduce a position leave")
                    + f" until `{resume_command(path)}`")
    return None
