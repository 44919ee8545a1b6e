"""``ml4t-live reconcile``: the strategy's journal against the venue, read-only.

Connects to the venue (never places, changes or cancels anything), reads the account, opens the
strategy's journal read-only (never takes its lock: the strategy may be running) and lists every
difference: positions the journal does not explain (external) or that the venue lacks (missing),
open orders in one and not the other, executions the venue reports that the journal lacks.
An execution the runtime received and ignored because the runtime's made-up fill of its order
(:func:`~ml4t_live.book.made_up_fill_id`) covered it is not lacking: it is in the journal's
events, not its fills, and is listed as such (``ignored_executions``), not as a difference.
Exit 0 when consistent, 3 when not.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ml4t.backtest import BacktestConfig

from ml4t_live.book import made_up_fill_id
from ml4t_live.errors import ConfigError, ReconciliationError
from ml4t_live.journal import check_strategy_id, default_strategy_id, journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.journal.reconcile import (
    Difference,
    order_differences,
    position_differences,
)
from ml4t_live.journal.store import TERMINAL

from . import options as opt
from .venues import VenueOptions, entry_point


def strategy_id_for(o: dict[str, Any]) -> str:
    if o.get("strategy_id"):
        return check_strategy_id(str(o["strategy_id"]))
    if not o.get("strategy"):
        raise ConfigError("name the strategy: --strategy-id ID, or the strategy (file.py:Class) "
                          "and its -p parameters, as given to ml4t-live run")  # fmt: skip
    cls = opt.load_strategy_class(o["strategy"])
    return default_strategy_id(opt.build_strategy(cls, o.get("params") or {}))


def reconcile(o: dict[str, Any], venue_opts: VenueOptions) -> tuple[list[Difference], dict[str, Any]]:
    sid = strategy_id_for(o)
    broker = entry_point(venue_opts.venue, "make_broker")(venue_opts, BacktestConfig())
    gateway = broker.gateway
    try:
        snapshot = gateway.connect()
    finally:
        gateway.close()
    path = journal_path(o.get("state_dir"), venue_opts.venue, snapshot.account_id, sid)
    if not path.is_file():
        raise ConfigError(f"no journal for strategy {sid} on {venue_opts.venue} account "
                          f"{snapshot.account_id} (looked for {path}); check --strategy-id / --state-dir")  # fmt: skip
    journal = read_only(path)
    try:
        ours, intents, exec_ids = journal.positions(), journal.intents(), journal.exec_ids()
        unfilled = [ex for ex in snapshot.executions if ex.client_order_id in intents and ex.exec_id not in exec_ids]
        ignored = _ignored_executions(journal, unfilled, exec_ids) if unfilled else {}
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the journal {path}: {exc}") from None
    finally:
        journal.close()
    venue_positions = {a: p.quantity for a, p in snapshot.positions.items()}
    differences = position_differences(ours, venue_positions)
    open_intents = {c: i for c, i in intents.items() if i["status"] not in TERMINAL}
    venue_open = {o.client_order_id: o for o in snapshot.open_orders}
    prefix = f"{sid}-"
    ended = {c: i for c, i in intents.items() if i["status"] in TERMINAL}
    differences += order_differences(open_intents, venue_open, lambda cid: cid.startswith(prefix), ended)
    notes = []
    for ex in unfilled:
        what = f"{ex.side.value} {ex.quantity:g} {ex.asset} @ {ex.price:g}"
        if ex.exec_id in ignored:
            notes.append({"exec_id": ex.exec_id, "client_order_id": ex.client_order_id, "venue": what,
                          "note": f"received and ignored: the made-up fill {ignored[ex.exec_id]} covered it"})  # fmt: skip
        else:
            differences.append(Difference("fill-missing", ex.client_order_id, "-", what,
                                          f"execution {ex.exec_id} is not in the journal"))  # fmt: skip
    facts = {"strategy_id": sid, "account": snapshot.account_id, "journal": str(path),
             "positions": {"journal": ours, "venue": venue_positions},
             "open_orders": {"journal": sorted(open_intents), "venue": sorted(venue_open)},
             "ignored_executions": notes}  # fmt: skip
    return differences, facts


def _ignored_executions(journal: Any, unfilled: list[Any], exec_ids: set[str]) -> dict[str, str]:
    """exec id -> the made-up fill's id, for each of ``unfilled`` (executions the venue reports
    that the journal's fills lack) that the runtime received (a journaled event) and ignored
    because its order has the runtime's made-up fill."""
    wanted = {ex.exec_id: ex.client_order_id for ex in unfilled if made_up_fill_id(ex.client_order_id) in exec_ids}
    return {event.exec_id: made_up_fill_id(event.client_order_id)
            for event in journal.fill_events(set(wanted.values())) if event.exec_id in wanted}  # fmt: skip


def render(differences: list[Difference], facts: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps({**facts, "consistent": not differences,
                           "differences": [d.row() for d in differences]}, indent=2, default=str)  # fmt: skip
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    out = StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    console.print(f"strategy {facts['strategy_id']} on account {facts['account']} "
                  f"(journal {facts['journal']})")  # fmt: skip
    for n in facts.get("ignored_executions", []):
        console.print(f"execution {n['exec_id']} of {n['client_order_id']} ({n['venue']}): {n['note']}")
    if not differences:
        console.print("consistent: the venue matches the journal (positions, open orders, executions)")
        return out.getvalue()
    table = Table("kind", "subject", "journal", "venue", "note")
    for d in differences:
        table.add_row(d.kind, d.subject, d.journal, d.venue, d.note)
    console.print(table)
    return out.getvalue()


def check(differences: list[Difference]) -> None:
    if differences:
        raise ReconciliationError(f"{len(differences)} difference(s) between the journal and the venue")
