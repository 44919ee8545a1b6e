"""The Alpaca gateway's ``lookup``, one client order id at a time, each id's failure its own.

:func:`look_up_each` asks about each id with the gateway's look-up of one
(:meth:`~.gateway.AlpacaGateway.lookup`) and keeps going past an id it could not read
(:class:`Unread`): a read Alpaca refused about that order (a 4xx status other than 429), a read
answered with a server error (5xx) or with an answer alpaca-py cannot read
(:class:`~.rest.UnreadableAnswer`: that order's payload) after the retries while the next read is
answered, a chain of replacements that cannot be followed (:class:`~.submit.BrokenChain`), or an
order found whose report raised. A failure that says the venue itself cannot be asked now ends the
look-up there, the ids not asked yet unread too (each would wait as long, on the engine thread):
:func:`venue_down` (no request slot, no HTTP status after the retries, or 429 beyond
``rate_limit_patience``), or a second id in a row whose read ended in a 5xx after the retries (an
outage: :data:`OUTAGE`; an unreadable answer counts in that run as a 5xx does). So a look-up of
any number of ids waits at most two reads' retries in an outage, three once a read of it was
answered (below), not one per id. Any id unread raises :class:`~ml4t_live.errors.LookupIncomplete`
with what the others came to.

Every caller passes its ids in the same order at each look-up, so the gateway keeps the turn
(:class:`Turns`): the ids whose read failed go after the others at the next look-up, the longest
failing first, so two orders whose reads keep failing cannot keep the ids behind them unasked
while any read is answered. Once a read of the look-up was answered, the first id whose read
failed at an earlier look-up and ends in a 5xx again counts in no run (:data:`EXCUSED`: likely its
own trouble, Alpaca answering), so two such ids gathered at the end by their turns do not end the
look-up before a third, whose read may have recovered (or whose order ended); any other failing
read counts as any id's does (two in a row: an outage). The turns rotate the failing ids, each
look-up asking those that failed the longest ago: each is asked at least once in every n / 2
look-ups (n failing, rounded up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from itertools import count

from ...errors import LookupIncomplete, VenueError
from ...protocols import VenueOrder
from .rate_limit import RateLimitTimeout
from .rest import UnreadableAnswer, VenueRequestFailed
from .submit import BrokenChain

#: ids in a row whose read ended in a 5xx or an unreadable answer (after the retries) that end a
#: look-up: such a read about one order is its own, Alpaca failing reads one after another is an outage
OUTAGE = 2
#: failing reads per look-up, after one of its reads was answered, of ids :class:`Turns` marked
#: (failed at an earlier look-up) that count in no run of :data:`OUTAGE`
EXCUSED = 1
#: ids whose failed read :class:`Turns` remembers at most (the longest failing forgotten first)
REMEMBERED = 4096


class Unread(Exception):  # (one id's outcome, caught by look_up_each alone)
    """One id's look-up could not read it (``why``, naming the id); ``failure``: the read's error,
    when a read failed (None: found, its report raised)."""

    def __init__(self, why: str, *, failure: VenueError | None = None) -> None:
        super().__init__(why)
        self.why, self.failure = why, failure


def venue_down(exc: VenueError | None) -> bool:
    """Whether a read's failure says the venue cannot be asked now: no request slot within
    ``request_timeout`` (nothing sent), no answer after the retries (no HTTP status), or 429
    after ``rate_limit_patience`` (the account's request rate, never one order's); not a
    :class:`~.submit.BrokenChain` (one order's replacements that cannot be followed) nor an
    :class:`~.rest.UnreadableAnswer` (one order's payload alpaca-py cannot read)."""
    if isinstance(exc, RateLimitTimeout):
        return True
    own = isinstance(exc, (BrokenChain, UnreadableAnswer))
    return isinstance(exc, VenueRequestFailed) and not own and exc.status in (None, 429)


def server_error(exc: VenueError | None) -> bool:
    """Whether a read ended in a 5xx, or an answer that cannot be read, after the retries (one
    order's trouble, or an outage)."""
    if isinstance(exc, UnreadableAnswer):
        return True
    return isinstance(exc, VenueRequestFailed) and exc.status is not None and exc.status >= 500


class Turns:
    """The order a look-up asks its ids in: first those whose last read did not fail (in the
    caller's order), then those whose read failed, the longest failing first. One per gateway,
    shared by every caller (engine thread, the stream's loop thread)."""

    def __init__(self) -> None:
        self._failed: dict[str, int] = {}  # client order id -> when its read last failed (a count)
        self._clock = count()
        self._lock = threading.Lock()

    def order(self, cids: list[str]) -> list[str]:
        with self._lock:
            failed = self._failed
            return sorted(cids, key=lambda cid: (cid in failed, failed.get(cid, 0)))  # (sorted is stable)

    def marked(self, cids: list[str]) -> set[str]:
        """Those of ``cids`` whose last read failed."""
        with self._lock:
            return {cid for cid in cids if cid in self._failed}

    def failed(self, cid: str) -> None:
        with self._lock:
            self._failed.pop(cid, None)
            self._failed[cid] = next(self._clock)
            if len(self._failed) > REMEMBERED:
                del self._failed[next(iter(self._failed))]

    def read(self, cid: str) -> None:
        with self._lock:
            self._failed.pop(cid, None)


def look_up_each(client_order_ids: Iterable[str], one: Callable[[str], VenueOrder | None],
                 turns: Turns | None = None) -> dict[str, VenueOrder]:  # fmt: skip
    """What ``one`` finds of each id (None: Alpaca does not know it, left out), asked in the
    order ``turns`` gives (the caller's without it); see the module docstring for the ids it
    cannot read."""
    turns = turns or Turns()
    cids = turns.order(list(dict.fromkeys(client_order_ids)))
    marked = turns.marked(cids)  # (their reads failed at an earlier look-up)
    found: dict[str, VenueOrder] = {}
    unread: dict[str, str] = {}
    failing: list[str] = []  # the ids in a row up to here whose read ended in a 5xx
    answered = False  # whether a read of this look-up was answered
    excused = 0  # marked ids' failing reads counted in no run (at most EXCUSED)
    for i, cid in enumerate(cids):
        try:
            order = one(cid)
        except Unread as exc:
            unread[cid] = exc.why
            turns.failed(cid)
            if answered and excused < EXCUSED and cid in marked and server_error(exc.failure):
                excused += 1
                continue  # (failing again while Alpaca answers: likely its own trouble, not an outage)
            failing = [*failing, cid] if server_error(exc.failure) else []
            if venue_down(exc.failure) or len(failing) >= OUTAGE:
                why = (f"Alpaca failed the reads of {', '.join(failing)} in a row" if len(failing) >= OUTAGE
                       else f"Alpaca could not be asked for {cid}")  # fmt: skip
                unread.update({c: f"{c} not asked ({why})" for c in cids[i + 1 :]})
                break
            continue
        failing, answered = [], True
        turns.read(cid)
        if order is not None:
            found[cid] = order
    if unread:
        raise LookupIncomplete(f"Alpaca could not read {len(unread)} of {len(cids)} order(s) looked up by client "
                               f"order id (their state is unknown): {'; '.join(unread.values())}", found,
                               unread)  # fmt: skip
    return found
