"""Crash points for the fault-scenario suite: ``ML4T_LIVE_FAILPOINT=name[:n]`` kills the process
(``os._exit(137)``, as ``kill -9`` does: no cleanup, no flush) the n-th time (default 1st) the
named point is passed. Unset (always, outside the suite), each point costs one dict lookup.

Points: ``after_intent`` (the intent is committed, the order not sent), ``after_send`` (the venue
took the order; its answer not applied), ``after_fill`` (an execution applied to the book, not
yet journaled), ``after_change`` (the venue took a change of an order; its answer not journaled),
``after_cancel`` (the venue took the strategy's cancel of an order; its answer not journaled),
``after_bar`` (a bar fully processed).
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("ML4T_LIVE_FAILPOINT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_remaining = {_NAME: int(_COUNT or 1)} if _NAME else {}


def failpoint(name: str) -> None:
    if name in _remaining:
        _remaining[name] -= 1
        if _remaining[name] <= 0:
            os._exit(137)
