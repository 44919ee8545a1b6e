"""What operator tools read from a journal (``ml4t-live status`` / ``orders``): pure and read-only.

* :func:`holder_pid`: the pid of the process running the strategy (it holds the journal's
  ``flock``), read from ``/proc/locks`` without touching the lock (probing it by taking it would
  make a strategy that starts at that instant fail). ``None``: nobody holds it.
* :func:`last_marks`: each asset's close in the last journaled bars (the strategy's own marks).
* :func:`profit_and_loss`: realised (average cost) and unrealised P&L of the strategy's fills.
* :func:`fills_on`: the fills of one UTC date.
* :func:`risk_usage`: the ``risk_usage`` meta key the engine writes each bar (a JSON list of
  ``{"limit", "value", "usage"}``), or ``None`` when no limits are configured.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from ..quantities import EPS as _EPS
from .store import Journal

#: how many of the last journaled bars are searched for each asset's latest close
MARK_BARS = 200


def holder_pid(path: str | Path, locks: str | Path = "/proc/locks") -> int | None:
    """The pid holding the journal's lock file, or None (no holder, or no ``/proc/locks``)."""
    lock = Path(str(path) + ".lock")
    try:
        st = os.stat(lock)
        table = Path(locks).read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 00:2d:1234 0 EOF" (blocked waiters carry "->")
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major_hex, minor_hex, inode_text = fields[5].split(":")
            major, minor, inode = int(major_hex, 16), int(minor_hex, 16), int(inode_text)
        except ValueError:
            continue
        if inode == st.st_ino and (major, minor) == (os.major(st.st_dev), os.minor(st.st_dev)):
            return int(fields[4])
    return None


def last_marks(journal: Journal, assets: set[str] | None = None) -> dict[str, float]:
    """asset -> its close in the latest journaled bar that holds it (the last ``MARK_BARS``)."""
    marks: dict[str, float] = {}
    for _, _, data, _, _ in journal.iter_bars(since=max(1, journal.bars - MARK_BARS + 1)):
        for asset, row in (data or {}).items():
            price = row.get("close", row.get("price")) if isinstance(row, dict) else None
            if price is not None:
                marks[asset] = float(price)
    return {a: p for a, p in marks.items() if assets is None or a in assets}


def profit_and_loss(fills: list[dict[str, Any]], marks: dict[str, float],
                    adopted: list[tuple[str, float, float]] = ()) -> dict[str, Any]:  # fmt: skip
    """Realised P&L (average cost), unrealised P&L at ``marks``, commissions; per asset and total.
    A position without a mark has ``unrealised`` None (unknown) and is listed in ``unpriced``;
    the total is that of the marked ones.

    ``adopted``: (asset, quantity, average cost) positions the journal took over when created."""
    book: dict[str, list[float]] = {a: [q, c] for a, q, c in adopted}  # asset -> [qty, avg cost]
    realised: dict[str, float] = {}
    commission = 0.0
    for f in fills:
        asset, qty, price = f["asset"], float(f["quantity"]), float(f["price"])
        commission += float(f["commission"])
        held, cost = book.get(asset, [0.0, 0.0])
        if held * qty < 0:  # reduces (or flips) the position
            closed = min(abs(qty), abs(held)) * (1 if held > 0 else -1)
            realised[asset] = realised.get(asset, 0.0) + closed * (price - cost)
            held += qty
            cost = price if held * qty > 0 else (cost if abs(held) > _EPS else 0.0)
        else:
            total = held + qty
            cost = (held * cost + qty * price) / total if abs(total) > _EPS else 0.0
            held = total
        book[asset] = [held, cost]
    rows = []
    for asset in sorted(set(book) | set(realised)):
        held, cost = book.get(asset, [0.0, 0.0])
        mark = marks.get(asset)
        flat = abs(held) <= _EPS
        open_pnl = 0.0 if flat else None if mark is None else held * (mark - cost)  # None: unknown (no mark)
        rows.append({"asset": asset, "quantity": round(held, 9), "avg_cost": cost, "mark": mark,
                     "realised": realised.get(asset, 0.0), "unrealised": open_pnl})  # fmt: skip
    unpriced = [r["asset"] for r in rows if abs(r["quantity"]) > _EPS and r["mark"] is None]
    return {"by_asset": rows, "realised": sum(r["realised"] for r in rows),
            "unrealised": sum(r["unrealised"] or 0.0 for r in rows), "commission": commission,
            "unpriced": unpriced}  # fmt: skip


def fills_on(fills: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """The fills whose timestamp falls on ``day`` (the date part of the journaled timestamp)."""
    prefix = day.isoformat()
    return [f for f in fills if str(f["ts"]).startswith(prefix)]


def risk_usage(journal: Journal) -> list[dict[str, Any]] | None:
    """The limits the engine reported at its last bar, or None when none are configured.

    Raises ValueError when the key holds something that is not a list of limit objects."""
    text = journal.meta("risk_usage")
    if text is None:
        return None
    rows = json.loads(text)
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "limit" in r for r in rows):
        raise ValueError("risk_usage is not a list of {limit, value, usage} objects")
    return [{"limit": str(r["limit"]), "value": r.get("value"), "usage": r.get("usage")} for r in rows] or None
