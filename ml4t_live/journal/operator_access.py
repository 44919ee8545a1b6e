"""A journal as the operator's tools open it, from another process while the strategy may run:
read-only (:func:`read_only`, no lock), and the one write an operator command makes
(:func:`set_trading_state`, which never takes the journal's lock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import ConfigError
from .signal import tell_running
from .store import BUSY_MS, READ_ONLY, Journal


def read_only(path: str | Path) -> Journal:
    """A journal opened for reading by an operator tool: no lock (the strategy may be running),
    no writes (SQLite refuses them). Close it with :meth:`Journal.close`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no journal at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        return Journal(path, db, READ_ONLY)
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the journal {path}: {exc}") from None


def set_trading_state(path: str | Path, state: str, reason: str, *, flatten: bool = False,
                      cancel_all: bool = False) -> str:  # fmt: skip
    """An operator command's one write: the trading state (the running engine notices it before
    its next bar), with ``flatten`` the request to close the strategy's positions, and with
    ``cancel_all`` the request to cancel every working order, the runtime's own (a flatten's)
    included. Each of the two withdraws the other one not yet carried out (the operator's later
    word stands), and a resume withdraws both. Never takes the journal's lock; returns the
    previous state."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no journal at {path}")
    db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_MS / 1000)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'trading_state'").fetchone()
        db.execute("BEGIN IMMEDIATE")
        rows = [("trading_state", state), ("trading_state_reason", reason)]
        if flatten or cancel_all or state == "ACTIVE":  # the later request wins; a resume withdraws both
            rows.append(("flatten_requested", reason if flatten else ""))
            rows.append(("cancel_all_requested", reason if cancel_all else ""))
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise ConfigError(f"could not write the trading state to {path} ({exc}); nothing changed: "
                          "try again") from None
    finally:
        db.close()
    tell_running(path)  # a shadow run reads the journal at its next bar
    return row[0] if row else "ACTIVE"
