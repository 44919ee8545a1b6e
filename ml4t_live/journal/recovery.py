"""A killed run's session files, completed from the journal at the next start.

Session files are spilled at most once a minute; the journal holds every intent, fill and bar
the moment it happened. The journal remembers the session folder of the run that has it open
(``meta open_session``, and its first bar); a run that ends in any orderly way (or fails)
clears it. When the next run finds it still set, the process was killed: that folder's bars,
orders and fills are rewritten from the journal (everything it held), and its ``summary.json``
says so (``recovered_from_journal``).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger
from ml4t.backtest import Fill, Order, OrderSide, OrderStatus

from .store import Journal

_log = logger.bind(component="journal")

_TABLES = ("bars", "signals", "context", "orders", "fills")
_STATUS = {"filled": OrderStatus.FILLED, "cancelled": OrderStatus.CANCELLED,
           "rejected": OrderStatus.REJECTED, "lost": OrderStatus.REJECTED}  # fmt: skip


def session_opened(journal: Journal, folder: Path | None) -> Path | None:
    """This run writes ``folder``; returns the killed run's folder recovered first, if any."""
    recovered = None
    previous = journal.meta("open_session")
    if previous:
        recovered = Path(previous)
        if recovered.is_dir():
            recover(journal, recovered, int(journal.meta("open_session_first_bar") or 1))
        else:
            _log.warning("the run that had this journal open was killed; its session folder {} "
                         "is gone, nothing to recover", recovered)  # fmt: skip
            recovered = None
    journal.set_meta("open_session", str(folder) if folder is not None else "")
    journal.set_meta("open_session_first_bar", journal.bars + 1)
    return recovered


def session_closed(journal: Journal) -> None:
    journal.set_meta("open_session", "")


def recover(journal: Journal, folder: Path, first_bar: int) -> dict[str, int]:
    """Rewrite ``folder``'s bars, orders and fills from the journal (bars from ``first_bar``)."""
    from ..session import PARTS_DIR, SessionWriter

    parts = folder / PARTS_DIR
    for table in _TABLES:  # a subset of what the journal holds: replaced, not merged
        (folder / f"{table}.parquet").unlink(missing_ok=True)
        for part in parts.glob(f"{table}-*") if parts.is_dir() else ():
            part.unlink()
    writer = SessionWriter.at(folder)
    counts = {"bars": 0, "orders": 0, "fills": 0}
    for _n, timestamp, data, context, _catch_up in journal.iter_bars(first_bar):
        writer.add_bar(timestamp, data, context)
        counts["bars"] += 1
    orders = [_order(row, request) for row, request in journal.intent_requests(first_bar)]
    writer.add_orders(orders)
    counts["orders"] = len(orders)
    cids = {o.order_id: o for o in orders}
    fills = [_fill(row, cids.get(row["cid"])) for row in journal.fill_rows(first_bar)]
    writer.add_fills(fills)
    counts["fills"] = len(fills)
    summary = folder / "summary.json"
    if not summary.exists():
        writer.write_summary({"failed": True, "error": "the process was killed",
                              "recovered_from_journal": True, "journal": str(journal.path), **counts})  # fmt: skip
    else:
        _note_recovered(summary, journal, counts)
    writer.close()
    if parts.is_dir() and not any(parts.iterdir()):
        shutil.rmtree(parts, ignore_errors=True)
    _log.warning("the last run was killed: its session folder {} was completed from the journal "
                 "({} bars, {} orders, {} fills)", folder, counts["bars"], counts["orders"], counts["fills"])  # fmt: skip
    return counts


def _note_recovered(summary: Path, journal: Journal, counts: dict[str, int]) -> None:
    import json

    data: dict[str, Any] = json.loads(summary.read_text())
    data.update({"recovered_from_journal": True, "journal": str(journal.path), **counts})
    summary.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _order(row: dict[str, Any], request: dict[str, Any]) -> Order:
    from ..order_entry import order_from_request

    order = order_from_request(row["cid"], request)
    order.status = _STATUS.get(row["status"], OrderStatus.PENDING)
    order.filled_quantity = row["filled"] or 0.0
    if order.status is OrderStatus.REJECTED:
        order.rejection_reason = row["reason"]
    return order


def _fill(row: dict[str, Any], order: Order | None) -> Fill:
    quantity = row["quantity"]
    return Fill(
        order_id=row["cid"], asset=row["asset"],
        side=OrderSide.BUY if quantity > 0 else OrderSide.SELL, quantity=abs(quantity),
        price=row["price"], timestamp=_when(row["ts"]), commission=row["commission"],
        order_type=order.order_type.value if order is not None else "", price_source="venue",
    )  # fmt: skip


def _when(text: str) -> Any:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
