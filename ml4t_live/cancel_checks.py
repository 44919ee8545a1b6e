"""The checks of unanswered cancels: read, look up, send again (see :mod:`~ml4t_live.cancel_resends`).

:class:`CancelResending` is mixed into :class:`~ml4t_live.venue_broker.VenueBroker`;
``_resend_due_cancels`` runs with each reconciliation check (the fill barrier, before each live
bar), at a warm restart (with the open orders it read) and at the end of a run (``final``). Only
when a cancel is due does it read the venue's open orders (one ``snapshot``); the orders the venue
no longer lists are looked up by client order id in the session (one ``lookup``); then the due
cancels the venue still works are sent again while they have tries left, within the check's
budget. The schedule and the counts are :class:`~ml4t_live.cancel_resends.CancelResends`'s; the
journal keeps them (:mod:`~ml4t_live.cancel_follow_up`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loguru import logger

from . import cancel_follow_up
from .book import Book
from .cancel_resends import CancelResends
from .errors import BridgeError, CancelRefused, VenueError
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

#: cancelling orders looked up by client order id in one check at most (Alpaca: one GET each, plus
#: one per replacement it follows)
LOOKUP_AT_MOST = 10


class CancelResending:
    """``_resend_due_cancels``; needs the attributes listed below."""

    gateway: VenueGateway
    book: Book
    cancel_resends: CancelResends
    link: Any  # JournalLink
    _drain: Any  # FillBarrier._drain
    _cancel_taken: Any  # BarSteps._cancel_taken
    _take_venue_end: Any  # BarSteps._take_venue_end

    def _followed_cancels(self) -> list[str]:
        """The orders whose cancel is followed: cancelling, and open ones whose runtime cancel the
        venue refused."""
        refused = [c for c in self.cancel_resends.refused_open if c in self.book.open]
        return list(self.book.cancelling) + refused

    def _follows_cancel(self, cid: str) -> bool:
        refused = cid in self.cancel_resends.refused_open and cid in self.book.open
        return cid in self.book.cancelling or refused

    def _keep_follow_up(self) -> None:
        """Write the follow-up to the journal when it changed (:mod:`~ml4t_live.cancel_follow_up`);
        never while a journal is replayed (what the replay has is not the follow-up yet)."""
        if not self.link.replaying and not self.link.journal.closed:
            cancel_follow_up.keep(self.link.journal, self.cancel_resends.snapshot())

    def _restore_follow_up(self, reasons: Iterable[str]) -> None:
        """A warm restart: the journal's follow-up continues for the orders still cancelling and
        the open ones whose cancel was refused for one of ``reasons`` (see the module docstring)."""
        saved = cancel_follow_up.load(self.link.journal)
        for cid in self.cancel_resends.restore(saved, self.book.cancelling, self.book.open, reasons):
            _log.info("order {}: its unconfirmed cancel's follow-up continues after {} check(s) before the restart",
                      cid, saved[cid].get("checks", 0))  # fmt: skip

    def _resend_due_cancels(self, working: set[str] | None = None, *, final: bool = False,
                            when: str = "") -> None:  # fmt: skip
        """Check the due cancels (see the module docstring), then keep the follow-up in the
        journal. ``working``: the client order ids the venue lists as working (a warm restart's;
        read here with one ``snapshot`` when None and a cancel is due)."""
        self._check_due_cancels(working, final=final, when=when)
        self._keep_follow_up()

    def _check_due_cancels(self, working: set[str] | None, *, final: bool, when: str) -> None:
        resends = self.cancel_resends
        started = resends.timer()
        due, alerts = resends.due(self._followed_cancels(), final=final)
        for cid in alerts:
            _log.error(resends.alert(cid))
        if not due:
            return
        in_session = working is None  # (a restart looks up what it no longer lists itself)
        if working is None:
            working = self._read_working(due)
            if working is None:
                return
        if in_session:
            unlisted = [c for c in due if c not in working and c in self.book.cancelling]
            working = working | self._look_up_unlisted(unlisted, started)
        sends = 0
        for i, cid in enumerate(due):
            if not self._follows_cancel(cid):
                continue  # ended meanwhile (its events, the look-up)
            listed = cid in working
            send = listed and resends.may_send(cid)
            if send and sends and not final and resends.timer() - started >= resends.budget:
                left = [c for c in due[i:] if self._follows_cancel(c)]
                _log.info("{} due cancel(s) carried to the next check (this check's {:g} s are spent): {}",
                          len(left), resends.budget, ", ".join(left))  # fmt: skip
                break
            sends += send
            self._check_one(cid, listed, send, when)
        self._drain(block_until=None)  # a confirmation the gateway waited for is applied now

    def _read_working(self, due: list[str]) -> set[str] | None:
        """The client order ids the venue lists as working, or None when it cannot be read: then
        each due cancel's check is spent without a send or a try (unknown is not "no longer
        working"; once the read works again the tries left are used)."""
        try:
            snapshot = self.gateway.snapshot()
        except (VenueError, BridgeError) as exc:
            due = [cid for cid in due if self._follows_cancel(cid)]
            for cid in due:
                self.cancel_resends.checked(cid, listed=None)
            _log.warning("{} unanswered cancel(s) not sent again: the venue's open orders could not be read "
                         "({}); each is checked again after its next spacing", len(due), exc)  # fmt: skip
            return None
        self._drain(block_until=None)  # what the venue said before its answer comes first
        return {o.client_order_id for o in snapshot.open_orders}

    def _look_up_unlisted(self, cids: list[str], started: float) -> set[str]:
        """Cancelling orders the venue no longer lists as working, looked up by client order id
        (one gateway ``lookup``, while the check's budget lasts): the end the venue gives them
        (cancelled, rejected, filled) ends them now. Returns those the venue says are working
        after all. Not found, or the look-up failing or not made: they stay cancelling (unknown is
        never read as gone) and a later check looks again."""
        lookup = getattr(self.gateway, "lookup", None)
        resends = self.cancel_resends
        if not cids or lookup is None:
            return set()
        if resends.timer() - started >= resends.budget:
            _log.info("{} cancelling order(s) the venue no longer lists: looked up at a later check (this "
                      "check's {:g} s are spent)", len(cids), resends.budget)  # fmt: skip
            return set()
        cids = resends.to_look_up(cids, LOOKUP_AT_MOST)  # (the others at a later check, in turn)
        try:
            found = lookup(cids)
        except (VenueError, BridgeError) as exc:
            _log.warning("could not look up {} cancelling order(s) the venue no longer lists ({}); they stay "
                         "cancelling", len(cids), exc)  # fmt: skip
            return set()
        self._drain(block_until=None)  # what the look-up reported (fills by execution id) first
        working = set()
        for cid in cids:
            venue_order = found.get(cid)
            if cid not in self.book.cancelling or venue_order is None:
                continue  # ended by the look-up's own events; not found
            if venue_order.status == "open":
                working.add(cid)
            elif venue_order.status == "filled" and not resends.found_filled(cid):
                _log.debug("order {}: found filled again by look-up; its executions have not come", cid)
            else:
                self._take_venue_end(self.book.get(cid), venue_order, "(found by look-up)", in_session=True)
        return working

    def _check_one(self, cid: str, listed: bool, send: bool, when: str) -> None:
        """One due cancel's check: nothing to send (not listed, or no tries left), or sent again."""
        resends = self.cancel_resends
        if not listed:
            _log.info("order {}: its cancel is unconfirmed and the venue no longer lists it as working: not "
                      "sent again; it stays cancelling until the venue says how it ended (its events, a "
                      "look-up by client order id)", cid)  # fmt: skip
            resends.checked(cid, listed=False)
            return
        if not send:
            _log.debug("order {}: still listed working, its cancel sent again {} time(s) (the most): not sent "
                       "again", cid, resends.resends(cid))  # fmt: skip
            resends.checked(cid, listed=True)
            return
        self._resend_one(cid, when)

    def _resend_one(self, cid: str, when: str) -> None:
        """Send the cancel of ``cid`` again (the venue lists it working)."""
        resends = self.cancel_resends
        try:
            self.gateway.cancel(cid)
        except CancelRefused as exc:  # the venue still lists it: followed on (its events may end it)
            resends.checked(cid, listed=True, sent=True, refused=True)
            _log.warning("order {}: its cancel{} was never confirmed and the venue still listed it working; "
                         "the cancel asked again ({} of at most {}) was refused ({}): followed until its "
                         "events end it", cid, when, resends.resends(cid), resends.limit, exc)  # fmt: skip
            return
        except (VenueError, BridgeError) as exc:  # warned once per order; one of its tries
            resends.checked(cid, listed=True, failed=True)
            level = "DEBUG" if cid in resends.failed else "WARNING"
            resends.failed.add(cid)
            _log.log(level, "the repeated cancel of {} failed ({}); it may still work at the venue: tried "
                     "again at its next check (the others first)", cid, exc)  # fmt: skip
            return
        resends.failed.discard(cid)
        reason = resends.refused_open.pop(cid, None)
        if reason is not None and cid in self.book.open:  # refused before, taken now: an ordinary cancel
            _log.warning("order {}: the venue took its cancel ({}) after refusing it: cancelling", cid, reason)
            self._cancel_taken(self.book.open[cid], reason)
            return
        resends.checked(cid, listed=True, sent=True)
        _log.warning("order {}: its cancel{} was never confirmed and the venue still listed it working: "
                     "cancel asked again ({} of at most {}; the venue's answer or events end it)", cid, when,
                     resends.resends(cid), resends.limit)  # fmt: skip
