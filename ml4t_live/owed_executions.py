"""Executions a look-up says the venue made but that never came: waited for, then made up, once.

In the session, a look-up by client order id (of a cancelling order the venue no longer lists, of
an order of unknown outcome) can find an order *filled* beyond what its events brought. Its
executions are then on their way (the look-up itself reports those within its reach), and they
decide: none is made up at once (it would count twice). But they may never come (a stream that
dropped them, executions the venue no longer lists); left alone, the order would stay cancelling
(or pending) for the rest of the run, and its position would differ from the venue's with nothing
to end it.

So the order is *owed* its executions (:class:`OwedExecutions`, which the
:class:`~ml4t_live.venue_broker.VenueBroker` holds as ``owed``; at each reconciliation :func:`settle`
looks the orders up, applies what the look-up reported and makes up what is missing,
:func:`made_up_fill`): once a reconciliation has passed since the
finding (every ``reconcile_every`` seconds; 5 s later while a position difference is being
confirmed, as the one its missing executions leave; one skipped because the venue's positions could
not be read does not count), the reconciliation after it looks the order up once more. The venue
still saying filled beyond the order's fills (those the look-up's own executions brought included),
the missing quantity is applied as a warm restart applies it (reconstructed, at the order's limit or
stop price, else the asset's last price; execution id ``<client order id>:filled-while-away``),
once, with an ERROR ``ALERT`` that says so; said "unknown" (IB shows the order by its executions
alone, its quantity their sum), nothing is made up whatever the quantity: those executions are real
and reach the book as events (a made-up part would count them twice); the order is in doubt, below.
Executions that came meanwhile settle it (nothing made up); a look-up that fails or does not find the order leaves it owed until the next reconciliation;
the venue giving it another end (cancelled, rejected) ends it so. Listed working after all, it is
no longer owed: found open by that look-up, listed by the reconciliation's own open orders (read
before :func:`settle`, which then does not look it up: nothing is made up for it; or the read
after it), by a cancel check (its open orders, whether its own cancel is due or another's made
the check read them, or its look-up), by an unknown order's look-up or a warm restart's retried
one. The debt ends there only through
:meth:`~ml4t_live.cancel_checks.CancelResending._listed_now` (which ends a cancelling order's
found-filled note with it; :func:`settle` calls it through its ``listed``): a later look-up finding
it filled owes it afresh (:meth:`OwedExecutions.listed_working`). A venue saying
filled but no more than the order's fills while the order is short of its quantity (IB shows an
order it lists neither open nor completed by its executions alone: ``SAID_FILLED``'s "unknown")
leaves how much it filled unknown: nothing is made up, the order stays as it is (pending, or
cancelling), owed, looked up again at each reconciliation, with one ERROR ``ALERT``
(:meth:`OwedExecutions._doubt`); once the venue has said the same "filled" at ``DOUBT_READS`` (5)
reconciliations in a row it is no longer looked up and ends CANCELLED at its fills (the runtime's choice: reason
"ended CANCELLED at its fills (the runtime's choice: the venue said at 5 reconciliations in a row that it
filled N of M, never that it was cancelled)"), with a last ERROR ``ALERT`` naming both quantities. The count
is of the reconciliations' look-ups only: another look-up that first finds the order in doubt (a warm
restart's, a cancel check's, an unknown order's) starts it at 0, and their later answers leave it (a
line each). Said "unknown" (IB lists
open only the orders of the client id that placed them: one working under another client id
shows so too), it is never ended on that answer: it stays owed, looked up after 2, 4, 8 ...
reconciliations (at most ``BACK_OFF_MOST``), a WARNING at each such look-up (its only line), one ERROR ``ALERT``
when the spacing reaches ``BACK_OFF_MOST`` (the operator settles it at the venue). A restart does not carry the debt: its own
look-up applies what the venue says the order filled beyond its fills (said "filled"), and owes an
order found filled no more than its fills, or said "unknown" whatever the quantity, as above
(:meth:`~ml4t_live.broker_steps.BarSteps._take_venue_end`).
Either made-up fill ends the order at what the venue said it filled: real executions of it that
still come later (IB's after a reconnect, a slow stream) are ignored by the book, with a WARNING,
in the session and in a warm restart's replay alike (:meth:`~ml4t_live.book.Book._new_real_part`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from loguru import logger
from ml4t.backtest import Order

from .book import Book, made_up_fill_id
from .errors import BridgeError, LookupIncomplete, VenueError
from .events import OrderCancelled, OrderFilled
from .quantities import EPS as _EPS

_log = logger.bind(component="venue-broker")

#: a look-up's statuses that say the order filled: "unknown" is an order IB shows by its
#: executions alone (not working under this client id, maybe under another; its end unknown;
#: filled at least their sum)
SAID_FILLED = frozenset({"filled", "unknown"})

#: reconciliations in a row whose look-ups said an order filled the same, no more than its fills
#: (in doubt), after which it is no longer looked up: it ends CANCELLED at its fills (the runtime's
#: choice); said "unknown", it is looked up less often from then on
DOUBT_READS = 5

#: the most reconciliations between two look-ups of an order IB keeps showing by its executions
#: alone ("unknown": it may still be working under another client id, so it is never ended)
BACK_OFF_MOST = 64


class OwedExecutions:
    """The orders owed their executions, each with the quantity the venue said it filled and the
    reconciliations passed when it said so; the reconciliations passed in this run."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self._owed: dict[str, tuple[float, int]] = {}
        # found filled no more than the book has (ALERTed): what the venue said, how often in a row
        self._doubted: dict[str, tuple[float, int]] = {}
        self._passed = 0

    def __contains__(self, cid: object) -> bool:
        return cid in self._owed

    def owe(self, order: Order, venue_order: Any, when: str) -> None:
        """A look-up found ``order`` filled: beyond its fills, its executions decide, until the
        reconciliation after the next one that passes (said once); no more than its fills while
        the order is short of its quantity, or said "unknown" (whatever the quantity), its outcome
        is in doubt (:meth:`_doubt`)."""
        cid = order.order_id
        said = venue_order.filled_quantity
        quantity, since = self._owed.get(cid, (0.0, self._passed))
        unknown_end = venue_order.status != "filled"  # "unknown": nothing is ever made up for it
        if unknown_end or said <= order.filled_quantity + _EPS:
            self._owed[cid] = (max(quantity, order.quantity), since)
            if cid in self._doubted:  # (the count is the reconciliations': this answer leaves it)
                self._again(order, said, self._doubted[cid][0])
            else:
                self._doubt(order, said, when, quantity if quantity > _EPS else None, unknown_end, counted=False)
            return
        if cid not in self._owed:
            _log.warning("order {} filled {:g} at the venue {}, {:g} of it not reported yet: its executions "
                         "decide; if they have not come by the next reconciliation (the venue still saying "
                         "filled), the missing quantity is applied at the order's price", cid, said, when,
                         said - order.filled_quantity)  # fmt: skip
        self._owed[cid] = (max(quantity, said), since)

    def listed_working(self, cid: str) -> bool:
        """A cancel check (its open orders, its cancel due or not, or a look-up finding it open), a
        reconciliation (either read's open orders, or its look-up: :func:`settle`), an unknown
        order's look-up or a warm restart's retried one listed ``cid`` working to this client id after a look-up found it filled:
        that finding is contradicted (a stale look-up), so it is no longer owed, in doubt or not.
        Called only through :meth:`~ml4t_live.cancel_checks.CancelResending._listed_now`, which
        ends a cancel follow-up's finding with it. Should it fill later, its executions
        come as events; a later look-up finding it filled owes it afresh, its wait starting then
        (a debt kept from the stale finding would make its fill up at the first reconciliation
        after it, before its executions could come). Returns whether it was owed."""
        self._doubted.pop(cid, None)
        return self._owed.pop(cid, None) is not None

    def passed(self) -> None:
        """A position reconciliation passed (the venue's positions read and compared)."""
        self._passed += 1

    def due(self) -> list[str]:
        """The orders to look up again: owed since before the last reconciliation that passed.
        Those no longer owed (their executions came, their order ended otherwise) are forgotten."""
        for cid in [c for c in self._owed if not self._still_owed(c)]:
            del self._owed[cid]
            self._doubted.pop(cid, None)
        return [cid for cid, (_, since) in self._owed.items() if since < self._passed]

    def answer(self, cid: str, venue_order: Any) -> Literal["fill", "end", "give_up", "working"] | None:
        """What the venue says now of owed ``cid`` (``venue_order``, None: not found), once the
        executions its look-up reported are applied, calls for: ``"fill"`` the missing quantity
        made up (ending the order), ``"end"`` the end the venue gives it, ``"working"`` the order
        listed working (still owed here: :func:`settle` ends the debt through its ``listed``, with
        the cancel follow-up's finding), None nothing. An order
        not found, found filled no more than its fills, or said "unknown" whatever its quantity
        (:meth:`_doubt`; the executions an "unknown" answer sums are real and reach the book as
        events: nothing is made up for them), stays owed; found so at ``DOUBT_READS``
        reconciliations in a row saying the same "filled", ``"give_up"``: no longer owed, :func:`settle`
        cancels it at its fills, with a last ERROR ALERT (that look-up's only line, as a back-off's
        WARNING is; the others say "again"). An "unknown" answer (IB shows the order
        by its executions alone: it may still be working under another client id) never ends
        it: it stays owed, looked up less often (:meth:`_back_off`)."""
        if not self._still_owed(cid):
            self._owed.pop(cid, None)
            self._doubted.pop(cid, None)
            return None
        if venue_order is None:
            _log.info("order {} (found filled, its executions not come) not found by this look-up: looked "
                      "up again at the next reconciliation", cid)  # fmt: skip
            return None
        unknown_end = venue_order.status == "unknown"
        if unknown_end or (venue_order.status == "filled"
                           and venue_order.filled_quantity <= self.book.get(cid).filled_quantity + _EPS):
            order = self.book.get(cid)
            last = self._doubted.get(cid)
            self._doubt(order, venue_order.filled_quantity, "(found by look-up)", self._owed[cid][0], unknown_end)
            said, times = self._doubted[cid]
            if times < DOUBT_READS:
                if last is not None:
                    self._again(order, said, last[0])
                return None
            if unknown_end:  # IB may work it under another client id: never ended on this answer
                self._back_off(order, said, times)
                return None
            del self._owed[cid], self._doubted[cid]
            _log.error("ALERT order {}: the venue said at {} reconciliations in a row that it filled {:g} of {:g}; the book has "
                       "{:g}: no longer looked up, it ends CANCELLED at its fills (the runtime's choice: the venue said "
                       "it filled {:g} of {:g}, never that it was cancelled); should it have filled more, the position reconciliation shows it: check the venue "
                       "(ml4t-live reconcile)", cid, times, said, order.quantity, order.filled_quantity, said,
                       order.quantity)  # fmt: skip
            return "give_up"
        if venue_order.status == "open":
            return "working"
        del self._owed[cid]
        self._doubted.pop(cid, None)
        return "fill" if venue_order.status in SAID_FILLED else "end"

    def _back_off(self, order: Order, said: float, times: int) -> None:
        """The venue has said at ``times`` reconciliations in a row that ``order`` (shown by its
        executions alone: "unknown") filled ``said``: it stays as it is and owed, looked up again
        after 2, 4, 8 ... reconciliations (at most ``BACK_OFF_MOST``), a WARNING at each such
        look-up (its only line) and one ERROR ALERT when the spacing reaches ``BACK_OFF_MOST``:
        the operator has to settle it at the venue."""
        cid = order.order_id
        gap = min(2 ** (times - DOUBT_READS + 1), BACK_OFF_MOST)
        self._owed[cid] = (self._owed[cid][0], self._passed + gap - 1)
        _log.warning("order {}: the venue said at {} reconciliations in a row that it filled {:g} of {:g}, by its executions "
                     "alone (IB lists it open only to the client id that placed it: it may still be working "
                     "under another); the book has {:g}: it stays {} and is looked up again after {} "
                     "reconciliations (2, 4, 8 ..., at most {}): check the venue (ml4t-live reconcile)", cid, times,
                     said, order.quantity, order.filled_quantity, self._state(cid), gap, BACK_OFF_MOST)  # fmt: skip
        if gap == BACK_OFF_MOST and 2 ** (times - DOUBT_READS) < BACK_OFF_MOST:  # reached now: once
            _log.error("ALERT order {}: the venue has said at {} reconciliations in a row that it filled {:g} of {:g}, by its "
                       "executions alone; the book has {:g} of {:g}: it may still be working at the venue under "
                       "another client id (and fill). It stays {}, counted by max_open_orders, looked up every {} "
                       "reconciliations, never ended on this answer: check the order at the venue; cancel it "
                       "there (or ml4t-live cancel-all with the client id that placed it), then ml4t-live "
                       "reconcile", cid, times, said, order.quantity, order.filled_quantity, order.quantity,
                       self._state(cid), BACK_OFF_MOST)  # fmt: skip

    def _state(self, cid: str) -> str:
        return "cancelling" if cid in self.book.cancelling else "pending"

    def _doubt(self, order: Order, said: float, when: str, before: float | None, unknown: bool, *,
               counted: bool = True) -> None:  # fmt: skip
        """The venue says ``order`` filled ``said``, no more than its fills, though it is short of
        its quantity (and of what the venue said ``before``, if it said): how much it filled is
        unknown (IB shows an order it lists neither open nor completed by its executions alone).
        It stays as it is (pending, or cancelling), owed, and is looked up again at each
        reconciliation, until the venue says "filled" more (made up; said "unknown", nothing is
        ever made up), another end, or its executions come,
        or it said the same "filled" at ``DOUBT_READS`` reconciliations in a row (:meth:`answer`;
        ``unknown``: the venue said "unknown", looked up less often then, never ended on it). The
        count is of the reconciliations' answers (``counted``): the look-up that first finds the
        doubt elsewhere (a warm restart's, a cancel check's, an unknown order's) starts it at 0,
        and their later answers leave it (:meth:`owe`). An ERROR ALERT the first time; the caller
        says each later answer in one line (:meth:`_again`, or the back-off's or the end's)."""
        cid = order.order_id
        more = order.filled_quantity > said + _EPS
        last = self._doubted.get(cid)
        same = last is not None and abs(last[0] - said) <= _EPS
        self._doubted[cid] = (said, (last[1] if same and last is not None else 0) + counted)
        if last is not None:
            return
        _log.error("ALERT order {}: the venue says it filled {:g} {}{}; the book has {:g} of {:g}{}: how much "
                   "it filled is unknown; it stays {} and is looked up again at each reconciliation ({} once "
                   "the venue has said the same at {} reconciliations): check the venue (ml4t-live reconcile)", cid,
                   said, when, f", having said {before:g} before" if before is not None else "",
                   order.filled_quantity, order.quantity, " (more than the venue says)" if more else "",
                   self._state(cid), "looked up less often, never ended on this answer (IB shows it by its "
                   "executions alone: it may still be working under another client id)" if unknown else "ended "
                   "CANCELLED at its fills", DOUBT_READS)  # fmt: skip

    def _again(self, order: Order, said: float, last: float) -> None:
        """The venue says again that ``order``, in doubt, filled ``said`` (``last`` the time before):
        a WARNING while the book holds more than that, else an INFO line."""
        more = order.filled_quantity > said + _EPS
        what = (f"says again it filled {said:g}" if abs(said - last) <= _EPS
                else f"now says it filled {said:g} (it said {last:g} before)")  # fmt: skip
        _log.log("WARNING" if more else "INFO", "order {}: the venue {}; the book has {:g} of {:g}: still looked up",
                 order.order_id, what, order.filled_quantity, order.quantity)  # fmt: skip

    def _still_owed(self, cid: str) -> bool:
        order = self.book.get(cid)
        working = cid in self.book.open or cid in self.book.cancelling
        return order is not None and working and order.filled_quantity < self._owed[cid][0] - _EPS


def settle(owed: OwedExecutions, lookup: Callable[[list[str]], dict[str, Any]] | None, drain: Callable[..., Any],
           apply: Callable[[Any], Any], end: Callable[[Order, Any, str], None], *,
           listed: Callable[[str], None]) -> None:  # fmt: skip
    """A reconciliation: the orders ``owed`` their executions since before the last one that passed
    are looked up again (the gateway's ``lookup``); what the look-up reported is applied first
    (``drain``), then what the venue says now settles each: the missing quantity made up
    (:func:`made_up_fill`, through ``apply``: the broker's live apply, journaled), the venue's end
    (``end``: the broker's ``_take_venue_end``), or, for an order in doubt too long, CANCELLED
    at its fills (the runtime's choice, through ``apply``); one found working is listed working
    (``listed``: the broker's ``CancelResending._listed_now``, which ends its debt and a cancel
    follow-up's finding together). Those the look-up could not read (``LookupIncomplete``) wait
    for the next reconciliation; the others are answered."""
    cids = owed.due()
    if not cids or lookup is None:
        return
    try:
        found = lookup(cids)
    except LookupIncomplete as exc:  # the others were read: answered below
        unread = [cid for cid in cids if cid in exc.unread]
        _log.warning("could not read {} of {} order(s) found filled whose executions have not come: {} ({}); "
                     "looked up again at the next reconciliation", len(unread), len(cids), ", ".join(unread),
                     exc)  # fmt: skip
        found, cids = exc.found, [cid for cid in cids if cid not in exc.unread]
    except (VenueError, BridgeError) as exc:
        _log.warning("could not look up {} order(s) found filled whose executions have not come ({}); "
                     "looked up again at the next reconciliation", len(cids), exc)  # fmt: skip
        return
    drain(block_until=None)  # what the look-up reported (fills by execution id) first
    book = owed.book
    for cid in cids:
        venue_order = found.get(cid)
        match owed.answer(cid, venue_order):
            case "fill":
                made_up_fill(book, apply, book.get(cid), venue_order, "at the venue (found by look-up, and again "
                             "at the reconciliation)", "its executions never came", alert=True)  # fmt: skip
            case "end":
                end(book.get(cid), venue_order, "(found by look-up)")
            case "working":
                listed(cid)
            case "give_up":
                order = book.get(cid)
                apply(OrderCancelled(cid, _given_up(venue_order.filled_quantity, order.quantity)))


def _given_up(said: float, quantity: float) -> str:
    """The reason an order in doubt ends CANCELLED at its fills."""
    return (f"ended CANCELLED at its fills (the runtime's choice: the venue said at {DOUBT_READS} reconciliations "
            f"in a row that it filled {said:g} of {quantity:g}, never that it was cancelled)")  # fmt: skip


def made_up_fill(book: Book, apply: Callable[[Any], Any], order: Order, venue_order: Any, when: str, why: str, *,
                 alert: bool = False) -> None:  # fmt: skip
    """Apply (``apply``: the broker's live apply, journaled) what the venue says ``order`` filled
    beyond its fills, reconstructed at the venue's (else the order's) limit or stop price, else
    the asset's last price in ``book`` (its executions are out of reach: ``why``), under
    :func:`~ml4t_live.book.made_up_fill_id`, saying so (an ERROR ALERT: ``alert``): an
    OrderFilled that ends the order."""
    cid = order.order_id
    price = (venue_order.limit_price or venue_order.stop_price or order.limit_price or order.stop_price
             or book.last_prices.get(order.asset))  # fmt: skip
    missing = venue_order.filled_quantity - order.filled_quantity
    _log.log("ERROR" if alert else "WARNING",
             "{}order {} filled {:g} {}, but {}: applied at {} (check with the venue; ml4t-live reconcile)",
             "ALERT " if alert else "", cid, missing, when, why, price)  # fmt: skip
    apply(OrderFilled(cid, made_up_fill_id(cid), order.asset, order.side, missing, float(price or 0.0),
                      datetime.now(UTC), 0.0, venue_order.filled_quantity, True))  # fmt: skip
