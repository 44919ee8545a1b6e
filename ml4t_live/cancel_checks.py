"""The checks of unanswered cancels: read, look up, send again (see :mod:`~ml4t_live.cancel_resends`).

:class:`CancelResending` is mixed into :class:`~ml4t_live.venue_broker.VenueBroker`;
``_resend_due_cancels`` runs with each reconciliation check (the fill barrier, before each live
bar), at a warm restart (with the open orders it read) and at the end of a run (``final``). Only
when a cancel is due does it read the venue's open orders (one ``snapshot``); the orders the venue
no longer lists are looked up by client order id in the session (one ``lookup``); then the due
cancels the venue still works are sent again while they have tries left, in batches within the
check's budget (a gateway with ``cancel_many``, IB: up to ``CancelResends.at_once`` in one call,
about one wait for all; any other: one ``cancel`` each, as
:func:`~ml4t_live.runtime_cancels.cancel_each` does), each order's outcome handled alike (taken,
refused, failed). The schedule and the counts are :class:`~ml4t_live.cancel_resends.CancelResends`'s; the
journal keeps them (:mod:`~ml4t_live.cancel_follow_up`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loguru import logger

from . import cancel_follow_up
from .book import Book
from .cancel_resends import CancelResends
from .errors import BridgeError, CancelRefused, LookupIncomplete, VenueError
from .protocols import VenueGateway
from .runtime_cancels import cancel_each, cancel_one

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
    owed: Any  # OwedExecutions

    def _followed_cancels(self) -> list[str]:
        """The orders whose cancel is followed: cancelling, and open ones whose runtime cancel the
        venue refused."""
        refused = [c for c in self.cancel_resends.refused_open if c in self.book.open]
        return list(self.book.cancelling) + refused

    def _follows_cancel(self, cid: str) -> bool:
        refused = cid in self.cancel_resends.refused_open and cid in self.book.open
        return cid in self.book.cancelling or refused

    def _found_working(self, cids: Iterable[str]) -> None:
        """Orders a look-up retried after the restart found working: each is listed working
        (:meth:`_listed_now`: a found-filled note the journal's follow-up kept ends, as any debt);
        a followed cancel among them is checked at the next check (and sent again while it has
        tries), its counts kept; the restart's check, without that look-up, counted it as no
        longer listed."""
        for cid in cids:
            self._listed_now(cid)
            if self._follows_cancel(cid):
                self.cancel_resends.due_at_once(cid)

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
        self._listed_among(working)  # (before the sends: one carried to the next check too)
        to_send = []
        for cid in due:
            if not self._follows_cancel(cid):
                continue  # ended meanwhile (its events, the look-up)
            listed = cid in working
            if listed and resends.may_send(cid):
                to_send.append(cid)
            else:
                self._check_unsent(cid, listed)
        self._resend_batches(to_send, started, final=final, when=when)
        self._drain(block_until=None)  # a confirmation the gateway waited for is applied now

    def _listed_among(self, cids: Iterable[str]) -> None:
        """The venue lists ``cids`` working (a cancel check's open orders and its look-up, a
        reconciliation's open orders): each of them owed its executions or whose cancel is followed,
        due or not, is listed working (:meth:`_listed_now`)."""
        for cid in cids:
            if cid in self.owed or self._follows_cancel(cid):
                self._listed_now(cid)

    def _listed_now(self, cid: str) -> None:
        """The venue lists ``cid`` working to this client id: what a look-up found (filled, shown
        by its executions alone) and what it is owed end together, here only
        (:meth:`CancelResends.listed_working`,
        :meth:`~ml4t_live.owed_executions.OwedExecutions.listed_working`, called nowhere else);
        a later look-up finding it filled owes it afresh. It is called for each order owed its
        executions or whose cancel is followed that the venue lists working to this client id,
        whichever read or look-up lists it: a check's open orders (a warm restart's too) and its
        look-up, every such order they list, its cancel due or not (:meth:`_listed_among`); a
        reconciliation's open orders, both reads (``BarSteps.reconcile_if_due``), and its look-up
        of the owed orders (:func:`~ml4t_live.owed_executions.settle`'s ``listed``); an unknown
        order's look-up finding a cancelling one open (:meth:`_check_one`; one found open and
        pending is accepted: an order of unknown outcome is owed nothing); a warm restart's
        retried look-up (:meth:`_found_working`)."""
        self.cancel_resends.listed_working(cid)
        if self.owed.listed_working(cid):
            _log.info("order {}: listed working after a look-up found it filled: no longer owed its "
                      "executions (should it fill, they decide; a later look-up finding it filled owes them "
                      "again)", cid)  # fmt: skip

    def _resend_batches(self, cids: list[str], started: float, *, final: bool, when: str) -> None:
        """Send the cancels of ``cids`` again, in batches through
        :func:`~ml4t_live.runtime_cancels.cancel_each`: a gateway with ``cancel_many`` (IB) gets
        up to ``CancelResends.at_once`` in one call (their waits for the venue's answers overlap,
        so a batch costs about one wait: on a silent IB one ``cancel_wait`` plus ib_async's
        pacing, whatever its size); any other gateway one cancel a batch (Alpaca: one DELETE
        each). The check's budget is spent batch by batch: the first always goes, a later one
        only while the budget lasts (the rest are carried to the next check, longest waiting
        first), so a bar waits about the budget plus one batch's worst, and up to ``at_once``
        due cancels of a silent IB cost it one wait, not one each. ``final``: every batch, no
        budget. Each order's outcome is handled as its single cancel's (:meth:`_resend_outcome`)."""
        resends = self.cancel_resends
        at_once = resends.at_once if hasattr(self.gateway, "cancel_many") else 1
        for i in range(0, len(cids), at_once):
            if i and not final and resends.timer() - started >= resends.budget:
                left = cids[i:]
                _log.info("{} due cancel(s) carried to the next check (this check's {:g} s are spent): {}",
                          len(left), resends.budget, ", ".join(left))  # fmt: skip
                return
            batch = cids[i : i + at_once]
            outcomes = cancel_each(self.gateway, batch)
            for cid in batch:
                self._resend_outcome(cid, outcomes[cid], when)

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
        after all. Not found, not read (the look-up failing for all of them, or for some:
        ``LookupIncomplete``, the others taken as found), or not looked up: they stay cancelling
        (unknown is never read as gone) and a later check looks again; the WARNING names those not
        read, and their ALERT says their look-up failed."""
        lookup = getattr(self.gateway, "lookup", None)
        resends = self.cancel_resends
        if not cids or lookup is None:
            return set()
        if resends.timer() - started >= resends.budget:
            _log.info("{} cancelling order(s) the venue no longer lists: looked up at a later check (this "
                      "check's {:g} s are spent)", len(cids), resends.budget)  # fmt: skip
            return set()
        cids = resends.to_look_up(cids, LOOKUP_AT_MOST)  # (the others at a later check, in turn)
        unread: list[str] = []
        try:
            found = lookup(cids)
        except LookupIncomplete as exc:  # the others were read: taken below
            found, unread, why = exc.found, [c for c in cids if c in exc.unread], str(exc)
        except (VenueError, BridgeError) as exc:
            found, unread, why = {}, cids, str(exc)
        resends.looked_up(cids, unread)
        if unread:
            _log.warning("could not read {} of {} cancelling order(s) the venue no longer lists, looked up by "
                         "client order id: {} ({}); they stay cancelling", len(unread), len(cids),
                         ", ".join(unread), why)  # fmt: skip
        if len(unread) == len(cids):
            return set()
        self._drain(block_until=None)  # what the look-up reported (fills by execution id) first
        working = set()
        for cid in cids:
            venue_order = found.get(cid)
            if cid not in self.book.cancelling or venue_order is None:
                continue  # ended by the look-up's own events; not found
            if venue_order.status == "unknown":  # it may still work (under another client id): counted
                resends.found_unknown(cid)
            if venue_order.status == "open":
                working.add(cid)
            elif venue_order.status == "unknown" and cid in self.owed:
                _log.debug("order {}: shown by its executions alone again by look-up; still owed", cid)
            elif venue_order.status == "filled" and not resends.found_filled(cid):
                _log.debug("order {}: found filled again by look-up; its executions have not come", cid)
            else:
                self._take_venue_end(self.book.get(cid), venue_order, "(found by look-up)", in_session=True)
        return working

    def _check_one(self, cid: str, listed: bool, send: bool, when: str) -> None:
        """One due cancel's check on its own (a look-up found its order working): nothing to send
        (not listed, or no tries left), or sent again with one ``cancel``. Listed, it is listed
        working as at a check (:meth:`_listed_now`)."""
        if listed:
            self._listed_now(cid)
        if send:
            self._resend_outcome(cid, cancel_one(self.gateway, cid), when)
        else:
            self._check_unsent(cid, listed)

    def _check_unsent(self, cid: str, listed: bool) -> None:
        """A due cancel's check that sends nothing: the venue no longer lists its order, or it has
        no tries left."""
        resends = self.cancel_resends
        if not listed:
            _log.info("order {}: its cancel is unconfirmed and the venue no longer lists it as working: not "
                      "sent again; it stays cancelling until the venue says how it ended (its events, a "
                      "look-up by client order id)", cid)  # fmt: skip
            resends.checked(cid, listed=False)
            return
        _log.debug("order {}: still listed working, its cancel sent again {} time(s) (the most): not sent "
                   "again", cid, resends.resends(cid))  # fmt: skip
        resends.checked(cid, listed=True)

    def _resend_outcome(self, cid: str, outcome: Exception | None, when: str) -> None:
        """What sending the cancel of ``cid`` again (the venue lists it working) came to: None (the
        gateway took it), CancelRefused, or another VenueError / BridgeError (failed: a try)."""
        resends = self.cancel_resends
        if isinstance(outcome, CancelRefused):  # the venue still lists it: followed on (its events may end it)
            resends.checked(cid, listed=True, sent=True, refused=str(outcome))
            _log.warning("order {}: its cancel{} was never confirmed and the venue still listed it working; "
                         "the cancel asked again ({} of at most {}) was refused ({}): followed until its "
                         "events end it", cid, when, resends.resends(cid), resends.limit, outcome)  # fmt: skip
            return
        if outcome is not None:  # warned once per order; one of its tries
            resends.checked(cid, listed=True, failed=True)
            level = "DEBUG" if cid in resends.failed else "WARNING"
            resends.failed.add(cid)
            _log.log(level, "the repeated cancel of {} failed ({}); it may still work at the venue: tried "
                     "again at its next check (the others first)", cid, outcome)  # fmt: skip
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
