"""``ml4t-live halt [--reducing] [--flatten]`` / ``resume``: the operator's switch, from any
terminal or process.

They find the strategy's journals in the state directory (by strategy id: every one, its venue
runs and its shadow rehearsals, unless ``--broker`` / ``--account`` narrow it down) and write
only their trading state. A running strategy re-reads it before each bar: HALTED cancels its working orders and
refuses new ones (REJECTED, with the reason); REDUCING lets only orders that reduce a position
leave; ``--flatten`` also has it close every position it owns; ACTIVE trades again. The state
survives restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml4t_live.errors import ConfigError
from ml4t_live.journal import check_strategy_id, state_dir
from ml4t_live.journal.store import set_trading_state


def find_journals(o: dict[str, Any]) -> list[Path]:
    """Every journal of the strategy id in the state directory (``--broker`` / ``--account``
    narrow it down); a ConfigError when there is none."""
    sid = check_strategy_id(str(o.get("strategy_id") or ""))
    folder = state_dir(o.get("state_dir"))
    venue, account = o.get("broker"), o.get("account")
    found = [p for p in sorted(folder.glob(f"*-{sid}.journal"))
             if (not venue or p.name.startswith(f"{venue}-"))
             and (not account or f"-{account}-" in p.name)]  # fmt: skip
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
    """``halt`` / ``resume``: every journal of the strategy (its venue runs and its shadow
    rehearsals alike, unless ``--broker`` / ``--account`` narrow it), so the kill switch never
    stops at "which one?"."""
    reason = str(o.get("reason") or _DEFAULT_REASON[state])
    return [(path, set_trading_state(path, state, reason, flatten=flatten)) for path in find_journals(o)]


def restart_notice(state_dir_arg: Any, venue: str, strategy_id: str) -> str | None:
    """Before a venue run connects: a line saying its journal is HALTED / REDUCING (a restart
    starts in the state it was left in), or None."""
    from ml4t_live.journal.store import read_only

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
                    + f" until `ml4t-live resume --strategy-id {strategy_id}`")
    return None
