"""Modifying an order at Alpaca: a replace that asks for what is left, then the check that keeps
the chain within what the strategy asked for.

:class:`Modifier`, owned by :class:`~.gateway.AlpacaGateway` (engine thread). Alpaca's replace (``PATCH
/v2/orders/{id}``) is a NEW order under ``<ours>.r<n>`` for the PATCH's ``qty``, while the old
order's fills stand (alpacahq/Alpaca-API#165). So a modify:

1. re-reads the order (``GET /v2/orders/{id}``; what the stream has not reported yet is reported
   then, once) and sends ``qty`` = total - filled so far (the larger of Alpaca's chain and the
   runtime's book, ``OrderRequest.filled_quantity``);
2. once the old order is ``replaced`` (its ``filled_qty`` is then final) reads it again: a fill it
   made after step 1's read stands and the replacement asked for it again, so the chain would
   trade the total plus that fill. The replacement is then cut down by that excess (a PATCH of
   the replacement, under the next ``.r<n>``, asking total - what the chain has filled) or, when
   nothing is left, cancelled; a WARNING says so (an ERROR and a ``VenueErrorReported`` ``over_filled`` when
   the chain has traded more than the total already). Each fill read on
   the way is reported once (the tracker counts per Alpaca order and execution id, whoever
   reads it first: the stream or REST). A replace Alpaca has not carried out yet
   (``pending_replace``) is checked at the next end of bar, and before the next modify of the
   same order, which is refused (nothing sent) while that check cannot be made. A cut-down
   PATCH races with fills too: it is checked the same way, at most :data:`.cut.MAX_CUTS` times. A
   read, cut or cancel that gets no answer (and a cut whose answer is lost and is not seen:
   followed, once its replacement reads ``replaced``, to the cut's replacement, cut.py), and a
   replace still pending, keep the check for the next end of bar, at most
   :data:`.cut.MAX_TRIES` times. An old order that shows neither replaced nor pending is not
   enough to conclude the replace was not carried out (a GET just after the PATCH may still
   show it ``new``): its replacement is read, and only one that has ended (canceled, rejected,
   expired) drops the check, our order the old one again (AL-14; a cut's or bring-back's
   check: the check it came from is made again, its replacement cut / brought back again,
   counted among the cuts). A cut's or bring-back's check whose old order ended (filled)
   before the PATCH was carried out makes the check it came from again at that end: an
   over-fill, or a bring-back that cannot be made, is an ERROR. A replacement still open is a
   replace not carried out yet, a try as a pending one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from loguru import logger

from ...errors import ChangeDeferred, VenueError
from ...events import OrderReplaced, VenueErrorReported
from ...protocols import OrderRequest
from ...quantities import EPS as _EPS
from . import kept_cancels
from .cut import MAX_TRIES, Replaced, cut
from .kept_cancels import MAX_CANCEL_TRIES
from .parsing import OPEN_STATUSES, NotExpressible, num, to_replace_request
from .rate_limit import RateLimitTimeout
from .rest import AlpacaTradingClient, AmbiguousOutcome, VenueRequestFailed
from .submit import OrderRefused, replacement_cid

if TYPE_CHECKING:  # (annotations only)
    from .order_stream import OrderStream
    from .rest import RestCaller
    from .tracker import OrderTracker

_log = logger.bind(component="alpaca.modify")
VENUE = "alpaca"
#: a replacement in one of these has ended: with its old order open, the replace was not carried out.
#: Alpaca's order statuses after which "no further updates will occur" are these, ``filled`` and
#: ``replaced`` (a replacement in those was working: the replace was carried out); ``done_for_day``
#: (resumes the next trading day), ``stopped`` (a trade guaranteed, not made yet) and ``suspended``
#: (not eligible for trading for now) are not final, so a replacement in one is still open
#: (parsing.OPEN_STATUSES), a replace not carried out yet (alpaca-py's enum says nothing of it)
_ENDED = frozenset({AlpacaStatus.CANCELED, AlpacaStatus.REJECTED, AlpacaStatus.EXPIRED})


class ReplaceNotChecked(OrderRefused, ChangeDeferred):
    """A modify while the order's last replace is not checked yet (Alpaca has not carried it out,
    or the old order could not be read): nothing sent, a routine wait; the next bar may ask again."""


class Modifier:
    """Modifies our orders at Alpaca and checks each replace (engine thread). Owned by the
    gateway, which hands it the REST caller, the tracker, the order stream (reports and emits),
    its map of our ids to the current Alpaca ids (shared: a replace moves it on) and four calls:
    ``venue_id`` (the Alpaca id of our order now, looked up when not known), ``lookup`` (the
    current order under a client order id, None if none), ``require`` (the connected client)
    and ``next_replace`` (the next n of ``<ours>.r<n>``, counted with the look-ups' walks)."""

    def __init__(self, *, rest: RestCaller, tracker: OrderTracker, stream: OrderStream,
                 venue_ids: dict[str, str], venue_id: Callable[[str], str], lookup: Callable[[str], Any],
                 require: Callable[[], AlpacaTradingClient], next_replace: Callable[[str], int]) -> None:  # fmt: skip
        self.rest, self.tracker, self.stream = rest, tracker, stream
        self._venue_ids = venue_ids
        self._venue_id, self._lookup, self._require, self._next_replace = venue_id, lookup, require, next_replace
        self._replace_checks: dict[str, Replaced] = {}  # our id -> its replace not checked yet
        self._asks: dict[str, OrderRequest] = {}  # our id -> what the strategy last asked (a restart's)
        #: our ids the strategy cancelled while their replace's check was pending (:mod:`.kept_cancels`)
        self.cancels: set[str] = set()
        self.cancel_tries: dict[str, int] = {}  # our id -> ends of bar its kept cancel was not taken at

    def modify(self, request: OrderRequest) -> bool:
        """Replace our working order ``request.client_order_id`` with ``request``'s terms, then
        check the replace (see the module docstring). OrderRefused / VenueRequestFailed: nothing
        changed, the order works as it was. True when the replace was made: the restart's ask of
        the order (:meth:`asked`), if still held, is dropped (this modify's check stands for it)."""
        cid = request.client_order_id
        if cid in self._replace_checks:  # the last replace first: its replacement may be cut down
            self.check_replaced(self._replace_checks[cid])
        if cid in self._replace_checks:  # (pending_replace, or the old order unreadable)
            raise ReplaceNotChecked(f"the last replace of {cid} is not checked yet; the next bar may ask again")
        venue_id = self._venue_id(cid)  # (a look-up may learn of replacements: counted first)
        client = self._require()
        # filled so far: the most of what Alpaca's chain says and what the runtime's book says
        # (journal-backed: a replacement adopted after a restart carries only its own fills)
        old = self.read_reported(client, venue_id)
        # the chain's count and the old order's own, read together: a fill the stream reports
        # after the GET is in both (counted once by the PATCH, not again as the check's excess)
        total, own = self.tracker.counted(venue_id)
        filled = max(total, request.filled_quantity)
        order = self.replace(request, venue_id, filled)
        if order is None:
            return False
        self._asks.pop(cid, None)
        self.stream.emit([OrderReplaced(cid, request.quantity, request.limit_price, request.stop_price)])
        old_filled = max(num(old.filled_qty) or 0.0, own)
        self.check_replaced(Replaced(request, venue_id, old_filled, filled, str(order.id)))
        return True

    def check_replaces(self) -> None:
        """Check the replaces Alpaca had not carried out yet (end of bar)."""
        for check in list(self._replace_checks.values()):
            self.check_replaced(check)
        kept_cancels.send_cancels(self)

    def cancel_asked(self, cid: str) -> bool:
        """The strategy cancels our order ``cid``: kept while its replace's check is pending, sent
        once the check has ended (:func:`.kept_cancels.cancel_asked`). False with no check pending."""
        return kept_cancels.cancel_asked(self, cid)

    def asked(self, request: OrderRequest) -> None:
        """At a warm restart: ``request`` is what the strategy last asked of our order (the
        runtime's book, rebuilt from the journal), for :meth:`check_chain`."""
        self._asks[request.client_order_id] = request

    def check_chain(self, cid: str, chain: list[Any]) -> None:
        """At a warm restart: the walk found our order ``cid`` as ``chain`` (the order under
        ``cid``, its replacements, the last one working as listed). A replace's check lives in
        memory only, so the one a modify left pending before the restart is made again here,
        against what the strategy last asked (:meth:`asked`): the chain's fills before the
        working replacement plus that replacement's ``qty`` beyond the ask means the chain would
        trade more than asked (a fill of the old order between the modify's read and Alpaca's
        replace). The check is built so that its excess is exactly that much (as if the last
        PATCH had counted ask - ``qty``), then made as a modify makes it: the replacement cut
        down, cancelled, or the over-fill reported; an old order whose replace is still pending
        (or that cannot be read) is checked at each end of bar, and a modify waits for it.

        A check pending for ``cid`` (a modify made since the listing) is never dropped: one of the
        same replacement as ``chain``'s last is made as this one (its tries and cuts kept: the
        ask's count includes what the modify's read could not, the orders' fills while away);
        one of another replacement (``chain`` out of date) is kept as it is, with a WARNING. An
        empty ``chain`` drops the ask.

        The check is made against the book's terms, always: a chain asking more than them is cut
        down to them, and one asking less or at other prices (a change Alpaca took just before a
        crash that the journal never recorded; the replay's making it again was refused, so the
        strategy's order keeps the book's terms) is brought back to them by a PATCH of its working
        replacement, each with one WARNING: Alpaca, the book and the strategy's view agree."""
        request = self._asks.pop(cid, None)
        if request is None or len(chain) < 2 or num(chain[-1].qty) is None:
            return
        old, new = chain[-2], chain[-1]
        pending = self._replace_checks.get(cid)
        if pending is not None and pending.new_id != str(new.id):
            _log.warning("order {} is Alpaca order {} now, not {} as read at the restart: its replace's "
                         "pending check is kept as the modify made it, not made against the {:g} last "
                         "asked", cid, pending.new_id, new.id, request.quantity)  # fmt: skip
            return
        check = _restart_check(request, chain)
        if pending is not None:
            check.cuts, check.tries = pending.cuts, pending.tries
        _log.info("order {} is Alpaca order {} at the restart, replacing {}{}: its replace is checked "
                  "against the {:g} last asked", cid, new.id, old.id,
                  "" if pending is None else " (a modify's, its chain walked again)", request.quantity)  # fmt: skip
        if old.status is AlpacaStatus.REPLACED:  # (the walk's read of it is final: not read again)
            self._settle(self._require(), check, old)
        else:  # (its replace pending: it is read, and followed, as after a modify)
            self.check_replaced(check)

    # ------------------------------------------------------------------ helpers
    def read_reported(self, client: AlpacaTradingClient, venue_id: str) -> Any:
        """The order ``venue_id`` re-read (``GET /v2/orders/{id}``), what the stream has not
        reported of it reported first (its executions, once). VenueRequestFailed without an answer."""
        order = self.rest(f"order {venue_id}", lambda: client.get_order_by_id(venue_id), repeatable=True)
        self.stream.report_chain(client, [order], on_loop=False)
        return order

    def replace(self, request: OrderRequest, venue_id: str, filled: float) -> Any:
        """PATCH the order ``venue_id`` of ours to ``request``'s terms, asking total - ``filled``;
        the replacement (None: not seen after an ambiguous answer, reported so). Refused:
        OrderRefused (before sending) or VenueRequestFailed (Alpaca's), the order works unchanged."""
        cid = request.client_order_id
        client = self._require()
        new_cid = replacement_cid(cid, self._next_replace(cid))
        try:
            body = to_replace_request(request, new_cid, filled)
        except NotExpressible as exc:
            raise OrderRefused(str(exc)) from None
        self.tracker.alias(new_cid, cid)
        try:
            order = self.rest("replace " + cid, lambda: client.replace_order_by_id(venue_id, body), repeatable=False)
        except AmbiguousOutcome:
            order = self._lookup(new_cid)
            if order is None:
                self.stream.emit([VenueErrorReported(VENUE, "replace_unconfirmed", f"replace of {cid} not seen", cid)])
                return None
        self.follow(cid, venue_id, str(order.id))
        return order

    def follow(self, cid: str, venue_id: str, new_id: str) -> None:
        """Our order ``cid`` is Alpaca order ``new_id`` now, the replacement of ``venue_id``: it
        continues that order's fills, and a later modify or cancel goes to it."""
        with self.stream.emit_lock:
            self.tracker.carry_over(venue_id, new_id)
            self._venue_ids[cid] = new_id

    def check_replaced(self, check: Replaced) -> None:
        """Once the order ``check`` replaced is ``replaced`` (its fills final): a fill it made
        after the modify's read makes the chain ask too much; the replacement is cut down by that
        much or cancelled (see the module docstring). Not replaced yet, or a read or a cut that
        got no answer: checked again at the next end of bar (at most :data:`.cut.MAX_TRIES` times).
        Working on, not replaced: :meth:`_not_replaced`."""
        cid = check.request.client_order_id
        client = self._require()
        try:
            old = self.read_reported(client, check.old_id)
        except VenueError as exc:
            self.check_later(check, f"cannot read Alpaca order {check.old_id} ({cid}), replaced by a modify", exc)
            return
        self._settle(client, check, old)

    def _settle(self, client: AlpacaTradingClient, check: Replaced, old: Any) -> None:
        """:meth:`check_replaced` with ``old``, the order ``check`` replaced, read."""
        cid = check.request.client_order_id
        if old.status is AlpacaStatus.PENDING_REPLACE:  # not carried out yet: a try, quietly
            self.check_later(check, f"the replace of Alpaca order {check.old_id} ({cid}) is pending", None,
                              quiet=True)  # fmt: skip
            return
        self._replace_checks.pop(cid, None)
        if old.status is not AlpacaStatus.REPLACED and old.status in OPEN_STATUSES:
            self._not_replaced(client, check, old)
            return
        excess = (num(old.filled_qty) or 0.0) - check.old_filled
        if old.status is not AlpacaStatus.REPLACED:  # not replaced after all: its own end says what happened
            if check.parent is not None:  # (a cut / bring-back outrun by the end of the order it changed)
                _log.info("Alpaca order {} ({}) ended {} before its replace by {} was carried out: the chain is "
                          "checked again at that end", check.old_id, cid, old.status.value, check.new_id)  # fmt: skip
                self._recheck(check.parent, check.cuts)
            return
        if excess <= _EPS and not (check.restart and (excess < -_EPS or check.other_prices)):
            return  # (a restart's chain asking less, or at other prices, is brought back to the book's)
        if excess > _EPS:
            differs, change = f"asks {excess:g} too much", "cut down"
        else:  # (a restart's bring-back)
            differs = (f"asks {-excess:g} less than the {check.request.quantity:g} last recorded" if excess < -_EPS
                       else "asks at other prices than last recorded")  # fmt: skip
            change = "brought back to the terms last recorded"
        try:
            cut(self, client, check, excess)
        except (VenueError, ValueError) as exc:
            if isinstance(exc, VenueError) and no_answer(exc):
                self.check_later(check, f"the replacement {check.new_id} of {cid} {differs} and could not be "
                                  f"read or {change}", exc)  # fmt: skip
                return
            _log.error("the replacement {} of {} {} and could not be {} ({}): the venue and the book disagree; "
                       "check it at the venue", check.new_id, cid, differs, change, exc)  # fmt: skip

    def _not_replaced(self, client: AlpacaTradingClient, check: Replaced, old: Any) -> None:
        """The old order of ``check`` is shown open, neither replaced nor pending. Its replacement
        ended (canceled, rejected, expired: Alpaca answered the PATCH, then rejected the replace,
        AL-14): our order is the old one again, unless the stream showed the old order
        ``replaced`` or ended (this read lags it: the end the stream showed is our order's, and
        our order stays the replacement). Otherwise (still pending_new / new / accepted, or
        unreadable) the replace is not carried out yet: a try, the check kept."""
        cid = check.request.client_order_id
        try:
            new = self.read_reported(client, check.new_id)
        except VenueError as exc:
            self.check_later(check, f"cannot read the replacement {check.new_id} ({cid}) of Alpaca order "
                              f"{check.old_id}, shown {old.status.value}", exc)  # fmt: skip
            return
        if new.status not in _ENDED:
            self.check_later(check, f"the replace of Alpaca order {check.old_id} ({cid}) is not carried out yet "
                              f"(it is shown {old.status.value}, its replacement {check.new_id} "
                              f"{new.status.value})", None, quiet=True)  # fmt: skip
            return
        with self.stream.emit_lock:
            undone = self.tracker.replace_undone(check.old_id, new)
            if undone:
                self._venue_ids[cid] = check.old_id
        if not undone:  # (the stream showed it replaced, or ended: this read lags it)
            _log.info("Alpaca order {} ({}) reads {}, a read lagging the trade stream, which showed it replaced "
                      "or ended; its replacement {} is {}: the order's end is the one the stream showed",
                      check.old_id, cid, old.status.value, check.new_id, new.status.value)  # fmt: skip
            return
        if check.parent is None:
            _log.warning("Alpaca did not carry out the replace of order {} ({}) by {}: the replacement is {}, "
                         "the old order {} with its old terms; the strategy's change did not take effect",
                         check.old_id, cid, check.new_id, new.status.value, old.status.value)  # fmt: skip
            return
        _log.warning("Alpaca did not carry out the {} of order {} ({}) by {}: the replacement is {}, the old order "
                     "{} with the terms it had; {}", "replace read at the restart" if check.restart else
                     "runtime's own change (to what is left, or back to the terms last recorded)", check.old_id, cid,
                     check.new_id, new.status.value, old.status.value,
                     "the chain is checked against the terms last recorded" if check.restart else
                     "checked again")  # fmt: skip
        self._recheck(check.parent, check.cuts)

    def _recheck(self, parent: Replaced, cuts: int) -> None:
        """A cut or bring-back PATCH of ``parent``'s replacement (the ``cuts``-th) was not carried
        out: ``parent`` is made again, its replacement read and changed again (its cuts counted on)."""
        parent.cuts = cuts
        self.check_replaced(parent)

    def check_later(self, check: Replaced, what: str, exc: BaseException | None, *, quiet: bool = False) -> None:
        """``check`` could not be made (no answer, or the replace still pending): kept for the next
        end of bar, at most :data:`.cut.MAX_TRIES` times, then given up with one ERROR (ALERT). ``quiet``:
        an INFO, not a WARNING, while it is kept."""
        cid = check.request.client_order_id
        check.tries += 1
        why = "" if exc is None else f" ({exc})"
        if check.tries > MAX_TRIES:
            self._replace_checks.pop(cid, None)
            kept = ("; the strategy's cancel of it is kept, sent at each end of bar until Alpaca takes it (at most "
                    f"{MAX_CANCEL_TRIES} times)"
                    if cid in self.cancels else "")
            _log.error("ALERT: {}{}; given up after {} tries: the chain of {} may trade other than the {:g} "
                       "asked (more, or after a restart's bring-back less or at other prices), check it at the "
                       "venue{}", what, why, MAX_TRIES, cid, check.request.quantity, kept)  # fmt: skip
            return
        self._replace_checks[cid] = check
        (_log.info if quiet else _log.warning)("{}{}: checked again at the next bar", what, why)


def _restart_check(request: OrderRequest, chain: list[Any]) -> Replaced:
    """The check of ``chain``'s last replace against ``request`` (what was last recorded), built so
    that its excess is what the chain asks beyond it (see :meth:`Modifier.check_chain`); its parent,
    with three orders or more, the check of the replace before (made again should the last one not
    be carried out after all, or be outrun by the end of the order it replaced)."""
    old, new = chain[-2], chain[-1]
    before = sum(num(o.filled_qty) or 0.0 for o in chain[:-2])  # (final: each one replaced)
    counted = request.quantity - (num(new.qty) or 0.0)  # what a PATCH sized for this ask counted filled
    parent = _restart_check(request, chain[:-1]) if len(chain) > 2 and num(old.qty) is not None else None
    return Replaced(request, str(old.id), counted - before, counted, str(new.id), restart=True,
                    other_prices=not _same_prices(request, new), parent=parent)  # fmt: skip


def _same_prices(request: OrderRequest, order: Any) -> bool:
    """Whether Alpaca's ``order`` asks at ``request``'s prices (a trailing stop: its trail, not
    the stop price, which Alpaca moves with the market)."""

    def same(a: float | None, b: float | None) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= _EPS)

    if request.trail_amount is not None:
        return same(request.trail_amount, num(order.trail_price)) and same(request.limit_price, num(order.limit_price))
    return same(request.limit_price, num(order.limit_price)) and same(request.stop_price, num(order.stop_price))


def no_answer(exc: VenueError) -> bool:
    """Whether ``exc`` left a request without Alpaca's answer (not sent, lost, 429, 5xx): what it
    asked may still be carried out or read later; not a refusal (a 4xx, or the adapter's own)."""
    if isinstance(exc, AmbiguousOutcome | RateLimitTimeout):
        return True
    return isinstance(exc, VenueRequestFailed) and (exc.status is None or exc.status == 429 or exc.status >= 500)
