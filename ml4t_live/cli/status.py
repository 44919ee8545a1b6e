"""``ml4t-live status`` / ``orders``: the venue and the strategy's journal, read-only.

Never places, changes or cancels anything, never takes the journal's lock (the strategy may be
running) and writes nothing. ``status`` shows the connection, the trading state, positions split
into the strategy's own (its journal's fills) and external ones, open orders (the strategy's and
everyone else's), the day's fills, the strategy's P&L, and the risk limits' usage when the engine
reports it. ``orders`` shows the open orders only. IB: the command connects with its own client
id (``--client-id``, default :data:`OPERATOR_CLIENT_ID`), never the running strategy's, and asks
for every client's open orders (``reqAllOpenOrders``).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from typing import Any

from loguru import logger
from ml4t.backtest import BacktestConfig

from ml4t_live.errors import ConfigError, Ml4tLiveError
from ml4t_live.journal import TERMINAL, check_strategy_id
from ml4t_live.journal.operator_access import read_only
from ml4t_live.journal.reconcile import position_differences
from ml4t_live.journal.views import (
    fills_on,
    holder_pid,
    last_marks,
    profit_and_loss,
    risk_usage,
)
from ml4t_live.protocols import AccountSnapshot
from ml4t_live.quantities import EPS as _EPS

from .operator import find_journal
from .venues import VenueOptions, entry_point

_log = logger.bind(component="cli")

#: the IB client id read-only operator commands connect with (a running strategy holds its own
#: ``[venue] client_id``, default 1, and its feed ``client_id + 1``)
OPERATOR_CLIENT_ID = 99


def read_venue(venue_opts: VenueOptions) -> tuple[AccountSnapshot, list[Any]]:
    """(account snapshot, every open order on the account) from one short connection."""
    broker = entry_point(venue_opts.venue, "make_broker")(venue_opts, BacktestConfig())
    gateway = broker.gateway
    try:
        snapshot = gateway.connect()
        every = getattr(gateway, "all_open_orders", None)
        orders = every() if every is not None else list(snapshot.open_orders)
    finally:
        gateway.close()
    return snapshot, orders


def gather(o: dict[str, Any], venue_opts: VenueOptions, day: date | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as plain values (the ``--json`` output)."""
    sid = check_strategy_id(str(o.get("strategy_id") or ""))
    path = find_journal({**o, "broker": venue_opts.venue})
    facts: dict[str, Any] = {"strategy_id": sid, "journal": str(path), "running_pid": holder_pid(path)}
    connection: dict[str, Any] = {"venue": venue_opts.venue, "connected": False, "error": None}
    snapshot, venue_orders = None, []
    try:
        snapshot, venue_orders = read_venue(venue_opts)
        connection.update(connected=True, account=snapshot.account_id, paper=snapshot.is_paper,
                          cash=snapshot.cash, equity=snapshot.equity)  # fmt: skip
    except Ml4tLiveError as exc:
        connection["error"] = str(exc)
        _log.warning("status: the venue could not be read ({}); showing the journal only", exc)
    facts["connection"] = connection
    journal = read_only(path)
    try:
        facts.update(_journal_facts(journal, snapshot, venue_orders, sid, day or datetime.now(UTC).date()))
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the journal {path}: {exc}") from None
    finally:
        journal.close()
    if snapshot is not None and facts["account"] not in (None, snapshot.account_id):
        connection["error"] = (f"the venue reports account {snapshot.account_id}, the journal belongs "
                               f"to {facts['account']}: add --account or check --port")  # fmt: skip
    return facts


def gather_shadow(o: dict[str, Any], day: date | None = None) -> dict[str, Any]:
    """``status --broker shadow``: the shadow journal alone (simulated fills, no venue)."""
    sid = check_strategy_id(str(o.get("strategy_id") or ""))
    path = find_journal({**o, "broker": "shadow"})
    facts: dict[str, Any] = {"strategy_id": sid, "journal": str(path), "running_pid": holder_pid(path),
                             "connection": {"venue": "shadow", "connected": False, "error": None}}  # fmt: skip
    journal = read_only(path)
    try:
        facts.update(_journal_facts(journal, None, [], sid, day or datetime.now(UTC).date()))
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the journal {path}: {exc}") from None
    finally:
        journal.close()
    return facts


def _journal_facts(journal: Any, snapshot: AccountSnapshot | None, venue_orders: list[Any], sid: str,
                   day: date) -> dict[str, Any]:  # fmt: skip
    ours = journal.positions()
    intents = journal.intents()
    fills = journal.fill_rows()
    adopted = [tuple(r) for r in json.loads(journal.meta("adopted_positions") or "[]")]
    pnl = profit_and_loss(fills, last_marks(journal), adopted)
    try:
        limits = risk_usage(journal)
    except ValueError as exc:
        limits = None
        _log.warning("the journal's risk_usage cannot be read ({})", exc)
    return {
        "account": journal.meta("account"),
        "trading_state": {"state": journal.meta("trading_state") or "ACTIVE",
                          "reason": journal.meta("trading_state_reason") or ""},
        "positions": _positions(ours, snapshot),
        "open_orders": open_orders(intents, venue_orders if snapshot is not None else None, sid),
        "fills_today": {"day": day.isoformat(), "fills": fills_on(fills, day)},
        "pnl": {**pnl, "starting_cash": float(journal.meta("starting_cash") or 0.0)},
        "limits": limits,
    }


def _positions(ours: dict[str, float], snapshot: AccountSnapshot | None) -> list[dict[str, Any]]:
    venue = {a: p.quantity for a, p in snapshot.positions.items()} if snapshot is not None else None
    notes = {d.subject: d for d in position_differences(ours, venue)} if venue is not None else {}
    rows = []
    for asset in sorted(set(ours) | set(venue or {})):
        mine, diff = ours.get(asset, 0.0), notes.get(asset)
        held = venue.get(asset, 0.0) if venue is not None else None
        external = held - mine if diff is not None and diff.kind == "external" else 0.0
        at_venue = snapshot.positions.get(asset) if snapshot is not None else None
        rows.append({"asset": asset, "strategy": mine, "external": external, "venue": held,
                     "avg_cost": at_venue.avg_cost if at_venue is not None else None,
                     "note": "" if diff is None else f"{diff.kind}: {diff.note}"})  # fmt: skip
    return rows


def open_orders(intents: dict[str, dict[str, Any]], venue_orders: list[Any] | None, sid: str) -> list[dict[str, Any]]:
    """Open orders at the venue (owner: strategy / external) and the journal's open intents the
    venue does not show (``venue_orders`` None: the venue was not read)."""
    rows, at_venue = [], set()
    for vo in venue_orders or []:
        cid = vo.client_order_id
        at_venue.add(cid)
        owner = ("strategy" if cid in intents else
                 "strategy? (not in its journal)" if cid.startswith(f"{sid}-") else "external")  # fmt: skip
        rows.append({"client_order_id": cid or "-", "venue_order_id": vo.venue_order_id, "owner": owner,
                     "asset": vo.asset, "side": vo.side.value, "quantity": vo.quantity,
                     "filled": vo.filled_quantity, "type": vo.order_type.value,
                     "limit": vo.limit_price, "stop": vo.stop_price, "status": vo.status})  # fmt: skip
    for cid, intent in intents.items():
        if intent["status"] in TERMINAL or cid in at_venue:
            continue
        where = "venue not read" if venue_orders is None else "not open at the venue"
        rows.append({"client_order_id": cid, "venue_order_id": intent["venue_id"] or "-", "owner": "strategy",
                     "asset": intent["asset"], "side": intent["side"], "quantity": intent["quantity"],
                     "filled": intent["filled"], "type": intent["order_type"], "limit": None, "stop": None,
                     "status": f"journal: {intent['status']} ({where})"})  # fmt: skip
    return rows


def parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--day must be a date YYYY-MM-DD, got {text!r}") from None


# ------------------------------------------------------------------------------------ rendering
def _console(out: Any) -> Any:
    from rich.console import Console

    return Console(file=out, width=140, force_terminal=False, highlight=False)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:g}" if abs(value - round(value)) <= _EPS else f"{value:,.2f}"


def _table(title: str, columns: list[str], rows: list[dict[str, Any]], keys: list[str] | None = None) -> Any:
    from rich.table import Table

    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(_num(row.get(k)) for k in (keys or columns)))
    return table


ORDER_COLUMNS = ["client_order_id", "owner", "asset", "side", "quantity", "filled", "type", "limit", "stop", "status"]


def render_orders(rows: list[dict[str, Any]], as_json: bool) -> str:
    if as_json:
        return json.dumps({"open_orders": rows}, indent=2, default=str) + "\n"
    from io import StringIO

    out = StringIO()
    console = _console(out)
    if rows:
        console.print(_table("open orders", ORDER_COLUMNS, rows))
    else:
        console.print("no open orders")
    return out.getvalue()


def render_status(facts: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(facts, indent=2, default=str) + "\n"
    from io import StringIO

    out = StringIO()
    console = _console(out)
    c, ts = facts["connection"], facts["trading_state"]
    running = f"running (pid {facts['running_pid']})" if facts["running_pid"] else "not running"
    console.print(f"strategy {facts['strategy_id']} on {c['venue']} account {facts['account']}: {running}; "
                  f"journal {facts['journal']}")  # fmt: skip
    if c["venue"] == "shadow":
        console.print("connection: none (shadow mode: simulated fills; the journal holds everything)")
    elif c["connected"]:
        console.print(f"connection: connected ({'paper' if c['paper'] else 'LIVE'}); account cash "
                      f"{c['cash']:,.2f}, equity {c['equity']:,.2f}" + (f"; {c['error']}" if c["error"] else ""))  # fmt: skip
    else:
        console.print(f"connection: NOT connected ({c['error']}); venue columns unknown")
    console.print(f"trading state: {ts['state']}" + (f" ({ts['reason']})" if ts["reason"] else ""))
    console.print(_table("positions", ["asset", "strategy", "external", "venue", "avg cost", "note"],
                         facts["positions"], ["asset", "strategy", "external", "venue", "avg_cost", "note"]))  # fmt: skip
    console.print(_table("open orders", ORDER_COLUMNS, facts["open_orders"]))
    fills = facts["fills_today"]
    console.print(_table(f"fills on {fills['day']}", ["ts", "client order id", "asset", "quantity", "price",
                         "commission"], fills["fills"], ["ts", "cid", "asset", "quantity", "price", "commission"]))  # fmt: skip
    pnl = facts["pnl"]
    console.print(_table("P&L (the strategy's fills; marks: last journaled close)",
                         ["asset", "quantity", "avg cost", "mark", "realised", "unrealised"], pnl["by_asset"],
                         ["asset", "quantity", "avg_cost", "mark", "realised", "unrealised"]))  # fmt: skip
    console.print(f"P&L: realised {pnl['realised']:,.2f}, unrealised {pnl['unrealised']:,.2f}"
                  + (" (of the marked positions only)" if pnl["unpriced"] else "")
                  + f", commissions {pnl['commission']:,.2f}"
                  + (f"; no mark for {', '.join(pnl['unpriced'])}" if pnl["unpriced"] else ""))  # fmt: skip
    if facts["limits"]:
        console.print(_table("limits", ["limit", "value", "usage"], facts["limits"]))
    else:
        console.print("limits: no limits configured")
    return out.getvalue()
