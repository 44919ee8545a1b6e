"""Cancels the venue never answered: sent again, aged, spaced, bounded per bar, then ALERTed.

A cancel the runtime (HALTED, ``cancel-all``, the end-of-run policy) or the strategy
(``cancel_order``) sent leaves its order in ``Book.cancelling`` (CANCELLED for the strategy) until
the venue confirms it or fills it instead. A venue can lose a cancel: IB never answers a request
written in the gateway's restart second (IB-05); Alpaca can leave an order ``pending_cancel``.
Left alone, such an order keeps working at the venue for the rest of the run and can fill.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`, :meth:`CancelResending._resend_due_cancels`
runs with each reconciliation check (the fill barrier, before each live bar) and at the end of a
run; only when a cancel is *due* does it read the venue's open orders (one ``snapshot``):

* a cancel is checked ``after`` seconds (default 30 s) after it was sent, then after twice as
  long as the previous spacing (30, 60, 120, 240, 480 s): ``limit`` (5) checks at most;
* checked, and the venue still lists the order as working: the cancel is sent again, never the
  order itself (a WARNING after the gateway took it names the order and how many times). A repeat
  the venue refuses (``CancelRefused``: filled, or already being cancelled: IB 10148
  ``PendingCancel``, Alpaca 422 ``pending_cancel``) does not end the follow-up: the order's own
  events may end it, else the next check looks again. A send that fails (``VenueError`` /
  ``BridgeError``) counts as that check (the cancel was tried): it goes behind the others and waits
  for the next spacing, so a cancel that can never be sent ends in the ALERT too; so does a check
  whose read of the venue's open orders fails (nothing is sent: whether it works is unknown);
* checked, and the venue no longer lists it: nothing is sent and nothing counted as sent (an INFO
  line says so); in the session it is looked up by client order id (one bounded ``lookup`` for
  all such orders of the check) and the end the venue gives it (cancelled, rejected; filled: its
  executions decide) ends it; not found, it stays cancelling until the venue's events end it (a
  warm restart looks it up again); the schedule moves on;
* one check sends for ``budget`` seconds (default 5 s) at most, measured from its start (the
  snapshot included) and at least one send: the rest are carried to the next check (an INFO line),
  so a bar waits about ``budget`` plus one send's worst, not one per order due; each check takes
  the longest-waiting cancels first (a carried one has waited since its last check, a tried one
  since it was tried), so a carried one is not passed over again and a failing one blocks no other;
* after the last check's spacing, with still no answer: one ERROR ``ALERT order ...`` names the
  order (how often it was sent again, whether the venue still listed it working); nothing more
  is sent. The end of a run lists it in ``left_at_venue``.

A cancel of the runtime's (HALTED, ``cancel-all``, the end of a run) that the venue *refused*
while the order is still open in the book (e.g. Alpaca 422: already ``pending_cancel`` after a DELETE
the journal never saw; IB 10148) is followed the same way (:attr:`CancelResends.refused_open`): the
order stays PENDING for the strategy, HALTED does not send it again at each bar; the next check
(due at once) and the later ones (spaced as above) send the cancel again while the venue lists the
order working (never the order), and the ALERT ends it; its own events (filled, cancelled) end it
at any time. A repeat the venue takes makes it an ordinary cancelled order (cancelling until
confirmed).

A restart marks every order still cancelling as sent long ago (due at once); the end of a run
(``final``) asks once more for every order still cancelling after its wait, whatever its age and
the budget (no later check will come). A journal's replay sends nothing.

The follow-up outlives the process: :meth:`CancelResends.snapshot` (plain dicts: per order its
checks, the resend / refused / failed / unread counts, what the last read saw, whether it was
ALERTed, a refused open order's reason) is kept in the journal's meta (``cancel_follow_up``,
:mod:`~ml4t_live.cancel_follow_up`) when it changes, and a warm restart restores it
(:meth:`CancelResends.restore`): each order still cancelling (and each open order whose halt's
cancel was refused, while the strategy is still HALTED) is due at once, its count continuing; one
that had used all its checks is ALERTed again once at the restart ("still unconfirmed after the
restart") and not sent again. An order the journal has no follow-up for (an older journal) starts
over, as does a fresh cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from . import cancel_follow_up
from .book import Book
from .errors import BridgeError, CancelRefused, VenueError
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

#: seconds a cancel goes unanswered before it is checked (then twice the previous spacing)
RESEND_AFTER = 30.0
#: how often one cancel is checked (and, while the venue lists its order working, sent again) at most
RESEND_LIMIT = 5
#: seconds one check spends sending cancels again (at least one send); the rest wait for the next
RESEND_BUDGET = 5.0


@dataclass(slots=True)
class _Cancel:
    sent_at: float  # the last send or the last check
    checks: int = 0  # due checks so far: they space the next one and bound the follow-up
    resends: int = 0  # times really sent again (the gateway took it, or the venue refused it)
    refused: int = 0  # of those, refused by the venue
    failed: int = 0  # checks whose send failed (VenueError / BridgeError)
    unread: int = 0  # checks whose read of the venue's open orders failed (nothing sent)
    listed: bool | None = True  # whether the venue listed it working at the last check read (None: never read)
    alerted: bool = False  # ALERTed before a restart (ALERTed again once after it)


class CancelResends:
    """When each unanswered cancel was last sent or checked, and how often it was sent again."""

    def __init__(self, *, after: float = RESEND_AFTER, limit: int = RESEND_LIMIT,
                 budget: float = RESEND_BUDGET, clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if after < 0 or limit < 0 or budget < 0:
            raise ValueError("CancelResends needs after >= 0, limit >= 0 and budget >= 0")
        self.after = after
        self.limit = limit
        self.budget = budget
        self.clock = clock  # the schedule's
        self.timer = timer  # the per-check budget's (the time a bar really waits)
        self._items: dict[str, _Cancel] = {}
        self._ended: set[str] = set()  # given up (ALERTed): never sent again
        self.failed: set[str] = set()  # a re-send failed (warned once)
        #: open orders (PENDING for the strategy) whose runtime cancel the venue refused: followed
        #: here too, by client order id -> the reason of that cancel
        self.refused_open: dict[str, str] = {}

    def sent(self, cid: str, *, long_ago: bool = False) -> None:
        """The cancel of ``cid`` was sent now (``long_ago``: before a restart, due at once)."""
        self._ended.discard(cid)
        self.refused_open.pop(cid, None)  # (a cancel taken: followed as any)
        self._items[cid] = _Cancel(float("-inf") if long_ago else self.clock())

    def refused(self, cid: str, reason: str) -> None:
        """The runtime's cancel of the open order ``cid`` was refused now: followed from now on,
        its first check due at once (the next check asks again if the venue still works it)."""
        self.sent(cid, long_ago=True)
        self.refused_open[cid] = reason

    def withdraw_refused(self, reasons: set[str] | None = None) -> list[str]:
        """Stop following the refused cancels made for ``reasons`` (every one when None): a
        resume withdrew the halt they carried out (those orders work on for the strategy), or
        the end of the run asks again. Returns their ids."""
        gone = [cid for cid, reason in self.refused_open.items() if reasons is None or reason in reasons]
        for cid in gone:
            del self.refused_open[cid]
            self._items.pop(cid, None)
            self._ended.discard(cid)
            self.failed.discard(cid)
        return gone

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """What a restart needs to continue the follow-up, by client order id (plain values). A
        cancel not checked yet (nothing to continue) is left out, unless it is a refused one."""
        saved: dict[str, dict[str, Any]] = {}
        for cid, item in self._items.items():
            ended = cid in self._ended or item.alerted
            if not item.checks and cid not in self.refused_open and not ended:
                continue
            saved[cid] = {"checks": item.checks, "resends": item.resends, "refused": item.refused,
                          "failed": item.failed, "unread": item.unread, "listed": item.listed,
                          "ended": ended}  # fmt: skip
            if cid in self.refused_open:
                saved[cid]["reason"] = self.refused_open[cid]
        return saved

    def restore(self, saved: dict[str, dict[str, Any]], cancelling: Iterable[str], open_orders: Iterable[str],
                reasons: Iterable[str] = ()) -> list[str]:  # fmt: skip
        """A warm restart continues the follow-ups ``saved`` (a :meth:`snapshot`) of the orders
        still ``cancelling``, and of the ``open_orders`` whose refused cancel had one of the
        ``reasons``: each is due at once (the restart was the wait), its counts continued; one
        ALERTed before is ALERTed again at its check (once) and never sent again. The others are
        left as they are (a fresh follow-up). Returns the ids restored."""
        cancelling, open_orders, reasons = set(cancelling), set(open_orders), set(reasons)
        restored = []
        for cid, was in saved.items():
            reason = was.get("reason")
            if cid not in cancelling and not (cid in open_orders and reason in reasons):
                continue
            item = _Cancel(float("-inf"), int(was.get("checks", 0)), int(was.get("resends", 0)),
                           int(was.get("refused", 0)), int(was.get("failed", 0)), int(was.get("unread", 0)),
                           was.get("listed", True), bool(was.get("ended")))  # fmt: skip
            if item.alerted:  # due at once with no check left: the ALERT, nothing sent
                item.checks = max(item.checks, self.limit)
            self._items[cid] = item
            self._ended.discard(cid)
            if cid not in cancelling:
                self.refused_open[cid] = str(reason)
            restored.append(cid)
        return restored

    def due(self, cancelling: Iterable[str], *, final: bool = False) -> tuple[list[str], list[str]]:
        """(cancels to check now, cancels given up just now) among the orders ``cancelling``;
        ``final``: every one not ended, whatever its age."""
        cancelling = list(cancelling)
        for cid in [c for c in self._items if c not in cancelling]:
            del self._items[cid]  # the venue answered
        self._ended &= set(cancelling)
        self.failed &= set(cancelling)
        self.refused_open = {c: r for c, r in self.refused_open.items() if c in cancelling}
        now = self.clock()
        due, exhausted = [], []
        for cid in cancelling:
            if cid in self._ended:
                continue
            item = self._items.setdefault(cid, _Cancel(now))  # (one sent before the clock saw it)
            if not final and now - item.sent_at < self.after * 2**item.checks:
                continue
            if item.checks < self.limit:
                due.append(cid)
            elif not final:
                exhausted.append(cid)
                self._ended.add(cid)
        due.sort(key=lambda c: self._items[c].sent_at)  # the longest waiting first (none starves)
        return due, exhausted

    def checked(self, cid: str, *, sent: bool, refused: bool = False, failed: bool = False,
                unread: bool = False) -> None:  # fmt: skip
        """``cid``'s due check is done: its cancel was sent again (``refused`` by the venue), its
        send ``failed`` (the venue listed it working), nothing was sent (the venue no longer lists
        the order working), or the venue's open orders could not be read (``unread``: nothing
        sent, whether it works unknown). Each moves it behind the others and on in its schedule."""
        item = self._items.setdefault(cid, _Cancel(self.clock()))
        item.sent_at = self.clock()
        item.checks += 1
        item.resends += sent
        item.refused += refused
        item.failed += failed
        item.unread += unread
        if unread:
            item.listed = None if item.checks == item.unread else item.listed  # the last read stands
        else:
            item.listed = sent or failed

    def overdue(self, cancelling: dict[str, Any]) -> int:
        """How many of the ``cancelling`` orders have gone unanswered past their first check (or
        were ALERTed): the venue may well still work them, and ``max_open_orders`` counts them.
        A cancel not yet checked is not counted: a strategy that cancels and replaces an order in
        one bar (as in the backtest, where the cancel is done at once) keeps its place for the
        replacement while the venue's confirmation is on its way."""
        items = self._items
        return sum(1 for cid in cancelling if (item := items.get(cid)) is not None and item.checks) if items else 0

    def resends(self, cid: str) -> int:
        """How often the cancel of ``cid`` was really sent again."""
        item = self._items.get(cid)
        return item.resends if item is not None else 0

    def alert(self, cid: str) -> str:
        """The ALERT for a cancel given up (see the module docstring)."""
        item = self._items.get(cid) or _Cancel(0.0)
        return self._alert(cid, item) + ("; still unconfirmed after the restart (ALERTed before it)"
                                         if item.alerted else "")  # fmt: skip

    def _alert(self, cid: str, item: _Cancel) -> str:
        sent = (f"sent again {item.resends} time(s)" + (f", refused {item.refused}" if item.refused else "")
                + (f", {item.failed} send(s) failed" if item.failed else "")
                + (f", the venue's open orders unreadable at {item.unread} check(s)" if item.unread else ""))
        if cid in self.refused_open:
            listed = {True: "still listed it working", False: "no longer lists it working",
                      None: "its open orders could not be read since"}[item.listed]  # fmt: skip
            return (f"ALERT order {cid}: the venue refused its cancel ({self.refused_open[cid]}; {sent}) and "
                    f"{listed}; it may still work at the venue (and fill): cancel it there, then ml4t-live "
                    "reconcile")  # fmt: skip
        if item.listed is None:  # no check could read the venue's open orders
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}); whether it still "
                    "works there is unknown and it may fill: check it at the venue (cancel it there), then "
                    "ml4t-live reconcile")  # fmt: skip
        if item.listed:
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}) and still listed it "
                    "working; it may still work at the venue (and fill): cancel it there, then ml4t-live "
                    "reconcile")  # fmt: skip
        return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}) and no longer lists it "
                "working; how it ended is unknown in this run (a warm restart looks it up): check the "
                "venue, then ml4t-live reconcile")  # fmt: skip


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
        """Send again the due cancels of the orders the venue still works (see the module
        docstring), then keep the follow-up in the journal. ``working``: the client order ids
        the venue lists as working (read here with one ``snapshot`` when None and a cancel is due)."""
        self._check_due_cancels(working, final=final, when=when)
        self._keep_follow_up()

    def _check_due_cancels(self, working: set[str] | None, *, final: bool, when: str) -> None:
        resends = self.cancel_resends
        started = resends.timer()
        due, exhausted = resends.due(self._followed_cancels(), final=final)
        for cid in exhausted:
            _log.error(resends.alert(cid))
        if not due:
            return
        look_up = working is None  # in the session (a restart looks up what it no longer lists itself)
        if working is None:
            try:
                snapshot = self.gateway.snapshot()
            except (VenueError, BridgeError) as exc:  # unknown is not "no longer working"
                due = [cid for cid in due if self._follows_cancel(cid)]
                for cid in due:  # each counts as its check: a read that never works ends in the ALERTs
                    resends.checked(cid, sent=False, unread=True)
                _log.warning("{} unanswered cancel(s) not sent again: the venue's open orders could not "
                             "be read ({}); each is checked again after its next spacing", len(due), exc)  # fmt: skip
                return
            working = {o.client_order_id for o in snapshot.open_orders}
            self._drain(block_until=None)  # what the venue said before its answer comes first
        sends = 0
        for i, cid in enumerate(due):
            if not self._follows_cancel(cid):
                continue
            if cid in working and sends and not final and resends.timer() - started >= resends.budget:
                left = [c for c in due[i:] if self._follows_cancel(c)]
                _log.info("{} due cancel(s) carried to the next check (this check's {:g} s are spent): {}",
                          len(left), resends.budget, ", ".join(left))  # fmt: skip
                break
            sends += cid in working
            self._resend_one(cid, cid in working, when)
        self._drain(block_until=None)  # a confirmation the gateway waited for is applied now
        if look_up:
            self._look_up_unlisted([c for c in due if c not in working and c in self.book.cancelling])

    def _look_up_unlisted(self, cids: list[str]) -> None:
        """Cancelling orders the venue no longer lists as working: looked up by client order id
        (one bounded gateway ``lookup``), so the end the venue gives them (cancelled, filled,
        rejected) ends them now, not at a warm restart. Not found, or the look-up fails: they stay
        cancelling (unknown is never read as gone) and the schedule goes on."""
        lookup = getattr(self.gateway, "lookup", None)
        if not cids or lookup is None:
            return
        try:
            found = lookup(cids)
        except (VenueError, BridgeError) as exc:
            _log.warning("could not look up {} cancelling order(s) the venue no longer lists ({}); they stay "
                         "cancelling", len(cids), exc)  # fmt: skip
            return
        self._drain(block_until=None)  # what the look-up reported (fills by execution id) first
        for cid in cids:
            venue_order = found.get(cid)
            if cid not in self.book.cancelling or venue_order is None or venue_order.status == "open":
                continue  # ended by the look-up's own events; not found; or listed working after all
            self._take_venue_end(self.book.get(cid), venue_order, "(found by look-up)", in_session=True)

    def _resend_one(self, cid: str, working: bool, when: str) -> None:
        resends = self.cancel_resends
        if not working:
            _log.info("order {}: its cancel is unconfirmed and the venue no longer lists it as working: not "
                      "sent again; it stays cancelling until the venue says how it ended (its events, a "
                      "look-up by client order id)", cid)  # fmt: skip
            resends.checked(cid, sent=False)
            return
        try:
            self.gateway.cancel(cid)
        except CancelRefused as exc:  # the venue still lists it: followed on (its events may end it)
            resends.checked(cid, sent=True, refused=True)
            _log.warning("order {}: its cancel{} was never confirmed and the venue still listed it working; "
                         "the cancel asked again ({} of at most {}) was refused ({}): followed until its "
                         "events end it", cid, when, resends.resends(cid), resends.limit, exc)  # fmt: skip
            return
        except (VenueError, BridgeError) as exc:  # warned once per order; counts as its check
            resends.checked(cid, sent=False, failed=True)
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
        resends.checked(cid, sent=True)
        _log.warning("order {}: its cancel{} was never confirmed and the venue still listed it working: "
                     "cancel asked again ({} of at most {}; the venue's answer or events end it)", cid, when,
                     resends.resends(cid), resends.limit)  # fmt: skip
