"""Cancels the venue never answered: sent again, aged, spaced, bounded per bar, then ALERTed.

A cancel the runtime (HALTED, ``cancel-all``, the end-of-run policy) or the strategy
(``cancel_order``) sent leaves its order in ``Book.cancelling`` (CANCELLED for the strategy) until
the venue confirms it or fills it instead. A venue can lose a cancel: IB never answers a request
written in the gateway's restart second (IB-05); Alpaca can leave an order ``pending_cancel``.
Left alone, such an order keeps working at the venue for the rest of the run and can fill.

:class:`CancelResends` (here) keeps each followed cancel's schedule and counts;
:class:`~ml4t_live.cancel_checks.CancelResending`, mixed into
:class:`~ml4t_live.venue_broker.VenueBroker`, runs the checks (``_resend_due_cancels``) with each
reconciliation check (the fill barrier, before each live bar) and at the end of a
run; only when a cancel is *due* does it read the venue's open orders (one ``snapshot``):

* a cancel is checked ``after`` seconds (default 30 s) after it was sent, then after twice as
  long as the previous spacing (30, 60, 120, 240, 480 s), and every 480 s after that (the longest
  spacing: ``after`` x 2^(``limit`` - 1)) for as long as the order is cancelling;
* checked, and the venue still lists the order as working: the cancel is sent again, never the
  order itself (a WARNING after the gateway took it names the order and how many times), at most
  ``limit`` (5) tries in all. A repeat the venue refuses (``CancelRefused``: filled, or already
  being cancelled: IB 10148 ``PendingCancel``, Alpaca 422 ``pending_cancel``) does not end the
  follow-up: the order's own events may end it, else the next check looks again. A send that
  fails (``VenueError`` / ``BridgeError``) is one of the tries (the cancel was tried): it goes
  behind the others and waits for the next spacing. A check whose read of the venue's open orders
  fails sends nothing and tries nothing (whether it works is unknown): once the read works again,
  the tries left are used;
* checked, and the venue no longer lists it: in the session it is looked up by client order id
  first (one gateway ``lookup`` for up to 10 such orders of the check, those looked up longest ago
  first so each gets its turn, within the check's budget): the
  end the venue gives it (cancelled, rejected; filled: its executions decide, and it is no longer
  counted by ``max_open_orders`` unless a later check lists it working, which also ends what it
  is owed: :meth:`~ml4t_live.owed_executions.OwedExecutions.listed_working`) ends it, and one the
  venue says is working after all counts as listed; one IB shows by its executions alone
  ("unknown": it may still work under another client id) is in doubt, still counted by
  ``max_open_orders``, its ALERT saying so (unless a later check lists it working: then its ALERT
  says that); not found (or the look-up failing), nothing is
  sent (an INFO line) and it stays cancelling until the venue's events or a later check's
  look-up end it (a warm restart looks it up too);
* the due cancels of one check go out in batches (:mod:`~ml4t_live.cancel_checks`): a gateway
  with ``cancel_many`` (IB, whose cancel waits for the answer) gets up to ``at_once`` (default 40)
  in one call, their waits overlapping, so a batch costs about one wait (on a silent IB one
  ``cancel_wait`` plus ib_async's pacing: 40 fit in its 45 messages a second), not one per
  order; any other gateway (Alpaca) one cancel a batch. One check sends batches for ``budget``
  seconds (default 5 s) at most, measured from its start (the snapshot and the look-up
  included) and at least one batch: the rest are carried to the next check (an INFO line), so a
  bar waits about ``budget`` plus one batch's or look-up's worst, not one wait per order due;
  each check takes the longest-waiting cancels first (a carried one has waited since its last
  check, a tried one since it was tried), so a carried one is not passed over again and a
  failing one blocks no other. The budget is counted per batch, not per cancel in it: a batch is
  one wait whatever its size, and cutting it by count within the budget would only spread the
  same wait over more bars;
* at the check after its ``limit``-th, still unanswered: one ERROR ``ALERT order ...`` names the order (how
  often it was sent again, whether the venue still listed it working); the checks go on every
  480 s (sending only the tries left; looking it up when the venue no longer lists it), so a venue
  that answers again, or ends the order, still ends it in the run. The end of a run lists it in
  ``left_at_venue``.

A cancel of the runtime's (HALTED, ``cancel-all``, the end of a run) that the venue *refused*
while the order is still open in the book (e.g. Alpaca 422: already ``pending_cancel`` after a DELETE
the journal never saw; IB 10148) is followed the same way (:attr:`CancelResends.refused_open`): the
order stays PENDING for the strategy, HALTED does not send it again at each bar; the next check
(due at once) and the later ones (spaced as above) send the cancel again while the venue lists the
order working (never the order), and the ALERT ends it; its own events (filled, cancelled) end it
at any time. A repeat the venue takes makes it an ordinary cancelled order (cancelling until
confirmed).

A restart marks every order still cancelling as sent long ago (due at once); the end of a run
(``final``) checks once more every order still cancelling after its wait, whatever its age and
the budget (every batch goes), while it has had fewer than ``limit`` checks (after that its 480 s spacing holds, and
a cancel with no tries left is only looked at, never sent). A journal's replay sends nothing.

The follow-up outlives the process: :meth:`CancelResends.snapshot` (plain dicts: per order its
checks, the resend / refused / failed / unread counts, what the last read saw, whether it was
ALERTed, a refused open order's reason) is kept in the journal's meta (``cancel_follow_up``,
:mod:`~ml4t_live.cancel_follow_up`) when it changes, and a warm restart restores it
(:meth:`CancelResends.restore`): each order still cancelling (and each open order whose halt's
cancel was refused, while the strategy is still HALTED) is due at once, its count continuing; one
that had been ALERTed is ALERTed again once at the restart ("still unconfirmed after the
restart"), and sent again only if it has tries left. An order the journal has no follow-up for
(an older journal) starts over, as does a fresh cancel, and as does a newer cancel of a refused
open order (the strategy's ``cancel_order``, a repeat the venue took) the journal did not see yet:
a refused follow-up continues only for an order still open. The restart looks up the orders the
venue no longer lists before its check: one found working is checked as a listed one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: seconds a cancel goes unanswered before it is checked (then twice the previous spacing)
RESEND_AFTER = 30.0
#: how often one cancel is sent again at most, and the check that ALERTs (later checks only look)
RESEND_LIMIT = 5
#: seconds one check spends sending cancels again (at least one batch); the rest wait for the next
RESEND_BUDGET = 5.0
#: cancels sent again in one ``cancel_many`` call at most (IB: within one second of ib_async's
#: pacing, 45 messages, with room for the check's own requests)
RESEND_AT_ONCE = 40


@dataclass(slots=True)
class _Cancel:
    sent_at: float  # the last send or the last check
    checks: int = 0  # due checks so far: they space the next one; the limit-th ALERTs
    resends: int = 0  # times really sent again (the gateway took it, or the venue refused it)
    refused: int = 0  # of those, refused by the venue
    failed: int = 0  # sends that failed (VenueError / BridgeError): tries too
    unread: int = 0  # checks whose read of the venue's open orders failed (nothing sent or tried)
    listed: bool | None = None  # whether the venue listed it working at the last check that read (None: none did)
    alerted: bool = False  # ALERTed before a restart (ALERTed again once after it)
    # the last word on it was a look-up finding it filled, its executions not all come (not counted
    # by max_open_orders); cleared once the venue lists it working to this client id, at any check
    # (its cancel due or not) or reconciliation (a stale look-up: listed_working, with the debt);
    # kept over a restart
    found_filled: bool = False
    answer: str = ""  # the venue's last refusal of the cancel followed, or the gateway's bug (the ALERT quotes it)
    bug: bool = False  # the cancel followed raised a bug in the gateway (whether it went out is unknown)
    answer_bug: bool = False  # ``answer`` is that bug's text, not the venue's refusal
    # the last word on it was a look-up showing it by its executions alone ("unknown": it may still
    # work under another IB client id); cleared once the venue lists it working (listed_working; found filled, its
    # ALERT says that first); counted by max_open_orders still; not kept over a restart (its
    # look-up says again)
    found_unknown: bool = False
    # the last look-up by client order id could not read it (its state unknown, not "not found");
    # not kept over a restart (its look-up says again)
    look_up_failed: bool = False


class CancelResends:
    """When each unanswered cancel was last sent or checked, and how often it was sent again."""

    def __init__(self, *, after: float = RESEND_AFTER, limit: int = RESEND_LIMIT,
                 budget: float = RESEND_BUDGET, at_once: int = RESEND_AT_ONCE,
                 clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if after < 0 or limit < 0 or budget < 0 or at_once < 1:
            raise ValueError("CancelResends needs after >= 0, limit >= 0, budget >= 0 and at_once >= 1")
        self.after = after
        self.limit = limit
        self.budget = budget
        self.at_once = at_once  # cancels sent again in one batch at most (a gateway with cancel_many)
        self.clock = clock  # the schedule's
        self.timer = timer  # the per-check budget's (the time a bar really waits)
        self._items: dict[str, _Cancel] = {}
        self._ended: set[str] = set()  # ALERTed in this run (checked on, never ALERTed again)
        self._looked_up: dict[str, float] = {}  # when each was last looked up by client order id
        self.failed: set[str] = set()  # a re-send failed (warned once)
        #: open orders (PENDING for the strategy) whose runtime cancel the venue refused: followed
        #: here too, by client order id -> the reason of that cancel
        self.refused_open: dict[str, str] = {}

    def sent(self, cid: str, *, long_ago: bool = False) -> None:
        """The cancel of ``cid`` was sent now (``long_ago``: before a restart, due at once)."""
        self._ended.discard(cid)
        self.refused_open.pop(cid, None)  # (a cancel taken: followed as any)
        self._items[cid] = _Cancel(float("-inf") if long_ago else self.clock())

    def due_at_once(self, cid: str) -> None:
        """``cid``'s next check is due at once, its counts kept (a late look-up found its order
        working after a check had counted it unlisted)."""
        item = self._items.get(cid)
        if item is not None:
            item.sent_at = float("-inf")

    def refused(self, cid: str, reason: str, answer: str = "", *, bug: bool = False) -> None:
        """The runtime's cancel (for ``reason``) of the open order ``cid`` was refused now (the
        venue's ``answer``; ``bug``: the gateway's cancel raised a bug, ``answer`` its text, and
        whether it went out is unknown): followed from now on, its first check due at once (the
        next check asks again if the venue still works it)."""
        self.sent(cid, long_ago=True)
        self.refused_open[cid] = reason
        item = self._items[cid]
        item.answer, item.bug, item.answer_bug = answer, bug, bug

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
                          "ended": ended, "found_filled": item.found_filled}  # fmt: skip
            if cid in self.refused_open:
                saved[cid]["reason"] = self.refused_open[cid]
            if item.answer:
                saved[cid]["answer"] = item.answer
            if item.bug:
                saved[cid]["bug"] = True
                saved[cid]["answer_bug"] = item.answer_bug
        return saved

    def restore(self, saved: dict[str, dict[str, Any]], cancelling: Iterable[str], open_orders: Iterable[str],
                reasons: Iterable[str] = ()) -> list[str]:  # fmt: skip
        """A warm restart continues the follow-ups ``saved`` (a :meth:`snapshot`) of the orders
        still ``cancelling``, and of the ``open_orders`` whose refused cancel had one of the
        ``reasons``: each is due at once (the restart was the wait), its counts continued; one
        ALERTed before is ALERTed again at its check (once), and sent again only with tries
        left. A refused cancel's follow-up (``reason``) whose order is cancelling now is not
        restored: a newer cancel was taken since (the strategy's ``cancel_order``, or a repeat),
        which starts over as in the session. The others are left as they are (a fresh
        follow-up). Returns the ids restored."""
        cancelling, open_orders, reasons = set(cancelling), set(open_orders), set(reasons)
        restored = []
        for cid, was in saved.items():
            reason = was.get("reason")
            if reason is not None:  # the refused cancel of an order still open, while its reason holds
                if cid not in open_orders or reason not in reasons:
                    continue
            elif cid not in cancelling:
                continue
            item = _Cancel(float("-inf"), int(was.get("checks", 0)), int(was.get("resends", 0)),
                           int(was.get("refused", 0)), int(was.get("failed", 0)), int(was.get("unread", 0)),
                           was.get("listed", True), bool(was.get("ended")),
                           bool(was.get("found_filled")), str(was.get("answer", "")), bool(was.get("bug")),
                           bool(was.get("answer_bug")))  # fmt: skip
            if item.alerted:  # due at once, past its limit: the ALERT again (sent only with tries left)
                item.checks = max(item.checks, self.limit)
            self._items[cid] = item
            self._ended.discard(cid)
            if cid not in cancelling:
                self.refused_open[cid] = str(reason)
            restored.append(cid)
        return restored

    def due(self, cancelling: Iterable[str], *, final: bool = False) -> tuple[list[str], list[str]]:
        """(cancels to check now, cancels to ALERT now: due after their ``limit``-th check) among
        the orders ``cancelling``; ``final``: every one whatever its age, until its ``limit``-th
        check (after that its spacing holds: a flatten retried at every bar reads nothing more)."""
        cancelling = list(cancelling)
        live = set(cancelling)
        for cid in [c for c in self._items if c not in live]:
            del self._items[cid]  # the venue answered
        self._ended &= live
        self.failed &= live
        self._looked_up = {c: t for c, t in self._looked_up.items() if c in live}
        self.refused_open = {c: r for c, r in self.refused_open.items() if c in live}
        now = self.clock()
        due, alerts = [], []
        for cid in cancelling:
            item = self._items.setdefault(cid, _Cancel(now))  # (one sent before the clock saw it)
            forced = final and item.checks < self.limit  # (once the limit is reached, final waits too)
            if not forced and now - item.sent_at < self.spacing(item.checks):
                continue
            if item.checks >= self.limit and cid not in self._ended:
                alerts.append(cid)
                self._ended.add(cid)
            due.append(cid)
        due.sort(key=lambda c: self._items[c].sent_at)  # the longest waiting first (none starves)
        return due, alerts

    def spacing(self, checks: int) -> float:
        """Seconds from a cancel's last send or check to its next check, after ``checks`` checks:
        ``after`` doubled at each, up to the ``limit``-th spacing (then it holds)."""
        return self.after * 2 ** min(checks, max(self.limit - 1, 0))

    def to_look_up(self, cids: list[str], at_most: int) -> list[str]:
        """The ``at_most`` of ``cids`` looked up longest ago (never first), now counted as looked
        up: the look-ups of one check go round, none starves."""
        chosen = sorted(cids, key=lambda c: self._looked_up.get(c, float("-inf")))[:at_most]
        now = self.clock()
        for cid in chosen:
            self._looked_up[cid] = now
        return chosen

    def may_send(self, cid: str) -> bool:
        """Whether the cancel of ``cid`` has tries left (sends made or failed: ``limit`` at most)."""
        item = self._items.get(cid)
        return item is None or item.resends + item.failed < self.limit

    def checked(self, cid: str, *, listed: bool | None, sent: bool = False, refused: str | None = None,
                failed: bool = False) -> None:  # fmt: skip
        """``cid``'s due check is done: the venue ``listed`` it working (None: its open orders
        could not be read), and its cancel was sent again (``refused``: the venue's refusal), or
        its send ``failed``, or nothing was sent. Each moves it behind the others and on in its
        schedule."""
        item = self._items.setdefault(cid, _Cancel(self.clock()))
        item.sent_at = self.clock()
        item.checks += 1
        item.resends += sent
        if refused is not None:
            item.refused += 1
            item.answer, item.answer_bug = refused, False
        item.failed += failed
        if listed is None:
            item.unread += 1
        else:
            item.listed = listed  # (listed: what a look-up found ends at :meth:`listed_working`, with the debt)

    def listed_working(self, cid: str) -> None:
        """The venue listed ``cid`` working to this client id (a check's open orders or look-up, a
        reconciliation's, an unknown order's look-up, a warm restart's retried one: see
        :meth:`~ml4t_live.cancel_checks.CancelResending._listed_now`): it is neither found filled
        nor shown by its executions alone any more, whether
        or not its check then gets to send (a carried one too). Called only with
        :meth:`~ml4t_live.owed_executions.OwedExecutions.listed_working`, through
        :meth:`~ml4t_live.cancel_checks.CancelResending._listed_now`, so the finding and the
        debt end together: a later look-up finding it filled says so afresh and owes it afresh."""
        item = self._items.get(cid)
        if item is not None:
            item.found_unknown = item.found_filled = False

    def overdue(self, cancelling: dict[str, Any]) -> int:
        """How many of the ``cancelling`` orders have gone unanswered past their first check: the
        venue may well still work them, and ``max_open_orders`` counts them.
        A cancel not yet checked is not counted: a strategy that cancels and replaces an order in
        one bar (as in the backtest, where the cancel is done at once) keeps its place for the
        replacement while the venue's confirmation is on its way."""
        items = self._items
        return sum(1 for cid in cancelling if (item := items.get(cid)) is not None and item.checks
                   and not item.found_filled) if items else 0  # fmt: skip

    def found_filled(self, cid: str) -> bool:
        """A look-up found ``cid`` filled at the venue (its executions to come): True the first
        time (said once; again if the venue listed it working since), False after; until the venue lists it working again (:meth:`listed_working`),
        ``overdue`` leaves it out and its ALERT says it was found filled."""
        item = self._items.setdefault(cid, _Cancel(self.clock()))
        first, item.found_filled = not item.found_filled, True
        return first

    def found_unknown(self, cid: str) -> None:
        """A look-up showed ``cid`` by its executions alone ("unknown": whether it still works is
        unknown, so it is not found filled and ``overdue`` still counts it): noted for its ALERT,
        until the venue lists it working again (:meth:`listed_working`)."""
        self._items.setdefault(cid, _Cancel(self.clock())).found_unknown = True

    def looked_up(self, cids: Iterable[str], unread: Iterable[str] = ()) -> None:
        """A look-up by client order id answered for ``cids`` but could not read ``unread``
        (noted for their ALERT until a later look-up reads them)."""
        unread = set(unread)
        for cid in cids:
            self._items.setdefault(cid, _Cancel(self.clock())).look_up_failed = cid in unread

    def resends(self, cid: str) -> int:
        """How often the cancel of ``cid`` was really sent again."""
        item = self._items.get(cid)
        return item.resends if item is not None else 0

    def alert(self, cid: str) -> str:
        """The ALERT for a cancel unanswered after its ``limit``-th check (see the module docstring)."""
        item = self._items.get(cid) or _Cancel(0.0)
        every = f"; checked again every {self.spacing(self.limit):g} s"
        label = "the last error" if item.answer_bug else "the venue's last refusal"
        answer = f"; {label}: {item.answer}" if item.answer else ""
        return self._alert(cid, item) + answer + every + ("; still unconfirmed after the restart (ALERTed before it)"
                                                          if item.alerted else "")  # fmt: skip

    def _alert(self, cid: str, item: _Cancel) -> str:
        sent = (f"sent again {item.resends} time(s)" + (f", refused {item.refused}" if item.refused else "")
                + (f", {item.failed} send(s) failed" if item.failed else "")
                + (f", the venue's open orders unreadable at {item.unread} check(s)" if item.unread else ""))
        act = "cancel it there, then ml4t-live reconcile"
        if cid in self.refused_open:
            listed = {True: "still listed it working", False: "no longer lists it working",
                      None: "its open orders could never be read"}[item.listed]  # fmt: skip
            if item.bug:  # (the strategy's own cancel, reason STRATEGY_CANCEL: the only one followed so)
                return (f"ALERT order {cid}: the strategy's cancel raised a bug in the gateway ({sent}); "
                        f"whether it went out is unknown, and the venue {listed}; it may still work at the venue "
                        f"(and fill): {act}")  # fmt: skip
            return (f"ALERT order {cid}: the venue refused its cancel ({self.refused_open[cid]}; {sent}) and "
                    f"{listed}; it may still work at the venue (and fill): {act}")  # fmt: skip
        if item.found_filled:
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}); a look-up by client order "
                    "id found it filled, but its executions have not all come: check the position at the venue, "
                    "then ml4t-live reconcile")  # fmt: skip
        if item.found_unknown:
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}); a look-up by client order "
                    "id shows it by its executions alone (IB lists it neither open to this client id nor "
                    "completed): it may still work at the venue under another client id (and fill), and "
                    "max_open_orders counts it: check it there; cancel it there (ml4t-live cancel-all with that "
                    "client id), then ml4t-live reconcile")  # fmt: skip
        if item.listed is None:  # no check could read the venue's open orders
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}); whether it still "
                    f"works there is unknown and it may fill: check it at the venue ({act})")  # fmt: skip
        if item.listed:
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}) and still listed it "
                    f"working; it may still work at the venue (and fill): {act}")  # fmt: skip
        if item.look_up_failed:
            return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}) and no longer lists it "
                    "working, and its look-up by client order id could not read it; whether it still works "
                    "there is unknown and it may fill: check the venue, then ml4t-live reconcile")  # fmt: skip
        return (f"ALERT order {cid}: the venue never confirmed its cancel ({sent}) and no longer lists it "
                "working, nor found it by client order id; how it ended is unknown: check the venue, then "
                "ml4t-live reconcile")  # fmt: skip
