"""``ml4t-live cancel-all`` / ``flatten``: act on what the strategy owns, never on anything else.

What the strategy owns is its journal's: the positions its own fills add up to, the orders it
journaled. External positions and other clients' orders are never touched.

The journal has one writer, the strategy's runtime, so these commands ask *it* to act, through
the journal's trading state (as ``ml4t-live halt`` does): the strategy is HALTED (no new
orders until ``ml4t-live resume``) and, before its next bar, cancels its working orders;
``flatten`` also has it close every position it owns with MARKET orders. A strategy that is not
running does this when it next starts, before its first live bar; ``cancel-all`` then also
cancels its working orders at the venue at once (holding the journal's lock meanwhile, so the
strategy cannot start half-way); the next start finds them cancelled "while away", or filled
before the cancel took effect (``filled N at the venue before its cancel took effect``: the
next start takes the fill).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from loguru import logger
from ml4t.backtest import BacktestConfig

from ml4t_live.errors import (
    BridgeError,
    CancelRefused,
    ConfigError,
    JournalLocked,
    LookupIncomplete,
    VenueError,
)
from ml4t_live.journal import TERMINAL, Journal, check_strategy_id, resume_command
from ml4t_live.journal.operator_access import read_only
from ml4t_live.journal.views import holder_pid
from ml4t_live.placing_client import META_KEY as PLACING_KEY
from ml4t_live.runtime_cancels import cancel_each
from ml4t_live.venues.ib.config import whole_number

from .operator import find_journal, switch
from .status import _console, _table
from .venues import VenueOptions, entry_point

_log = logger.bind(component="cli")

#: an order no longer listed working after its cancel, whose end the venue did not say
NOT_READ = "no longer listed; its end could not be read: check the venue"
#: an order IB shows by its executions alone ("unknown"): not working under this client id
NOT_WORKING_HERE = "not listed working to this client id; the venue shows only its executions"
#: the outcome prefixes of an order that may still work at the venue after ``cancel-all``
UNSETTLED = ("cancel sent, not confirmed", "cancel failed", "cancel refused", "working at the venue under another",
             NOT_READ, NOT_WORKING_HERE)  # fmt: skip


def _owned(path: Path) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, dict[str, Any]], str | None]:
    """The strategy's positions, its working orders (journal intent open), its orders the journal
    takes for lost (ended for the journal, but the venue may work one that surfaced: filled,
    cancelled and rejected ones the venue itself reported ended) by client order id, and the
    venue API client id its orders were placed under (IB; None when not recorded)."""
    journal = read_only(path)
    try:
        positions, intents = journal.positions(), journal.intents()
        placing = journal.meta(PLACING_KEY)
    finally:
        journal.close()
    working = [i for i in intents.values() if i["status"] not in TERMINAL]
    lost = {cid: i for cid, i in intents.items() if i["status"] == "lost"}
    return positions, working, lost, placing


def _row(intent: dict[str, Any]) -> dict[str, Any]:
    return {"client_order_id": intent["cid"], "asset": intent["asset"], "side": intent["side"],
            "quantity": intent["quantity"], "filled": intent["filled"], "status": intent["status"]}  # fmt: skip


def cancel_all(o: dict[str, Any], venue: Callable[[int | None], VenueOptions], reason: str | None,
               confirm: Callable[[str], bool], as_json: bool, client_id: int | None = None,
               configured: Any = None) -> None:  # fmt: skip
    """``client_id``: the one the operator named (--client-id); else the one the journal's orders
    were placed under, else ``configured`` (the session file's ``[venue] client_id``, default 1;
    read only when it is the one used: a bad value stops no cancel that does not need it)."""
    sid = check_strategy_id(str(o.get("strategy_id")))
    path = find_journal(o)
    _, working, lost, placing = _owned(path)
    use, note = _client_id(client_id, placing, configured)
    if note:
        _log.warning("{}", note)
        if not as_json:
            typer.echo(note)
    rows = [_row(i) for i in working]
    if not as_json:
        _show(f"strategy {sid}: {len(rows)} working order(s) of its own", rows,
              ["client_order_id", "asset", "side", "quantity", "filled", "status"])  # fmt: skip
    if not confirm(f"Cancel the {len(rows)} working order(s) of {sid} and halt it?"):
        typer.echo("not confirmed: nothing changed")
        return
    lock = _lock(path)
    try:
        _, before = switch({**o, "reason": reason or "cancel-all by the operator"}, "HALTED", cancel_all=True)
        outcome = {}
        if lock is not None and (rows or lost) and o.get("broker"):
            if use is None and o.get("broker") == "ib":  # (Alpaca has no client ids)
                raise ConfigError(f"{sid} is HALTED (it sends nothing new), but its orders were not cancelled at "
                                  f"the venue: [venue] client_id must be an integer, got {configured!r}; correct "
                                  "it, or name the client id to cancel as with --client-id N, and run cancel-all "
                                  "again")  # fmt: skip
            outcome = cancel_at_venue(venue(use), sid, [r["client_order_id"] for r in rows], set(lost))
            rows += [_row(lost[cid]) for cid in outcome if cid in lost]  # lost in the journal, working
    finally:
        if lock is not None:
            lock.close()
    for row in rows:
        row["outcome"] = outcome.get(row["client_order_id"]) or (
            "the running strategy cancels it before its next bar" if lock is None else
            "cancelled when the strategy next starts (no --broker given)")  # fmt: skip
    report = {"strategy_id": sid, "journal": str(path), "running": lock is None, "trading_state":
              {"before": before, "now": "HALTED"}, "orders": rows, "venue_client_id": use,
              "client_id_note": note}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        typer.echo(f"{path.name}: trading state {before} -> HALTED (no new orders until `{resume_command(path)}`)")
        for row in rows:
            typer.echo(f"  {row['client_order_id']}: {row['outcome']}")
    unsettled = [r["client_order_id"] for r in rows if r["outcome"].startswith(UNSETTLED)]
    if unsettled:  # exit 3: an operator's script must not take "cancel-all" for done
        raise VenueError(f"{len(unsettled)} order(s) of {sid} may still work at the venue: {', '.join(unsettled)}")


def _client_id(named: int | None, placing: str | None, configured: Any) -> tuple[int | None, str]:
    """The venue API client id to cancel as (None: only a bad ``configured`` value names it),
    and a note when it is not the one the journal's orders were placed under (IB lets only that
    client id cancel them)."""
    recorded = int(placing) if placing is not None else None
    if named is not None:
        if recorded is not None and named != recorded:
            return named, (f"the journal's orders were placed under client id {recorded}, this command "
                           f"connects as client id {named} (--client-id): the venue lets only client id "
                           f"{recorded} cancel them (--client-id {recorded})")  # fmt: skip
        return named, ""
    number = whole_number(configured) if configured is not None else None
    if configured is not None and number is None:
        if recorded is None:
            return None, ""
        return recorded, (f"the configuration's [venue] client_id {configured!r} is not an integer: "
                          f"cancelling as client id {recorded}, the one the journal's orders were placed "
                          "under")  # fmt: skip
    configured = number
    if recorded is None:
        return configured, ""
    if configured is not None and configured != recorded:
        return recorded, (f"the journal's orders were placed under client id {recorded}, the "
                          f"configuration says {configured}: cancelling as client id {recorded}")  # fmt: skip
    return recorded, ""


def flatten(o: dict[str, Any], reason: str | None, confirm: Callable[[str], bool], as_json: bool) -> None:
    sid = check_strategy_id(str(o.get("strategy_id")))
    path = find_journal(o)
    positions, working, _, _ = _owned(path)
    rows = [{"asset": a, "quantity": q, "closing_order": f"{'sell' if q > 0 else 'buy'} {abs(q):g} MARKET"}
            for a, q in sorted(positions.items())]  # fmt: skip
    if not as_json:
        _show(f"strategy {sid}: positions of its own (external ones are never touched)", rows,
              ["asset", "quantity", "closing_order"])  # fmt: skip
    if not confirm(f"Close the {len(rows)} position(s) of {sid}, cancel its {len(working)} working "
                   "order(s) and halt it?"):  # fmt: skip
        typer.echo("not confirmed: nothing changed")
        return
    running = holder_pid(path)
    _, before = switch({**o, "reason": reason or "flatten by the operator"}, "HALTED", flatten=True)
    when = ("before its next bar" if running else
            "when it next starts, before its first live bar (it is not running now)")  # fmt: skip
    report = {"strategy_id": sid, "journal": str(path), "running_pid": running,
              "trading_state": {"before": before, "now": "HALTED"}, "flatten_requested": True,
              "positions": rows, "working_orders": len(working), "when": when}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    typer.echo(f"{path.name}: trading state {before} -> HALTED, flatten requested: the strategy cancels "
               f"its working orders and closes these positions {when}; it stays HALTED until "
               f"`{resume_command(path)}`")  # fmt: skip


def _lock(path: Path) -> Journal | None:
    """The journal, locked (the strategy is not running and cannot start meanwhile), or None
    when a running strategy holds it."""
    try:
        return Journal.open(path)
    except JournalLocked:
        return None


def cancel_at_venue(venue_opts: VenueOptions, sid: str, cids: list[str],
                    ended: set[str] | None = None) -> dict[str, str]:  # fmt: skip
    """Cancel these journaled orders at the venue (the strategy is not running), and those of
    ``ended`` (journaled as lost) the venue still works: a lost order that surfaced; what
    happened to each. The cancels go out together where the venue's gateway can (IB's
    ``cancel_many``), and one read of the venue's open orders afterwards says which are still
    working: a cancel the venue took but never confirmed is not reported as done. Those it no
    longer lists are looked up by client order id (one ``lookup``): the venue's word says how
    each ended (cancelled, filled N: a fill that won the race with the cancel, rejected); not
    found, or the look-up failing, is not read as cancelled (``NOT_READ``)."""
    broker = entry_point(venue_opts.venue, "make_broker")(venue_opts, BacktestConfig())
    broker.ids.start(sid, "operator")  # the gateway recognises the strategy's orders by their ids
    gateway = broker.gateway
    out: dict[str, str] = {}
    try:
        snapshot = gateway.connect()
        working = {vo.client_order_id for vo in snapshot.open_orders}
        elsewhere = _other_clients(gateway, working, cids)
        surfaced = sorted(working & (ended or set()))
        for cid in surfaced:
            _log.warning("order {}: the journal takes it for ended, the venue works it: cancelling it", cid)
        sending = []
        for cid in [*cids, *surfaced]:
            if cid in elsewhere:
                out[cid] = ("working at the venue under another API client id, which alone may cancel it: "
                            "give the strategy's [venue] client_id (--client-id, or its --config)")  # fmt: skip
            elif cid not in working:
                out[cid] = "not working at the venue (the next start settles it)"
            else:
                sending.append(cid)
        answers = cancel_each(gateway, sending)
        asked = [c for c in sending if answers[c] is None or isinstance(answers[c], CancelRefused)]
        still = _still_working(gateway, asked) if asked else set()
        ends = _ends(gateway, [c for c in asked if still is not None and c not in still])
        for cid in sending:
            exc = answers[cid]
            if isinstance(exc, CancelRefused) and (still is None or cid in still):
                out[cid] = f"cancel refused ({exc}) and the order may still work at the venue: cancel it there"
            elif exc is not None and not isinstance(exc, CancelRefused):
                out[cid] = f"cancel failed ({exc}); it may still work at the venue"
            elif still is None or cid in still:
                seen = "its open orders could not be read" if still is None else "the venue still lists it working"
                out[cid] = (f"cancel sent, not confirmed: {seen}; run cancel-all again or cancel it at the "
                            "venue")  # fmt: skip
            else:
                out[cid] = _ended(ends.get(cid), exc, cid in surfaced)
    finally:
        gateway.close()
    return out


def _ends(gateway: Any, cids: list[str]) -> dict[str, Any]:
    """Where the venue says these orders (no longer listed working after their cancel) ended,
    by client order id (the gateway's ``lookup``); absent: not found, or not read (the look-up
    failed, for all of them or, ``LookupIncomplete``, for some: the others' answers are kept)."""
    if not cids:
        return {}
    try:
        return gateway.lookup(cids)
    except LookupIncomplete as exc:
        _log.warning("could not read {} of {} order(s) no longer listed after their cancel: {} ({})",
                     len(exc.unread), len(cids), ", ".join(exc.unread), exc)  # fmt: skip
        return exc.found
    except (VenueError, BridgeError) as exc:
        _log.warning("could not look up {} order(s) no longer listed after their cancel: {}", len(cids), exc)
        return {}


def _ended(found: Any, refused: Exception | None, surfaced: bool) -> str:
    """The outcome of an order the venue no longer lists after its cancel (``refused``: the
    venue's refusal of it, if any): what the venue says of it by client order id, nothing
    read as cancelled without the venue saying so."""
    why = f" (the venue refused the cancel: {refused})" if refused is not None else ""
    if found is None:
        return f"{NOT_READ}{why}"
    done = f" after filling {found.filled_quantity:g}" if found.filled_quantity > 0 else ""
    if found.status == "cancelled":
        return f"cancelled at the venue{done}" + (
            " (the journal takes it for ended, the venue worked it)" if surfaced else "")  # fmt: skip
    if found.status == "filled":
        return (f"filled {found.filled_quantity:g} at the venue before its cancel took effect{why}: the "
                "strategy's next start takes the fill")  # fmt: skip
    if found.status == "rejected":
        return f"rejected at the venue{done}"
    if found.status == "unknown":  # IB shows it by its executions alone: not working under this client id
        return (f"{NOT_WORKING_HERE} ({found.filled_quantity:g} filled): how it ended is unknown; it may still work "
                f"under another client id{why}: cancel it there (cancel-all with that client id) or check the "
                "venue")  # fmt: skip
    return (f"cancel sent, not confirmed: the venue works it (found by client order id){why}; run cancel-all "
            "again or cancel it at the venue")  # fmt: skip


#: how long cancel-all reads the venue again while it still lists an order it asked to cancel
#: (Alpaca answers a DELETE 204 and carries it out a moment later: ``pending_cancel`` meanwhile)
CONFIRM_WAIT = 3.0


def _still_working(gateway: Any, asked: list[str]) -> set[str] | None:
    """Which of ``asked`` the venue still lists working (None: its open orders could not be
    read), read again every half second while some are and ``CONFIRM_WAIT`` s have not passed."""
    deadline = time.monotonic() + CONFIRM_WAIT
    while True:
        try:
            still = {vo.client_order_id for vo in gateway.snapshot().open_orders} & set(asked)
        except (VenueError, BridgeError):
            return None
        if not still or time.monotonic() >= deadline:
            return still
        time.sleep(0.5)  # (polling the venue's state, bounded: nothing else says when it carried it out)


def _other_clients(gateway: Any, working: set[str], cids: list[str]) -> set[str]:
    """IB: the orders among ``cids`` another API client placed (only that client may cancel)."""
    every = getattr(gateway, "all_open_orders", None)
    if every is None or not set(cids) - working:
        return set()
    return {vo.client_order_id for vo in every()} - working


def _show(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    from io import StringIO

    out = StringIO()
    console = _console(out)
    console.print(_table(title, columns, rows) if rows else f"{title}: none")
    typer.echo(out.getvalue(), nl=False)
