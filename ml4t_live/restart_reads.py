"""What a warm restart reads from the venue about the orders the journal left open: the fills a
working order made while no runtime ran (:class:`AwayReads`), and a look-up by client order id of
the ones the venue no longer lists (:class:`RestartLookUps`). The
:class:`~ml4t_live.venue_broker.VenueBroker` holds one of each (``away_reads``,
``restart_lookups``); :class:`~ml4t_live.broker_steps.BarSteps` calls them from its
``_resolve_open_intents`` and ``reconcile_if_due``, and makes the next reconciliation due at once
when a read or a look-up got no answer (it is tried again there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus

from .book import Book
from .errors import BridgeError, LookupIncomplete, VenueError
from .journal import Journal
from .order_entry import order_request
from .protocols import VenueGateway
from .quantities import EPS as _EPS

_log = logger.bind(component="venue-broker")
#: reads of what an order filled while away that may get no answer before the runtime gives up
AWAY_READS = 5


@dataclass(slots=True)
class UnreadAway:
    """An order whose fills while away could not be read at the restart (``AwayReads.unread``)."""

    filled: float  # the book's filled quantity at the restart
    avg_price: float | None  # at this average price
    venue_filled: float  # what the venue listed the order (its own part) filled at the restart
    reads: int = 1  # reads that failed so far
    venue_quantity: float = 0.0  # the quantity the venue listed the order (its own: a replacement's)
    contained: str = ""  # how the listed order asking more than the book's was contained ("": not)
    own_held: float = 0.0  # of ``filled``, the listed order's own fills the journal holds (:func:`own_held`)


class AwayReads:
    """What the working orders the venue lists at a warm restart filled while away, read through
    the gateway's ``executions_since`` (a gateway without it has none to read) and applied with
    ``apply_live`` (the broker's: the book and the journal). ``unread``: the orders whose read got
    no answer, read again at the next reconciliations (:meth:`read_again`). ``journal``: the
    journal, or None (:func:`own_held` reads its executions)."""

    def __init__(self, gateway: VenueGateway, book: Book, apply_live: Callable[[Any], Any],
                 journal: Callable[[], Journal | None] = lambda: None) -> None:  # fmt: skip
        self.gateway = gateway
        self.book = book
        self.apply_live = apply_live
        self.journal = journal
        self.unread: dict[str, UnreadAway] = {}  # our id -> what the book held at the restart, reads so far
        self.to_read: set[str] = set()  # our ids listed working at the connect, their reads not run yet

    def expect(self, listed: list[Any]) -> None:
        """A warm restart begins: the working orders of ours the venue listed at the connect are
        read at its end (:meth:`read_at_restart`, after the replay); until then a change of one is
        refused (:meth:`change_refusal`): the replay's bar a crash interrupted makes its commands
        again, and a change then would ask the venue for a remainder that leaves out what the
        order filled while away (a gateway without ``executions_since`` has none to read)."""
        if getattr(self.gateway, "executions_since", None) is not None:
            self.to_read = {o.client_order_id for o in listed}

    def read_at_restart(self, listed: list[Any]) -> bool:
        """A working order of ours the venue lists: its executions since the book's filled
        quantity (a gateway with ``executions_since``; Alpaca, whose snapshot carries no
        executions) happened while away: applied once. The gateway decides whether there are
        any: a listed order's own filled quantity may leave out what the orders it replaced
        filled (Alpaca's ``<id>.r<n>``), which the book counts. One whose read fails is read
        again at the next reconciliations (:meth:`read_again`): unknown is never read as
        nothing. An order listed twice (Alpaca's old order and its replacement, a replace
        pending) is read once. A gateway with ``asked`` is told first what the strategy last
        asked of each (Alpaca checks a replace chain against it). True when a read failed and is
        to be tried again. A gateway with ``holds_own`` is told what the journal holds of the
        listed order's own fills (:func:`own_held`)."""
        self.to_read = set()
        since = getattr(self.gateway, "executions_since", None)
        if since is None:
            return False
        asked = getattr(self.gateway, "asked", None)
        holds_own = getattr(self.gateway, "holds_own", None)
        journal = self.journal()
        unanswered = False
        seen: set[str] = set()
        for venue_order in listed:
            cid = venue_order.client_order_id
            if cid in seen:
                continue
            seen.add(cid)
            order = self.book.get(cid) if self.book.knows(cid) else None
            if order is not None:
                if asked is not None:  # (Alpaca: a replace's check is made again against it)
                    asked(order_request(order))
                own = own_held(journal, order, venue_order)
                entry = UnreadAway(order.filled_quantity, order.filled_price, venue_order.filled_quantity, 0,
                                   venue_order.quantity, own_held=own)  # fmt: skip
                if holds_own is not None:  # (Alpaca: the base of its provisional count while unread)
                    holds_own(cid, own)
                self._read(since, cid, entry)
                unanswered = unanswered or cid in self.unread
        return unanswered

    def read_again(self) -> None:
        """The orders whose fills while away could not be read at the restart, read again as the
        book held them then (what the venue reported since carries its own execution ids),
        whether or not the book still has them open (a stream fill may have ended one), until
        a read succeeds or gives up (:meth:`_give_up`)."""
        since = getattr(self.gateway, "executions_since", None)
        for cid, entry in list(self.unread.items()):
            if since is not None:
                self._read(since, cid, entry)

    def change_refusal(self, order_id: str) -> str | None:
        """Why a change of ``order_id`` is refused while what it filled while away is unread, or
        its read has not run yet (:meth:`expect`): the venue would be asked for a remainder that
        leaves that part out. None otherwise."""
        if order_id not in self.unread and order_id not in self.to_read:
            return None
        reason = "what it filled while away is not read yet; ask again at a later bar"
        _log.warning("change of {} refused: {}", order_id, reason)
        return reason

    def _read(self, since: Any, cid: str, entry: UnreadAway) -> None:
        try:
            executions = since(cid, entry.filled, entry.avg_price)
        except (VenueError, BridgeError) as exc:
            entry.reads += 1
            self._contain(cid, entry)
            if getattr(exc, "permanent", False) or entry.reads >= AWAY_READS:
                self._give_up(cid, entry, exc)
                return
            _log.warning("could not read what order {} filled while away ({}); reading it again at the "
                         "next reconciliation", cid, exc)  # fmt: skip
            self.unread[cid] = entry
            return
        if self.unread.pop(cid, None) is not None:
            _log.info("what order {} filled while away was read at last: {} execution(s)", cid, len(executions))
        # read against the order's view at the restart: what the venue reported of it since (in the
        # book now) came after all of them, so each counts on top of it (the book trims a made-up
        # part by its cumulative quantity)
        order = self.book.get(cid)
        since_restart = order.filled_quantity - entry.filled if order is not None else 0.0
        for execution in executions:
            if not self.book.seen(execution.exec_id):
                _log.info("execution {} of {} happened while away: applied", execution.exec_id, cid)
                if since_restart > _EPS:
                    execution = replace(execution, cumulative_quantity=execution.cumulative_quantity + since_restart)
                self.apply_live(execution)

    def _contain(self, cid: str, entry: UnreadAway) -> None:
        """The read of what ``cid`` filled while away failed: whatever the orders it replaced
        filled (unread), the venue's listing alone may show that the listed order asks more than
        the book's order: the orders before it filled at least what the book holds beyond the
        listed order's own fills, and that plus its quantity goes beyond the book's quantity (a
        change the venue took just before a crash that the journal never recorded). It would
        keep buying past the book while the read waits, so it is cancelled at once (once; a
        WARNING): no cut can be sized safely without the read (what it and the orders before it
        filled meanwhile is not known). The strategy's order ends cancelled with what the book
        holds of it (its journaled fills, and what the venue reported since the restart), which
        may be less than the chain bought: what it filled while away stays unread (read again at
        the next reconciliations, :data:`AWAY_READS` reads in all, then the give-up ALERT). An ERROR when the cancel is refused
        or gets no answer: tried again at the next read if that read fails too; a read that
        succeeds walks the chain instead, checked against the book's order (the gateway's
        replace check)."""
        order = self.book.get(cid) if self.book.knows(cid) else None
        if entry.contained or order is None or cid not in self.book.open:
            return
        before = max(entry.filled - entry.own_held, 0.0)  # (at least, by the orders before it)
        if before + entry.venue_quantity <= order.quantity + _EPS:
            return
        asks = (f"{entry.venue_quantity:g} on top of at least {before:g} filled before it; the book's order "
                f"is {order.quantity:g}")  # fmt: skip
        try:
            self.gateway.cancel(cid)
        except (VenueError, BridgeError) as exc:
            _log.error("ALERT order {} as the venue lists it asks more than the book's order ({}) and could not be "
                       "cancelled ({}); tried again at the next read if it fails too (one that succeeds checks the "
                       "chain against the book's order): check the venue account", cid, asks, exc)  # fmt: skip
            return
        entry.contained = "cancelled at the restart"
        _log.warning("order {} as the venue lists it asks more than the book's order ({}) while what it filled "
                     "while away is not read: cancelled (the strategy's order ends cancelled with what the book "
                     "holds of it, which leaves out what the chain filled while away until a read succeeds)",
                     cid, asks)  # fmt: skip

    def _give_up(self, cid: str, entry: UnreadAway, exc: Exception) -> None:
        self.unread.pop(cid, None)
        forget = getattr(self.gateway, "forget_away", None)
        if forget is not None:
            forget(cid)  # (the gateway drops what it kept for the read)
        contained = f"; the listed order asked more than the book's order: {entry.contained}" \
            if entry.contained else ""  # fmt: skip
        _log.error("ALERT what order {} filled while away cannot be read ({}; {} read(s)): the book "
                   "holds {:g} filled as at the restart, the venue listed the order working with "
                   "{:g} filled (its own part); what is missing is not in the book (the position "
                   "reconciliation shows it as a difference, though these are the order's own fills); "
                   "its replace chain was not checked against the book's order{}: check the venue "
                   "account", cid, exc, entry.reads, entry.filled, entry.venue_filled, contained)  # fmt: skip


class RestartLookUps:
    """The orders the journal left open that the venue no longer listed at a warm restart
    (``cids``), looked up by client order id through the gateway's ``lookup`` until a look-up
    answers. What the look-up reported is applied first (``drain``, the broker's event queue);
    then an order it did not find goes to ``unlisted`` (lost, or looked up again:
    :mod:`~ml4t_live.unknown_orders`), one it found ended takes the venue's end
    (``take_venue_end``)."""

    def __init__(self, gateway: VenueGateway, book: Book, *, drain: Callable[..., bool],
                 unlisted: Callable[..., None], take_venue_end: Callable[..., None]) -> None:  # fmt: skip
        self.gateway = gateway
        self.book = book
        self.drain = drain
        self.unlisted = unlisted
        self.take_venue_end = take_venue_end
        self.cids: list[str] = []  # to look up (those still open or cancelling when it comes)

    def look_up(self, journal: Journal) -> set[str] | None:
        """Look up by client order id the orders the venue no longer works (after a restart);
        a look-up that fails is tried again at each reconciliation (unknown is never gone).
        A gateway with ``holds`` is told first what the book holds of each and the venue id the
        journal recorded: its look-up reports only the executions beyond (an earlier restart may
        have applied some under made-up ids), and finds by that id an order the venue holds
        under a client id of its own choosing (an Alpaca OCO's stop leg).
        Returns those the look-up found working after all; None when it got no answer. Ids it
        could not read while it read others (``LookupIncomplete``) stay in ``cids``, looked up
        again at the next reconciliation; the others are taken."""
        lookup = getattr(self.gateway, "lookup", None)
        gone = [cid for cid in self.cids if cid in self.book.open or cid in self.book.cancelling]
        self.cids = gone
        if not gone or lookup is None:
            return set()
        holds = getattr(self.gateway, "holds", None)  # (Alpaca: its look-up reports beyond the book)
        intents = journal.intents() if holds is not None else {}
        for cid in gone if holds is not None else ():
            order = self.book.get(cid)
            if order is not None:
                holds(cid, order.filled_quantity, order.filled_price, intents.get(cid, {}).get("venue_id"))
        unread: list[str] = []
        try:
            found = lookup(gone)
        except LookupIncomplete as exc:  # the others were read: taken below
            unread = [cid for cid in gone if cid in exc.unread]
            _log.warning("could not read {} of {} order(s) looked up after the restart: {} ({}); trying them "
                         "again at the next reconciliation", len(unread), len(gone), ", ".join(unread), exc)  # fmt: skip
            found, gone = exc.found, [cid for cid in gone if cid not in exc.unread]
        except (VenueError, BridgeError) as exc:
            _log.warning("could not look up {} order(s) after the restart ({}); trying again at "
                         "the next reconciliation", len(gone), exc)  # fmt: skip
            return None
        self.cids = unread
        self.drain(block_until=None)  # what the look-up reported (fills by execution id) first
        unknown = {cid for cid, i in journal.intents().items() if i["status"] == "unknown"} \
            if any(cid not in found for cid in gone) else set()  # fmt: skip
        working = set()
        for cid in gone:
            venue_order = found.get(cid)
            order = self.book.get(cid)
            if order is None or (order.status is not OrderStatus.PENDING and cid not in self.book.cancelling):
                continue  # the look-up's own events settled it
            if venue_order is None:
                self.unlisted(order, outcome_was_unknown=cid in unknown)
            elif venue_order.status == "open":
                working.add(cid)
            else:
                self.take_venue_end(order, venue_order, "while away")
        return working


def own_held(journal: Journal | None, order: Order, venue_order: Any) -> float:
    """Of the book's filled quantity of ``order``, the fills of the order the venue lists
    (``venue_order``: an Alpaca replacement lists only its own fills; the book counts the whole
    chain) that the journal holds: the journal's executions of ``order`` replayed through a book
    of their own, as the runtime's book applied them (a re-report adds only what goes beyond,
    a duplicate nothing), each applied amount credited to the venue order id it was journaled
    under; the listed order's credit (not capped by what the venue lists it filled: a listing may
    lag a fill the stream reported and the journal holds). None under that id
    (a change the venue took that the journal never recorded): none of the book's fills are that
    order's own. Executions journaled without a venue order id (a journal older than that record)
    count as the listed order's up to what the venue lists it filled. No journal: what the venue
    lists it filled."""
    filled, listed = order.filled_quantity, venue_order.filled_quantity
    if journal is None:
        return min(listed, filled)
    replay = Book()
    replay.add(Order(asset=order.asset, side=order.side, quantity=order.quantity, order_type=order.order_type,
                     limit_price=order.limit_price, stop_price=order.stop_price, order_id=order.order_id))  # fmt: skip
    credit: dict[str, float] = {}
    for event in journal.fill_events([order.order_id]):
        before = replay.get(order.order_id).filled_quantity
        replay.apply(event)
        after = replay.get(order.order_id).filled_quantity
        vid = event.venue_order_id or ""
        credit[vid] = credit.get(vid, 0.0) + after - before
    own = credit.get(venue_order.venue_order_id, 0.0)
    own += min(credit.get("", 0.0), max(listed - own, 0.0))
    return min(max(own, 0.0), filled)
