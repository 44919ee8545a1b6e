"""Who a journal belongs to: the strategy id, the state directory, and the journal's path.

* ``strategy_id``: given (CLI ``--strategy-id``, TOML, ``LiveEngine(strategy_id=...)``) or derived
  from the strategy's class and constructor parameters (``<Class>_<6 hex>``), so two strategy
  classes, or one class with two parameter sets, never share an id (nor a client order id).
* the state directory: ``--state-dir`` / ``state_dir=``, else ``$ML4T_LIVE_STATE_DIR``, else
  ``$XDG_STATE_HOME/ml4t-live``, else ``~/.local/state/ml4t-live``. Cron and a shell find the same
  journal whatever their working directory.
* one journal per (venue, account, strategy id): ``<state dir>/<venue>-<account>-<id>.journal``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: what a strategy id may hold (it is part of every client order id)
_ID = re.compile(r"^[A-Za-z0-9_.]{1,20}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


def default_strategy_id(strategy: Any) -> str:
    """``<Class>_<hash>``: the class (module and name) and its constructor parameters, hashed.

    A parameter counts when the instance keeps it under the same name (``self.fast = fast``);
    values whose text names a memory address are left out, so the id is the same in every
    process (a warm restart must find its journal)."""
    cls = type(strategy)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    params = {}
    for name in names:
        if hasattr(strategy, name):
            text = repr(getattr(strategy, name))
            if " at 0x" not in text:
                params[name] = text
    text = json.dumps([cls.__module__, cls.__qualname__, params], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{_UNSAFE.sub('_', cls.__name__)[:13]}_{digest}"


def check_strategy_id(value: str) -> str:
    if not _ID.match(value or ""):
        raise ConfigError(
            f"strategy id {value!r} must be 1-20 characters of letters, digits, '_' or '.' "
            "(it is part of every client order id)"
        )
    return value


def state_dir(given: str | Path | None = None) -> Path:
    if given:
        return Path(given).expanduser()
    env = os.environ.get("ML4T_LIVE_STATE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "ml4t-live"


def journal_path(directory: str | Path | None, venue: str, account: str, strategy_id: str) -> Path:
    safe = "-".join(journal_part(part) for part in (venue, account, strategy_id))
    return state_dir(directory) / f"{safe}.journal"


def resume_command(path: str | Path, strategy_id: str = "ID") -> str:
    """The ``ml4t-live resume`` that names exactly this journal: its state directory (cron and
    another shell may not share the run's environment) and its venue and account, as its name
    holds them (a resume acts on several journals of one strategy only when told to). A journal
    named otherwise (opened at a path of the caller's): its directory and ``strategy_id``."""
    path = Path(path)
    where = f"--state-dir {shlex.quote(str(path.parent))}"
    parts = path.name.removesuffix(".journal").split("-")
    if len(parts) != 3:
        return f"ml4t-live resume --strategy-id {strategy_id} {where}"
    venue, account, sid = parts
    return f"ml4t-live resume --strategy-id {sid} --broker {venue} --account {account} {where}"


def journal_part(text: str) -> str:
    """A venue's or an account's name as a journal's name holds it."""
    return _UNSAFE.sub("_", text) or "x"
