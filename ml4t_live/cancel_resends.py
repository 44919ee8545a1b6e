"""Cancels the venue never answered: sent again, aged, spaced and bounded.

A cancel the runtime (HALTED, ``cancel-all``, the end-of-run policy) or the strategy
(``cancel_order``) sent leaves its order in ``Book.cancelling`` (CANCELLED for the strategy) until
the venue confirms it or fills it instead. A venue can lose a cancel: IB never answers a request
written in the gateway's restart second (IB-05); Alpaca can leave an order ``pending_cancel``.
Left alone, such an order keeps working at the venue for the rest of the run and can fill.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`, :meth:`CancelResending._resend_due_cancels`
runs with each reconciliation check (the fill barrier, before each live bar) and at the end of a
run; only when a cancel is *due* does it read the venue's open orders (one ``snapshot``):

* a cancel is due ``after`` seconds (default 30 s) after it was sent, then after twice as long
  as the previous spacing (30, 60, 120, 240, 480 s): at most ``limit`` (5) sends again;
* due, and the venue still lists the order as working: the cancel is sent again (a WARNING names
  the order), never the order itself. ``CancelRefused`` (the venue says it is filled or already
  being cancelled) ends the re-sends: the order's own events decide. A send that fails
  (``VenueError`` / ``BridgeError``) is tried again at the next check;
* due, and the venue no longer lists it: not sent (its end arrives as the venue's events, or the
  restart's look-up finds it); the schedule moves on as if it had been;
* after the last re-send's spacing, with still no answer: one ERROR (``ALERT``) names the order
  as possibly working at the venue; nothing more is sent.

A restart marks every order still cancelling as sent long ago (due at once); the end of a run
(``final``) asks once more for every order still cancelling after its wait, whatever its age (no
later check will come). A journal's replay sends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from .book import Book
from .errors import BridgeError, CancelRefused, VenueError
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

#: seconds a cancel goes unanswered before it is sent again (then twice the previous spacing)
RESEND_AFTER = 30.0
#: how often one cancel is sent again at most
RESEND_LIMIT = 5


@dataclass(slots=True)
class _Cancel:
    sent_at: float  # the last send (or the last due check that found nothing to send)
    resends: int = 0


class CancelResends:
    """When each unanswered cancel was last sent and how often it was sent again."""

    def __init__(self, *, after: float = RESEND_AFTER, limit: int = RESEND_LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if after < 0 or limit < 0:
            raise ValueError("CancelResends needs after >= 0 and limit >= 0")
        self.after = after
        self.limit = limit
        self.clock = clock
        self._items: dict[str, _Cancel] = {}
        self._ended: set[str] = set()  # refused or given up: never sent again
        self.failed: set[str] = set()  # a re-send failed (warned once)

    def sent(self, cid: str, *, long_ago: bool = False) -> None:
        """The cancel of ``cid`` was sent now (``long_ago``: before a restart, due at once)."""
        self._ended.discard(cid)
        self._items[cid] = _Cancel(float("-inf") if long_ago else self.clock())

    def due(self, cancelling: Iterable[str], *, final: bool = False) -> tuple[list[str], list[str]]:
        """(cancels to send again, cancels given up just now) among the orders ``cancelling``;
        ``final``: every one not ended, whatever its age."""
        cancelling = list(cancelling)
        for cid in [c for c in self._items if c not in cancelling]:
            del self._items[cid]  # the venue answered
        self._ended &= set(cancelling)
        self.failed &= set(cancelling)
        now = self.clock()
        due, exhausted = [], []
        for cid in cancelling:
            if cid in self._ended:
                continue
            item = self._items.setdefault(cid, _Cancel(now))  # (one sent before the clock saw it)
            if not final and now - item.sent_at < self.after * 2**item.resends:
                continue
            if item.resends < self.limit:
                due.append(cid)
            elif not final:
                exhausted.append(cid)
                self._ended.add(cid)
        return due, exhausted

    def resent(self, cid: str) -> None:
        item = self._items.get(cid)
        if item is not None:
            item.sent_at = self.clock()
            item.resends += 1

    def end(self, cid: str) -> None:
        """The venue answered this cancel (a refusal): its own events decide, never sent again."""
        self._ended.add(cid)

    def resends(self, cid: str) -> int:
        item = self._items.get(cid)
        return item.resends if item is not None else 0


class CancelResending:
    """``_resend_due_cancels``; needs the attributes listed below."""

    gateway: VenueGateway
    book: Book
    cancel_resends: CancelResends
    _drain: Any  # FillBarrier._drain

    def _resend_due_cancels(self, working: set[str] | None = None, *, final: bool = False,
                            when: str = "") -> None:  # fmt: skip
        """Send again the due cancels of the orders the venue still works (see the module
        docstring). ``working``: the client order ids the venue lists as working (read here with
        one ``snapshot`` when None and a cancel is due)."""
        due, exhausted = self.cancel_resends.due(self.book.cancelling, final=final)
        for cid in exhausted:
            _log.error("ALERT order {}: the venue never confirmed its cancel (sent again up to {} times); it "
                       "may still work at the venue (and fill): cancel it there, then ml4t-live reconcile",
                       cid, self.cancel_resends.limit)  # fmt: skip
        if not due:
            return
        if working is None:
            try:
                snapshot = self.gateway.snapshot()
            except (VenueError, BridgeError) as exc:  # unknown is not "no longer working"
                _log.warning("{} unanswered cancel(s) not sent again: the venue's open orders could not "
                             "be read ({}); trying again at the next check", len(due), exc)  # fmt: skip
                return
            working = {o.client_order_id for o in snapshot.open_orders}
            self._drain(block_until=None)  # what the venue said before its answer comes first
        for cid in due:
            if cid in self.book.cancelling:
                self._resend_one(cid, cid in working, when)
        self._drain(block_until=None)  # a confirmation the gateway waited for is applied now

    def _resend_one(self, cid: str, working: bool, when: str) -> None:
        n = self.cancel_resends.resends(cid) + 1
        if not working:
            _log.info("order {}: its cancel is unconfirmed and the venue no longer lists it as working; "
                      "not sent again (its end comes as the venue's events or a look-up)", cid)  # fmt: skip
            self.cancel_resends.resent(cid)
            return
        _log.warning("order {}: its cancel{} was never confirmed and the venue still works it: cancel sent "
                     "again ({} of at most {})", cid, when, n, self.cancel_resends.limit)  # fmt: skip
        try:
            self.gateway.cancel(cid)
        except CancelRefused as exc:
            _log.info("the repeated cancel of {} was refused ({}); its own events say how it ended", cid, exc)
            self.cancel_resends.end(cid)
            return
        except (VenueError, BridgeError) as exc:  # warned once per order; tried again at the next check
            level = "DEBUG" if cid in self.cancel_resends.failed else "WARNING"
            self.cancel_resends.failed.add(cid)
            _log.log(level, "the repeated cancel of {} failed ({}); it may still work at the venue: tried "
                     "again at the next check", cid, exc)  # fmt: skip
            return
        self.cancel_resends.failed.discard(cid)
        self.cancel_resends.resent(cid)
