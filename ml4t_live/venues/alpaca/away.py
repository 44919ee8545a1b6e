"""The fills of an order still working at a restart that happened while no runtime ran.

On connect the gateway adopts the open orders of ours Alpaca lists: the tracker takes what each
has filled as reported (only later executions become events). The runtime's book holds what its
journal recorded; a part that filled while nobody listened is in neither the journal nor (being
adopted) a later event. At the warm restart the broker asks for it
(:meth:`~.gateway.AlpacaGateway.executions_since` with the book's filled quantity): the order's
FILL activities beyond that quantity, under Alpaca's execution ids, oldest first, which the broker
applies once, as it applies the executions IB's snapshot carries. When the activities cannot be
read, the missing quantity is one execution under a made-up id ``<order id>:<cumulative qty>``
priced from the average fill prices, with a WARNING: unknown is never read as empty.

A listed order that replaced others (a modify: ``<ours>.r<n>``, its ``replaces`` set) has filled
only its own part: the book's filled quantity counts the whole chain. So the chain is walked from
the order under our id (``GET /v2/orders:by_client_order_id``, then the replacements from the
symbol's order listing, :class:`~.listing.SymbolOrders`), and each order's executions beyond the
book are read, cumulated over the chain; the tracker learns what the orders before the listed one
filled (a modify then asks for what is left). A chain that cannot be read raises VenueError
(:class:`Unreadable`, with ``permanent`` set, when no walk can ever read it: longer than
``MAX_CHAIN``, or it ends at an order that ended otherwise than ``replaced``; an order that names
no replacement yet, ``replaced`` or read still working, is not read yet, asked again: Alpaca
names the replacement a moment after the status, and its reads lag its trade stream, so a read
can show an order as before its replace): the broker reads it again at its next
reconciliations, bounded (:mod:`~ml4t_live.restart_reads`). The order's view listed at the restart is kept
(:attr:`WhileAway.unread`) until a walk succeeds, whether or not Alpaca still lists the order, and
each read is computed against it: what the stream reported since is beyond it. Until then the
tracker counts the listed order's later fills on top of a provisional base, what the book holds
beyond the order's own fills the journal holds (:meth:`WhileAway.holds_own`: the orders before it
filled at least that); the walk that succeeds sets the real one. An order neither
listed nor kept raises too (unknown, never read as nothing). The walked chain is handed to the
modifier (``check_chain``, :meth:`~.modify.Modifier.check_chain`): the check of the last replace,
which lives in memory only, is made again against what the strategy last asked. A modify made
since the listing (the runtime refuses one until this read has run; the gateway does not) moved
our order on: the chain handed over is walked again up to the order's current Alpaca id (a walk
that gets no answer is made again at each end of bar, bounded: :meth:`WhileAway.walk_again`).
Engine thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from loguru import logger

from ...errors import VenueError
from ...events import OrderFilled, OrderPartiallyFilled
from ...quantities import EPS as _EPS
from .listing import SymbolOrders
from .modify import MAX_TRIES
from .parsing import fill_price_delta, made_up_exec_id, num, side_from_alpaca

_log = logger.bind(component="alpaca.away")
#: orders of one chain the walk follows; a longer chain counts as unreadable
MAX_CHAIN = 200


class WhileAway:
    """The orders of ours the last snapshot listed working, and what they filled while away;
    owned by the gateway (engine thread). ``reader``: the stream's
    :class:`~.executions.ExecutionReader`; ``rest``: the gateway's :class:`~.rest.RestCaller`;
    ``stream``: the gateway's :class:`~.order_stream.OrderStream` (its reader of executions
    and its emit); ``current_ids``: the gateway's map of our ids to the current Alpaca ids
    (shared: adopting a listed order moves it); ``walk``: the gateway's walk of our order's
    chain by client order id (:meth:`.submit.OrderChains.chain`); ``check_chain``: told each chain
    :meth:`executions_since` walked (``Modifier.check_chain``)."""

    def __init__(self, rest: Any, tracker: Any, reader: Any, *, stream: Any, current_ids: dict[str, str],
                 walk: Callable[[str], list[Any]], check_chain: Callable[[str, list[Any]], None]) -> None:  # fmt: skip
        self.rest, self.tracker, self.reader = rest, tracker, reader
        self._stream, self._current_ids, self._walk = stream, current_ids, walk
        self._check_chain = check_chain
        self.listed: dict[str, Any] = {}  # our id -> the order of ours the last snapshot listed
        self.held: dict[str, tuple[float, float | None]] = {}  # our id -> (filled, avg price) in the book
        self.venue_ids: dict[str, str] = {}  # our id -> the Alpaca id the runtime's journal recorded
        self.unread: dict[str, Any] = {}  # our id -> its view listed at the restart, its chain not read yet
        self.superseded: dict[str, Any] = {}  # Alpaca id -> an order of ours listed with its replace pending
        self.rewalks: dict[str, tuple[list[Any], int]] = {}  # our id -> (its chain, walks up to now that failed)
        self.own_held: dict[str, float] = {}  # our id -> the listed order's own fills the journal holds

    def new_listing(self, listed: list[Any]) -> set[str]:
        """A snapshot lists ``listed`` (its open orders, OCO legs among them): what the last one
        listed is dropped. The Alpaca ids of the orders whose replace is pending (their
        replacement is listed too)."""
        self.listed, self.superseded = {}, {}
        return {str(o.replaces) for o in listed if o.replaces is not None}  # (a replace pending)

    def pair_pending(self, listed: list[Any]) -> None:
        """The replacements ``listed`` of orders of ours adopted with their replace pending
        (:attr:`superseded`) continue their old orders' fills."""
        for order in listed:  # (a replace pending: the replacement continues its old order's fills)
            if order.replaces is not None and str(order.replaces) in self.superseded:
                self.tracker.carry_over(str(order.replaces), str(order.id))

    def start_from_book(self, ours: str, chain: list[Any]) -> None:
        """A look-up found our order ``ours`` as ``chain``: what the book holds of it (``held``,
        told by the broker before a restart's look-up) counts as reported, so a fresh tracker
        reports only the executions beyond it, whichever ids the book has them under (a made-up
        one at an earlier restart, Alpaca's now)."""
        held = self.held.pop(ours, None)
        if held is not None:
            self.tracker.book_holds(ours, chain, *held)

    def adopt_listed(self, client: Any, cid: str, order: Any, *, superseded: bool = False) -> None:
        """A snapshot lists ``order``, ours under ``cid``: followed from now on (what it filled
        so far counts as reported; :meth:`executions_since` reads what the book lacks).
        ``superseded``: its replacement is listed too (a replace pending): followed, but our
        order is the replacement (a cancel or modify goes to it, and so does the read of what
        it filled while away)."""
        self.tracker.register(cid)
        if superseded:
            self.superseded[str(order.id)] = order  # (a walk from it reaches the replacement: :meth:`_chain`)
        else:
            self._current_ids[cid] = str(order.id)  # the listed one (a replace that landed late too)
            self.listed[cid] = order
        executions = self._stream.executions.for_view(client, order, adopting=True)
        self._stream.emit(self.tracker.adopt(order, executions))

    def chain_by_venue_id(self, cid: str) -> list[Any]:
        """Our order ``cid``, which Alpaca does not know by that client order id, read by the
        Alpaca id the runtime's journal recorded for it (:meth:`holds`): an OCO's stop leg, whose
        client order id Alpaca chose. Found, that id is aliased to ``cid`` (its updates are ours
        from now on). [] when no id was recorded or Alpaca has no such order either."""
        venue_id = self.venue_ids.pop(cid, None)
        if venue_id is None:
            return []
        self._current_ids[cid] = venue_id  # (the walk starts from it)
        chain: list[Any] = []
        try:
            chain = self._walk(cid)
        finally:
            if not chain:
                self._current_ids.pop(cid, None)
        if chain:
            self.tracker.alias(str(chain[0].client_order_id), cid)
            _log.info("order {} is Alpaca order {} under Alpaca's client order id {}: followed as {}",
                      cid, venue_id, chain[0].client_order_id, cid)  # fmt: skip
        return chain

    def holds(self, client_order_id: str, filled: float, avg_price: float | None, venue_order_id: str | None) -> None:
        """The runtime's book holds ``filled`` of our order (at ``avg_price``): a look-up that finds
        it and does not follow it yet reports only what goes beyond (:meth:`start_from_book`).
        ``venue_order_id``: the Alpaca id its journal recorded, by which a look-up finds an order
        Alpaca does not know by our id (:meth:`chain_by_venue_id`)."""
        self.held[client_order_id] = (filled, avg_price)
        if venue_order_id:
            self.venue_ids[client_order_id] = venue_order_id

    def holds_own(self, client_order_id: str, quantity: float) -> None:
        """Of what the book holds of our order, ``quantity`` are the listed order's own fills (the
        journal's executions under its Alpaca id; 0 when the journal never recorded that order):
        the base of the provisional count while its chain is unread (:meth:`executions_since`)."""
        self.own_held[client_order_id] = quantity

    def forget(self, client_order_id: str) -> None:
        """The broker gave up reading what our order filled while away: the order's view kept
        for that read (:attr:`unread`) is dropped."""
        self.unread.pop(client_order_id, None)
        self.own_held.pop(client_order_id, None)

    def executions_since(
        self, client: Any, ours: str, filled: float, avg_price: float | None
    ) -> list[OrderFilled | OrderPartiallyFilled]:
        """What our order ``ours`` filled beyond ``filled`` (the book's, at ``avg_price``) up to
        its view listed at the restart (kept in :attr:`unread` while its chain is unread, else
        the last listing's): see the module docstring. VenueError when the orders it replaced
        cannot be read (ask again later) or the order is neither listed nor kept."""
        order = self.unread.get(ours) or self.listed.get(ours)
        if order is None:
            raise VenueError(f"Alpaca did not list order {ours} working: what it filled while away is unknown")
        if order.replaces is None:
            chain = [order]
        else:
            try:
                chain = self._chain(client, ours, order)
            except VenueError:
                self.unread[ours] = order  # (read against this view until a walk succeeds)
                # meanwhile its fills count on top of what the book holds of the orders before it
                # (at least: the book's less the order's own fills the journal holds, as listed when
                # not told): the walk that succeeds sets the real base
                own = self.own_held.get(ours, num(order.filled_qty) or 0.0)
                self.tracker.continues(str(order.id), max(filled - own, 0.0))
                old = self.superseded.get(str(order.replaces))
                if old is not None:  # its replace pending: the old order fills on, on top of the same
                    self.tracker.continues(str(old.id), max(filled - (num(old.filled_qty) or 0.0), 0.0))
                raise
            if len(chain) > 1 and str(chain[-2].id) in self.superseded:  # (its replace pending: followed too)
                self.tracker.continues(str(chain[-2].id), sum(num(o.filled_qty) or 0.0 for o in chain[:-2]))
            self.tracker.continues(str(order.id), sum(num(o.filled_qty) or 0.0 for o in chain[:-1]))
        self.unread.pop(ours, None)
        self.own_held.pop(ours, None)
        events = _beyond(self.reader, client, chain, ours, filled, avg_price)
        self._check_up_to_now(client, ours, chain)  # (a replace's check, lost with the last run, made again)
        return events

    def drop_rewalk(self, ours: str) -> None:
        """A modify of our order ``ours`` was made: a walk of its chain waiting (:attr:`rewalks`)
        is dropped; that modify's check stands for the chain, against the strategy's new terms."""
        self.rewalks.pop(ours, None)

    def walk_again(self, client: Any) -> None:
        """End of bar, before the modifier's checks: the chains whose walk up to the order's
        current Alpaca id got no answer at the restart (:attr:`rewalks`) are walked again."""
        for ours, (chain, tries) in list(self.rewalks.items()):
            self._check_up_to_now(client, ours, chain, tries)

    def _check_up_to_now(self, client: Any, ours: str, chain: list[Any], tries: int = 0) -> None:
        """``chain`` (walked up to the order listed at the connect) handed to the modifier's check,
        up to the Alpaca id our order ``ours`` has now: a modify made since the listing moved it on
        (its replacement is the order to check), so the chain is walked again up to that order.
        When that walk gets no answer or reads an order not read yet (:func:`_no_successor`) the
        check waits (what was last asked kept): walked again at each end of bar
        (:meth:`walk_again`), at most ``MAX_TRIES`` times; then, or at once for a chain no walk
        can read (:class:`Unreadable`), an ALERT, the ask dropped, and that modify's own check
        (sized before the restart's read) is kept."""
        current = self._current_ids.get(ours)
        if current is None or current == str(chain[-1].id):
            self.rewalks.pop(ours, None)
            self._check_chain(ours, chain)
            return
        try:
            now = self.rest(f"order {current} ({ours})", lambda: client.get_order_by_id(current), repeatable=True)
            walked = self._chain(client, ours, now)
        except VenueError as exc:
            tries += 1
            if tries < MAX_TRIES and not getattr(exc, "permanent", False):
                self.rewalks[ours] = (chain, tries)
                _log.warning("cannot walk the chain of {} up to its current Alpaca order {} ({}): its check "
                             "against what was last asked waits; walked again at the next end of bar",
                             ours, current, exc)  # fmt: skip
                return
            self.rewalks.pop(ours, None)
            _log.error("ALERT cannot walk the chain of {} up to its current Alpaca order {} ({}; {} tries): "
                       "the chain is not checked against what was last asked, only by the last modify's own "
                       "check; check the order's chain at the venue", ours, current, exc, tries)  # fmt: skip
            self._check_chain(ours, [])  # (the ask dropped)
            return
        self.rewalks.pop(ours, None)
        self._check_chain(ours, walked)

    def _chain(self, client: Any, ours: str, last: Any) -> list[Any]:
        """The orders from the one under ``ours`` to ``last`` (the listed one), along
        ``replaced_by``; VenueError when a read gets no answer or an order names no replacement
        (:func:`_no_successor`: read again later, or :class:`Unreadable` when it ended), and
        Unreadable when the chain does not reach it within ``MAX_CHAIN`` orders. An order that
        names no replacement leads to ``last`` when ``last`` replaces it and the order is shown
        replaced or its replace pending: the snapshot listed it beside ``last``
        (:attr:`superseded`: it counts as listed, what it filled later is the tracker's to
        report), or it reads ``pending_replace`` / ``replaced``; read still working and not
        listed, it is a read lagging its replace (its fills may lag too): read again later.
        What each order before ``last`` filled is checked against its FILL activities
        (:meth:`_fills_counted`); ``last`` itself is never read again."""
        first = self.rest("orders replaced by " + ours, lambda: client.get_order_by_client_id(ours), repeatable=True)
        chain, listing = [first], SymbolOrders(self.rest, client, ours, first)
        while str(chain[-1].id) != str(last.id):
            successor = chain[-1].replaced_by
            if successor is None and str(last.replaces) == str(chain[-1].id) and (
                    str(chain[-1].id) in self.superseded or chain[-1].status in _REPLACING):  # fmt: skip
                chain[-1] = self.superseded.get(str(chain[-1].id), chain[-1])
                chain.append(last)
                break
            if len(chain) >= MAX_CHAIN:
                raise Unreadable(f"order {chain[-1].id} does not lead to {last.id} within {len(chain)} orders")
            if successor is None:
                _no_successor(ours, chain[-1], last)
            successor = str(successor)
            chain.append(last if successor == str(last.id) else listing.get(successor) or self.rest(
                f"orders replaced by {ours} ({successor})", lambda v=successor: client.get_order_by_id(v),
                repeatable=True))  # fmt: skip
        chain[-1] = last  # as listed: what it filled later is the tracker's to report
        return [self._fills_counted(client, ours, o) for o in chain[:-1]] + [last]

    def _fills_counted(self, client: Any, ours: str, order: Any) -> Any:
        """``order``, before the last of the chain of ``ours``, with what its FILL activities
        show it filled when they show more than its read (a read lagging its fills: the base of
        the orders after it would be low, what they filled uncounted, a later modify asking the
        difference again); as read when they show no more, when it is the view the snapshot
        listed (:attr:`superseded`: what it fills later the tracker reports), or when they
        cannot be read (a WARNING)."""
        own = num(order.filled_qty) or 0.0
        if self.superseded.get(str(order.id)) is order:
            return order
        try:
            found = self.reader.read(client, str(order.id), max(num(order.qty) or 0.0, own),
                                     order.submitted_at or order.created_at)  # fmt: skip
        except VenueError as exc:
            _log.warning("cannot read the executions of Alpaca order {} ({}) ({}): its filled quantity in "
                         "the chain is taken as read ({:g})", order.id, ours, exc, own)  # fmt: skip
            return order
        if not found or found[-1].cum_qty <= own + _EPS:
            return order
        filled = found[-1].cum_qty
        avg = sum(e.qty * e.price for e in found) / filled
        _log.warning("Alpaca order {} ({}) read with {:g} filled, its executions show {:g}: a read lagging its "
                     "fills; {:g} counted", order.id, ours, own, filled, filled)  # fmt: skip
        return order.model_copy(update={"filled_qty": str(filled), "filled_avg_price": str(avg)})


def legs_of_ours(orders: list[Any], is_ours: Any) -> dict[str, str]:
    """Alpaca id -> our parent's id, for the legs of the listed (nested) orders of ours: their
    client order ids are Alpaca's (an OCO's stop leg), so only the parent shows they are ours."""
    return {str(leg.id): str(parent.client_order_id) for parent in orders
            if is_ours(str(parent.client_order_id)) for leg in parent.legs or []}  # fmt: skip


class Unreadable(VenueError):
    """A chain no walk can read (it does not lead to the listed order within ``MAX_CHAIN``, or it
    ends at an order that ended otherwise than ``replaced``): asking again cannot help."""

    permanent = True


#: the ends of an order that no later read shows ``replaced`` (Alpaca's ``replaced`` follows only
#: a working order; a read lagging the venue shows an earlier status, never a later end)
_ENDED = frozenset({AlpacaStatus.FILLED, AlpacaStatus.CANCELED, AlpacaStatus.EXPIRED, AlpacaStatus.REJECTED})
#: the statuses of an order whose replace was carried out or is pending
_REPLACING = frozenset({AlpacaStatus.REPLACED, AlpacaStatus.PENDING_REPLACE})


def _no_successor(ours: str, order: Any, last: Any) -> NoReturn:
    """Raises for ``order`` of the chain of ``ours``, which names no replacement and is neither
    ``last`` nor the order ``last`` replaces: Unreadable when it ended otherwise than ``replaced``
    (the chain ends there for good), else VenueError, read again later: ``replaced`` without
    ``replaced_by`` (Alpaca names it a moment after the status) or still working (a read lagging
    its replace: Alpaca's reads lag its trade stream)."""
    status = getattr(order.status, "value", order.status)
    if order.status in _ENDED:
        raise Unreadable(f"order {order.id} ({ours}) ended {status}, not replaced: it does not lead to {last.id}")
    if order.status is AlpacaStatus.REPLACED:
        raise VenueError(f"order {order.id} ({ours}) is replaced but names no replacement yet; read again later")
    raise VenueError(f"order {order.id} ({ours}) reads {status} with no replacement, yet does not lead to "
                     f"{last.id}: a read lagging its replace; read again later")  # fmt: skip


def _beyond(
    reader: Any, client: Any, chain: list[Any], ours: str, filled: float, avg_price: float | None
) -> list[OrderFilled | OrderPartiallyFilled]:
    """The executions of the orders of ``chain`` (cumulated over it, the last as listed) beyond
    ``filled``, read with ``reader``; per order, what its activities do not cover is made up."""
    out: list[OrderFilled | OrderPartiallyFilled] = []
    base = 0.0  # what the orders before this one filled
    value_before = 0.0  # their fills' value
    done_to = filled
    total = _chain_total(chain)
    for order in chain:
        own = num(order.filled_qty) or 0.0
        if base + own > done_to + _EPS:
            done_to = _order_beyond(reader, client, order, ours, base, done_to, total, out,
                                    _own_avg(filled, avg_price, out, base, value_before))  # fmt: skip
        base += own
        value_before += own * (num(order.filled_avg_price) or 0.0)
    return out


def _order_beyond(
    reader: Any, client: Any, order: Any, ours: str, base: float, done_to: float, total: float | None,
    out: list[Any], own_avg: float | None,
) -> float:
    """Appends to ``out`` the executions of ``order`` (the chain's orders before it filled
    ``base``) beyond ``done_to`` (cumulated over the chain); returns the new ``done_to``."""
    own, order_id = num(order.filled_qty) or 0.0, str(order.id)
    held = max(done_to - base, 0.0)  # of this order's own fills, in the book (at ``own_avg``)
    try:
        found = reader.read(client, order_id, own, order.submitted_at or order.created_at)
    except VenueError as exc:
        _log.warning("cannot read the executions of Alpaca order {} ({}) ({}): what it filled while "
                     "away gets a made-up execution id", order_id, ours, exc)  # fmt: skip
        found = []
    start = len(out)
    for ex in found:
        if base + ex.cum_qty <= done_to + _EPS or ex.cum_qty > own + _EPS:
            continue  # the book has it, or it came after the listing (the stream reports it)
        out.append(_event(order, ours, ex.exec_id, base + ex.cum_qty - done_to, ex.price, ex.time,
                          base + ex.cum_qty, total))  # fmt: skip
        done_to = base + ex.cum_qty
    if base + own > done_to + _EPS:  # not covered by the activities read
        before = max(done_to - base, 0.0)  # of this order's own fills, in the book or read
        price = fill_price_delta(before, _avg_after(held, own_avg, out[start:]), own, num(order.filled_avg_price))
        made_up = _event(order, ours, made_up_exec_id(order_id, own), base + own - done_to, price or 0.0,
                         order.updated_at, base + own, total, reconstructed=True)  # fmt: skip
        _log.warning("{:g} of Alpaca order {} ({}) filled while away without a known execution: "
                     "reported under the made-up execution id {}", made_up.quantity, order_id, ours,
                     made_up.exec_id)  # fmt: skip
        out.append(made_up)
        done_to = base + own
    return done_to


def _chain_total(chain: list[Any]) -> float | None:
    """Our order's total over the chain: what the orders before the last filled, plus its qty."""
    last = num(chain[-1].qty)
    return None if last is None else sum(num(o.filled_qty) or 0.0 for o in chain[:-1]) + last


def _own_avg(
    filled: float, avg_price: float | None, events: list[Any], base: float, value_before: float
) -> float | None:
    """The average price of an order's own fills the book holds: the book's fills (``filled`` at
    ``avg_price``, then ``events``) less the orders before it (``base`` at ``value_before``)."""
    qty = filled + sum(e.quantity for e in events) - base
    value = filled * (avg_price or 0.0) + sum(e.quantity * e.price for e in events) - value_before
    return value / qty if qty > _EPS else None


def _avg_after(qty: float, avg: float | None, events: list[Any]) -> float | None:
    value = qty * (avg or 0.0)
    for e in events:
        qty, value = qty + e.quantity, value + e.quantity * e.price
    return value / qty if qty > _EPS else None


def _event(
    order: Any, ours: str, exec_id: str, quantity: float, price: float, when: Any, cumulative: float,
    total: float | None, *, reconstructed: bool = False,
) -> OrderFilled | OrderPartiallyFilled:
    done = total is not None and cumulative >= total - _EPS
    cls = OrderFilled if done else OrderPartiallyFilled
    return cls(client_order_id=ours, exec_id=exec_id, asset=order.symbol or "", side=side_from_alpaca(order.side),
               quantity=quantity, price=price, timestamp=when, cumulative_quantity=cumulative,
               reconstructed=reconstructed, venue_order_id=str(order.id))  # fmt: skip
