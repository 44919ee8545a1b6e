"""The session journal: one SQLite file (WAL) per (venue, account, strategy id).

The single source of truth for what a strategy owns. Rows are appended on the engine thread, in
the order things happened to the strategy::

    meta      key -> value: identity, the id generation, starting cash, trading state, IB id floor
    bars      n -> the n-th bar the strategy consumed (timestamp, data, context), and when it
              arrived (``arrived``: wall-clock seconds, see :mod:`.arrival`; NULL: not known)
    intents   client order id -> the order as sent, its bar n, and its latest known outcome
    commands  (n, seq) -> what the strategy asked of the broker at bar n, and the answer it got
              (``sent_at``: the market time the order-rate limit counted it at, when it did)
    events    seq -> every venue answer as the engine applied it (at bar n), for a warm restart
    fills     exec id -> each execution once (the position is the sum of these)

An intent is committed **before** its order leaves; the other rows of a bar are committed together
at its end (one transaction per bar, one more per order); every append is one INSERT (or an UPDATE
by primary key): nothing re-reads earlier rows. ``synchronous=NORMAL`` under WAL survives a killed
process (what the warm restart needs); a power loss may drop the last transactions, never tear
the file. A second process on the same journal is refused (an exclusive ``flock`` held for the
journal's lifetime), with the holder's pid in the message.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

from loguru import logger

from ..errors import ConfigError, JournalLocked
from .codec import pack, pack_bar
from .queries import JournalReads

_log = logger.bind(component="journal")

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (n INTEGER PRIMARY KEY, ts TEXT NOT NULL, payload BLOB NOT NULL, arrived REAL);
CREATE TABLE IF NOT EXISTS intents (
    cid TEXT PRIMARY KEY, n INTEGER NOT NULL, asset TEXT NOT NULL, side TEXT NOT NULL,
    quantity REAL NOT NULL, order_type TEXT NOT NULL, request BLOB NOT NULL,
    status TEXT NOT NULL, filled REAL NOT NULL DEFAULT 0, venue_id TEXT, reason TEXT
);
CREATE TABLE IF NOT EXISTS commands (
    n INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, cid TEXT NOT NULL,
    args BLOB NOT NULL, result BLOB NOT NULL, sent_at REAL, PRIMARY KEY (n, seq)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, kind TEXT NOT NULL,
    cid TEXT, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY, n INTEGER NOT NULL, cid TEXT, asset TEXT NOT NULL,
    quantity REAL NOT NULL, price REAL NOT NULL, commission REAL NOT NULL, ts TEXT NOT NULL
);
"""

_MANY = {
    "bars": "INSERT INTO bars (n, ts, payload, arrived) VALUES (?, ?, ?, ?)",
    "commands": "INSERT INTO commands (n, seq, kind, cid, args, result) VALUES (?, ?, ?, ?, ?, ?)",
    "fills": "INSERT OR IGNORE INTO fills (exec_id, n, cid, asset, quantity, price, commission, ts) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
}  # fmt: skip

#: how long a write waits for another connection's write (an operator command) to finish
BUSY_MS = 5000

#: the lock descriptor of a journal opened by :func:`.operator_access.read_only` (it holds no lock)
READ_ONLY = -2

#: intent statuses that end an order
TERMINAL = frozenset({"filled", "cancelled", "rejected", "lost"})
_TERMINAL_SQL = "('filled', 'cancelled', 'rejected', 'lost')"
#: (the new status twice) true when the intent's status stays as it is: see ``set_intent``
_KEEP_STATUS = f"((status = 'lost' AND ? <> 'filled') OR (status IN {_TERMINAL_SQL} AND ? NOT IN {_TERMINAL_SQL}))"


class Journal(JournalReads):
    """An open, locked journal file. Use :meth:`open`; close with :meth:`close`. Its reads (a warm
    restart's, the operator tools') are :class:`~.queries.JournalReads`'."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._db = db
        self._lock_fd = lock_fd
        self._meta: dict[str, str] = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.bars = db.execute("SELECT COALESCE(MAX(n), 0) FROM bars").fetchone()[0]
        # commands made after the last bar (on_end, an end-of-run flatten) hold bar numbers the
        # next run's first live bars must not reuse: new bars are numbered above them
        self._used = db.execute("SELECT COALESCE(MAX(n), 0) FROM commands").fetchone()[0]

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, path: str | Path) -> Journal:
        """Open (or create) the journal at ``path`` and lock it against other processes."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the state directory {path.parent}: {exc.strerror or exc}") from None
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalLocked(
                f"another process (pid {holder}) is running this strategy on this account "
                f"(journal {path} is locked). Stop it first (ml4t-live halt, or its own Ctrl-C); "
                "two runs of one strategy on one account would trade the same positions twice."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return cls._connect(path, fd)

    @classmethod
    def _connect(cls, path: Path, fd: int) -> Journal:
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={BUSY_MS}")  # an operator command may be writing
            db.executescript(_SCHEMA)
            if "sent_at" not in {row[1] for row in db.execute("PRAGMA table_info(commands)")}:
                db.execute("ALTER TABLE commands ADD COLUMN sent_at REAL")  # a journal from before it
            if "arrived" not in {row[1] for row in db.execute("PRAGMA table_info(bars)")}:
                db.execute("ALTER TABLE bars ADD COLUMN arrived REAL")  # (its bars' arrivals: not known)
        except sqlite3.DatabaseError as exc:
            os.close(fd)
            raise ConfigError(f"{path} is not a usable journal ({exc}); move it aside to start afresh") from None
        journal = cls(path, db, fd)
        version = journal.meta("schema_version")
        if version is None:
            journal.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            journal.close()
            raise ConfigError(f"{path} has journal schema {version}; this ml4t-live reads {SCHEMA_VERSION}")
        return journal

    def _write(self, sql: str, args: tuple = ()) -> None:
        """Rows of one bar go in one transaction (committed by :meth:`commit`)."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(sql, args)

    def commit(self) -> None:
        """Make what was appended durable (against a killed process). Called before an order
        leaves, after each command, before ``on_data`` and at the end of every bar, and at close:
        no write transaction stays open while the strategy computes or the engine waits (an
        operator command may need to write)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def close(self) -> None:
        if self._lock_fd == READ_ONLY:
            self._db.close()
            self._lock_fd = -1
        if self._lock_fd < 0:
            return
        try:
            self.commit()
            self._db.close()
        finally:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1

    @property
    def closed(self) -> bool:
        return self._lock_fd < 0

    def recreate(self) -> Journal:
        """An empty journal in place of this one, under the same lock (nothing else can open
        the file meanwhile). Returns the new journal; this one is closed."""
        self.commit()
        self._db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        fd, self._lock_fd = self._lock_fd, -1
        return Journal._connect(self.path, fd)

    def data_version(self) -> int:
        """Changes when another connection (an operator command) commits to this file."""
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    # ------------------------------------------------------------------ meta
    def meta(self, key: str, default: str | None = None) -> str | None:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        text = str(value)
        if self._meta.get(key) == text:
            return
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))
        self.commit()  # the trading state, the id floor: visible to other processes at once
        self._meta[key] = text

    def swap_meta(self, key: str, expected: str, value: Any) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (another process may have
        changed it since it was read); True when it did. Committed at once."""
        before = self._db.total_changes
        self._write("UPDATE meta SET value = ? WHERE key = ? AND value = ?", (str(value), key, expected))
        swapped = self._db.total_changes > before
        self.commit()
        if swapped:
            self._meta[key] = str(value)
        return swapped

    def reload_meta(self, *keys: str) -> None:
        """Re-read ``keys`` (another process, an operator command, may have written them)."""
        marks = ",".join("?" * len(keys))
        rows = self._db.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        for key, value in rows:
            self._meta[key] = value

    @property
    def is_new(self) -> bool:
        return self.meta("created_at") is None

    # ------------------------------------------------------------------ appends
    def next_bar(self) -> int:
        """The number the next bar consumed gets (above any command's)."""
        self.bars = max(self.bars, self._used) + 1
        return self.bars

    def append_bar(self, timestamp: Any, data: dict, context: dict, catch_up: bool = False, *,
                   arrived: float) -> int:  # fmt: skip
        """The strategy consumed this bar: it is bar ``n`` (returned). ``arrived``: see :mod:`.arrival`."""
        self.next_bar()
        self._write(
            "INSERT INTO bars (n, ts, payload, arrived) VALUES (?, ?, ?, ?)",
            (self.bars, str(timestamp), pack_bar(timestamp, data, context, catch_up), arrived),
        )
        return self.bars

    def append_intent(self, cid: str, n: int, request: dict[str, Any]) -> None:
        """Committed before the order is sent (with everything appended before it)."""
        self._write(
            "INSERT INTO intents (cid, n, asset, side, quantity, order_type, request, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'sent')",
            (cid, n, request["asset"], request["side"], request["quantity"], request["order_type"],
             pack(request)),
        )  # fmt: skip
        self.commit()

    def set_intent(self, cid: str, *, status: str | None = None, filled: float | None = None,
                   venue_id: str | None = None, reason: str | None = None) -> None:  # fmt: skip
        """Update an intent. A terminal status is never overwritten by a non-terminal one (a late
        accepted / partial for an order that already ended), and ``lost`` only by ``filled``
        (the venue's later end of an order declared lost does not hide that it was); a status
        kept keeps its reason. ``filled`` always counts what the venue reported."""
        sets: list[str] = []
        args: list[Any] = []
        for column, value in (("filled", filled), ("venue_id", venue_id)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        for column, value in (("status", status), ("reason", reason)):
            if value is None:
                continue
            if status is None:
                sets.append(f"{column} = ?")
                args.append(value)
                continue
            sets.append(f"{column} = CASE WHEN {_KEEP_STATUS} THEN {column} ELSE ? END")
            args.extend((status, status, value))
        if sets:
            self._write(f"UPDATE intents SET {', '.join(sets)} WHERE cid = ?", (*args, cid))

    def append_command(self, n: int, seq: int, kind: str, cid: str, args: Any, result: Any,
                       sent_at: float | None = None) -> None:  # fmt: skip
        """``sent_at``: the market time the order-rate limit counts the command at (None: not counted)."""
        self._write(
            "INSERT INTO commands (n, seq, kind, cid, args, result, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (n, seq, kind, cid, pack(args), pack(result), sent_at),
        )

    def set_command_result(self, n: int, seq: int, result: Any, sent_at: float | None = None) -> None:
        """The command's answer, and its ``sent_at`` as it stands (None: the rails refused it)."""
        self._write(
            "UPDATE commands SET result = ?, sent_at = ? WHERE n = ? AND seq = ?",
            (pack(result), sent_at, n, seq),
        )

    def append_event(self, n: int, event: Any) -> None:
        self._write(
            "INSERT INTO events (n, kind, cid, payload) VALUES (?, ?, ?, ?)",
            (n, type(event).__name__, getattr(event, "client_order_id", None),
             pack(event)),
        )  # fmt: skip

    def append_fill(self, n: int, exec_id: str, cid: str | None, asset: str, signed_qty: float,
                    price: float, commission: float, timestamp: Any) -> None:  # fmt: skip
        self._write(
            "INSERT OR IGNORE INTO fills (exec_id, n, cid, asset, quantity, price, commission, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (exec_id, n, cid, asset, signed_qty, price, commission, str(timestamp)),
        )

    def append_many(self, table: str, rows: list[tuple]) -> None:
        """Rows gathered by the caller (a shadow run's bars, commands, fills), in one statement."""
        if rows:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            self._db.executemany(_MANY[table], rows)
