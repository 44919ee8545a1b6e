"""The journal's reads: what a warm restart and the operator tools query from its tables (bars,
events, commands, intents, fills), as :class:`JournalReads`, a mixin of
:class:`~.store.Journal` (which opens, locks and writes the file)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from ..events import OrderFilled, OrderPartiallyFilled
from .codec import unpack, unpack_bar

#: the ``kind`` of the events table's executions (SQL, for :meth:`JournalReads.fill_events`)
_EXECUTION_KINDS = ", ".join(f"'{kind.__name__}'" for kind in (OrderFilled, OrderPartiallyFilled))


class JournalReads:
    """Mixed into :class:`~.store.Journal`: the queries read its connection."""

    _db: sqlite3.Connection

    def iter_bars(self, since: int = 0) -> Iterator[tuple[int, Any, dict, dict, bool]]:
        """(n, timestamp, data, context, catch_up) of the bars from ``since`` on."""
        rows = self._db.execute("SELECT n, payload FROM bars WHERE n >= ? AND length(payload) > 0 ORDER BY n",
                                (since,))  # a bar kept by reference (a shadow replay's) has no content here
        for n, payload in rows:
            yield n, *unpack_bar(payload)

    def replay_bars(self) -> Iterator[tuple[int, Any, dict, dict, bool, float | None]]:
        """(n, timestamp, data, context, catch_up, arrived) of every bar with content, for a warm
        restart (a journal opened for writing: a read-only one may lack ``arrived``)."""
        for n, payload, arrived in self._db.execute("SELECT n, payload, arrived FROM bars "
                                                    "WHERE length(payload) > 0 ORDER BY n"):  # fmt: skip
            yield n, *unpack_bar(payload), arrived

    def iter_bar_rows(self) -> Iterator[tuple[int, str, bytes, float | None]]:
        """(n, timestamp text, payload, arrived) of every bar; an empty payload is a bar kept by
        reference (a recorded source's bar: the source holds it). For a warm restart, as
        ``replay_bars`` (a journal opened for writing: a read-only one may lack ``arrived``)."""
        yield from self._db.execute("SELECT n, ts, payload, arrived FROM bars ORDER BY n")

    def events_by_bar(self) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        for n, payload in self._db.execute("SELECT n, payload FROM events ORDER BY seq"):
            out.setdefault(n, []).append(unpack(payload))
        return out

    def fill_events(self, cids: Iterable[str]) -> list[Any]:
        """The journaled executions (``OrderFilled`` / ``OrderPartiallyFilled`` events) of the
        orders ``cids``, in the order they came; only those rows are decoded."""
        wanted = sorted(set(cids))
        marks = ", ".join("?" * len(wanted))
        rows = self._db.execute(f"SELECT payload FROM events WHERE kind IN ({_EXECUTION_KINDS}) AND cid IN ({marks}) "
                                "ORDER BY seq", wanted) if wanted else ()  # fmt: skip
        return [unpack(payload) for (payload,) in rows]

    def commands(self) -> dict[tuple[int, int], tuple[str, str, Any, Any]]:
        rows = self._db.execute("SELECT n, seq, kind, cid, args, result FROM commands")
        return {
            (n, seq): (kind, cid, unpack(a),
                       unpack(r))
            for n, seq, kind, cid, a, r in rows
        }  # fmt: skip

    def recent_sends(self, width: float) -> list[float]:
        """The ``sent_at`` times (oldest first) of the last ``width`` seconds before the latest one:
        the order-rate limit's window when the run stopped. The times never decrease in the
        order the rows were written (the limit records the latest time seen when a clock steps
        back), so the rows are read from the newest back to the first one that left the window."""
        rows = self._db.execute("SELECT sent_at FROM commands WHERE sent_at IS NOT NULL ORDER BY rowid DESC")
        sends: list[float] = []
        for (at,) in rows:
            if sends and at <= sends[0] - width:
                break
            sends.append(at)
        rows.close()
        sends.reverse()
        return sends

    def intents(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute(
            "SELECT cid, n, asset, side, quantity, order_type, status, filled, venue_id, reason "
            "FROM intents ORDER BY rowid"
        )
        keys = ("cid", "n", "asset", "side", "quantity", "order_type", "status", "filled",
                "venue_id", "reason")  # fmt: skip
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def intent_requests(self, since: int = 0) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(intent row, the request as sent) of the intents made at bar ``since`` or later."""
        rows = self._db.execute(
            "SELECT cid, n, status, filled, reason, request FROM intents WHERE n >= ? ORDER BY rowid",
            (since,),
        )
        return [({"cid": c, "n": n, "status": st, "filled": f, "reason": r},
                 unpack(req))
                for c, n, st, f, r, req in rows]  # fmt: skip

    def fill_rows(self, since: int = 0) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT exec_id, cid, asset, quantity, price, commission, ts FROM fills WHERE n >= ? "
            "AND cid IS NOT NULL ORDER BY rowid", (since,)
        )  # fmt: skip
        keys = ("exec_id", "cid", "asset", "quantity", "price", "commission", "ts")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def positions(self) -> dict[str, float]:
        """asset -> signed quantity: the sum of this strategy's fills."""
        rows = self._db.execute("SELECT asset, SUM(quantity) FROM fills GROUP BY asset")
        return {asset: qty for asset, qty in rows if abs(qty) > 1e-9}

    def fill_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]

    def exec_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT exec_id FROM fills")}
