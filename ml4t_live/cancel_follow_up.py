"""The follow-up of unconfirmed cancels, kept in the strategy's journal across restarts.

:class:`~ml4t_live.cancel_resends.CancelResends` knows nothing of the journal: its ``snapshot()``
(plain dicts) is written here to the journal's meta ``cancel_follow_up`` (JSON) when it changed,
and a warm restart reads it back for ``restore()`` (see :mod:`~ml4t_live.cancel_resends`). No key,
or an empty one: nothing is followed (an older journal); an unreadable one is warned about and
read as none (the unconfirmed cancels start over).
"""

from __future__ import annotations

import json
from typing import Any

from loguru import logger

from .journal.store import Journal

_log = logger.bind(component="venue-broker")

#: the journal's meta key holding ``CancelResends.snapshot()`` (JSON; absent or empty: none)
FOLLOW_UP_KEY = "cancel_follow_up"


def keep(journal: Journal, saved: dict[str, dict[str, Any]]) -> None:
    """Write ``saved`` (a snapshot) to ``journal`` when it differs from what it holds."""
    text = json.dumps(saved, sort_keys=True) if saved else ""
    if text != (journal.meta(FOLLOW_UP_KEY) or ""):
        journal.set_meta(FOLLOW_UP_KEY, text)


def load(journal: Journal) -> dict[str, dict[str, Any]]:
    """The snapshot ``journal`` holds (empty when none, or unreadable: warned)."""
    text = journal.meta(FOLLOW_UP_KEY)
    if not text:
        return {}
    try:
        saved = json.loads(text)
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or not all(_readable(was) for was in saved.values()):
        _log.warning("the journal's unconfirmed-cancel follow-up ({}) could not be read: the unconfirmed "
                     "cancels start over", text[:200])  # fmt: skip
        return {}
    return saved


def _readable(was: Any) -> bool:
    """One order's saved follow-up: its counts whole numbers, ``listed`` true, false or none."""
    if not isinstance(was, dict):
        return False
    counts = [was.get(k, 0) for k in ("checks", "resends", "refused", "failed", "unread")]
    return (all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)
            and was.get("listed") in (True, False, None) and isinstance(was.get("ended", False), bool)
            and isinstance(was.get("found_filled", False), bool)
            and isinstance(was.get("reason", ""), str) and isinstance(was.get("answer", ""), str))  # fmt: skip
