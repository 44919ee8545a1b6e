"""Submitting one order to Alpaca, and settling an unknown outcome by client order id.

:class:`Submitter`, which :class:`~.gateway.AlpacaGateway` holds (engine thread); the walk of an
order's replacements by client order id: :class:`OrderChains`, which it holds too. Every order
carries our deterministic ``client_order_id``, and Alpaca refuses a second order under an id it
already holds (422 "client_order_id must be unique"), which is what makes the rules below safe:

1. ``POST /v2/orders`` answered -> the order (``OrderAccepted``, fills follow), or a definite
   refusal -> :class:`OrderRefused` (the broker rejects the order with Alpaca's reason). A 422 on
   our id means the order is already there (an earlier attempt or run): it is adopted.
2. No usable answer (timeout, reset or dropped connection, a body cut in the middle or not JSON,
   5xx, 504 after the venue took it): the outcome is UNKNOWN. Never re-sent blindly: first
   ``GET /v2/orders:by_client_order_id`` (retried up to ``max_request_attempts``):

   * found -> adopted: ``OrderAccepted``, then what it filled;
   * 404 (Alpaca says it has no such order) -> sent ONCE more under the same id: if the first
     attempt lands late after all, one of the two is refused by the uniqueness rule (422, which is
     then proof the order exists), so there is never a second order;
   * still no answer (or no request slot within ``request_timeout``: the look-up or the second
     attempt was not sent), or the second attempt is unknown too -> handed to
     :class:`~.unknown.UnknownOutcomes`: the stream's watchdog looks it up, a bounded number of
     times, and it ends as accepted or as ``OrderLost`` (never PENDING forever).

What ``place()`` costs the engine thread at worst (a venue that hangs): the POST, one look-up of
up to ``max_request_attempts`` requests with backoff, and one more POST, each bounded by
``request_timeout``; with the defaults (10 s, 4 attempts, 0.5 s first backoff) about 64 s.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.requests import GetOrderByIdRequest
from loguru import logger

from ...errors import ConnectionFailed, VenueError
from ...events import OrderRejected, VenueErrorReported
from ...protocols import OrderRequest
from .listing import SymbolOrders
from .parsing import NotExpressible, to_oco_request
from .rate_limit import RateLimitTimeout
from .rest import (
    AlpacaTradingClient,
    AmbiguousOutcome,
    VenueRequestFailed,
)

if TYPE_CHECKING:  # (annotations only)
    from .order_stream import OrderStream
    from .rest import RestCaller
    from .tracker import OrderTracker

_log = logger.bind(component="alpaca.gateway")
VENUE = "alpaca"
#: replacements a look-up follows; a longer chain is a failed look-up
MAX_REPLACEMENTS = 200
_REPLACEMENT_ID = re.compile(r"^(?P<ours>.+)\.r(?P<n>[0-9]+)$")
#: a read by id (``GET /v2/orders/{id}``) with an OCO pair's or a bracket's ``legs``: Alpaca
#: rolls them up under the order only with ``nested=true``
NESTED = GetOrderByIdRequest(nested=True)


def replacement_cid(ours: str, n: int) -> str:
    """The client order id ``modify`` gives the ``n``-th replacement of our order ``ours``."""
    return f"{ours}.r{n}"


def replacement_id(venue_client_order_id: str) -> tuple[str, int] | None:
    """``(<ours>, n)`` for the id ``<ours>.r<n>`` that ``modify`` gives a replacement
    (:func:`replacement_cid`), else None."""
    match = _REPLACEMENT_ID.match(venue_client_order_id or "")
    return (match["ours"], int(match["n"])) if match else None


class OrderRefused(VenueError):
    """Alpaca (or the adapter, before sending) refused the order; nothing is working at the venue."""


class BrokenChain(VenueRequestFailed):
    """A walk of one order's replacements cannot be followed (a replaced order names no replacement,
    or more than MAX_REPLACEMENTS follow): that order's state is unknown; the venue answered (no
    HTTP status: the walk's own finding, never Alpaca's), so other orders can still be read."""

    def __init__(self, cid: str, message: str) -> None:
        VenueError.__init__(self, f"Alpaca lookup {cid} cannot follow its replacements: {message}")
        self.status, self.code, self.message = None, "", message


def _duplicate_id(exc: VenueRequestFailed) -> bool:
    """Alpaca's answer to an id it already holds: 422 "client_order_id must be unique"."""
    return exc.status == 422 and "client_order_id" in exc.message.replace(" ", "_")


class OrderChains:
    """Our orders at Alpaca walked by client order id through their replacements, and the count
    of each order's replacements (``<ours>.r<n>``). Owned by the gateway, which hands it the REST
    caller, the tracker, its map of our ids to the current Alpaca ids (shared: a walk starts at
    the latest one), ``require`` (the connected client) and ``listed_id`` (the Alpaca id a
    listing showed for a submit of unknown outcome, or None). Used on the engine thread and on the
    stream's loop thread (its watcher of unknown submits walks chains too)."""

    def __init__(self, *, rest: RestCaller, tracker: OrderTracker, venue_ids: dict[str, str],
                 require: Callable[[], AlpacaTradingClient],
                 listed_id: Callable[[str], str | None] = lambda _cid: None,
                 found: Callable[[str], None] = lambda _cid: None) -> None:  # fmt: skip
        self.rest, self.tracker = rest, tracker
        self._venue_ids, self._require, self._listed_id, self._found = venue_ids, require, listed_id, found
        self._replaces: dict[str, int] = {}  # our id -> the last n of <id>.r<n>
        self._replaces_lock = threading.Lock()  # the stream's watcher walks chains too

    def lookup(self, cid: str, client: AlpacaTradingClient | None = None) -> Any:
        """The CURRENT order Alpaca holds under ``cid`` (the last of :meth:`chain`); None on a
        404; VenueRequestFailed without an answer."""
        chain = self.chain(cid, client)
        return chain[-1] if chain else None

    def chain(self, cid: str, client: AlpacaTradingClient | None = None) -> list[Any]:
        """The order Alpaca holds under ``cid`` (``GET /v2/orders:by_client_order_id``), then
        each order that replaced it (its ``replaced_by``), up to the one not ``replaced``: a
        modify at Alpaca is a new order under ``<cid>.r<n>``, and the order under ``cid`` stays
        ``replaced``. Each replacement's id is aliased to ours (its stream updates are ours) and
        counted in ``_replaces`` (the next modify's id is a new one, after a restart too).

        A strategy that re-prices an order every bar makes a long chain, so the walk starts at
        the latest order this session knows for ``cid`` (its venue id), and the replacements are
        read from a listing of the symbol's orders since the walk's first order
        (:class:`~.listing.SymbolOrders`): one page of 500 while the symbol has fewer orders
        since then (two requests for a chain of any length after a restart), a next page only
        when a replacement is missing from a full one (another strategy's orders on the symbol),
        at most 4; a replacement the pages do not hold is read by id (``GET /v2/orders/{id}``).
        [] on a 404 of ``cid``.
        VenueRequestFailed when a read gets no answer, and its :class:`BrokenChain` when a replaced
        order names no successor or more than MAX_REPLACEMENTS follow: unknown, never read as the
        replaced order's end. Called on
        the engine thread and on the stream's loop thread (its watcher of unknown submits).

        A submit of unknown outcome that a listing of open orders showed is read by the id it gave
        (``listed_id``, :meth:`Submitter._seen_listed`) while the session knows no other (see
        :meth:`_first`), so a look-up by client order id that gets no answer does not keep it
        unread. The walk's reads by id (its first order by a known Alpaca id, a replacement the
        listing pages do not hold or show as a multi-leg order not replaced) ask for the order's
        legs (:data:`NESTED`: an OCO pair's stop leg, which a submit of unknown outcome's report
        takes from the chain's last order); a replacement from the listing comes without them.

        ``found`` is told ``cid`` once a first read returned an order under ``cid`` (its client
        order id, or one of its replacements'): it exists at Alpaca, also when a later read of the
        walk fails (a submit of unknown outcome is then never declared lost:
        :meth:`.unknown.UnknownOutcomes.answered`). A read answered, after the retries, with a body
        that cannot be read raises :class:`~.rest.UnreadableAnswer` and tells nothing: an answer
        that proves nothing about the order (the watcher's own look-up takes it as no miss:
        :meth:`.unknown.UnknownOutcomes.unread_answer`)."""
        client = client or self._require()
        try:
            order = self._first(client, cid)
        except VenueRequestFailed as exc:
            if exc.status == 404:
                return []
            raise
        if cid in (str(order.client_order_id), self.tracker.ours(str(order.client_order_id))):
            self._found(cid)  # (it exists, whether or not the reads after this one are answered)
        ours = self.tracker.ours(cid) or cid
        chain = [order]
        listed: SymbolOrders | None = None
        while order.status is AlpacaStatus.REPLACED:
            if order.replaced_by is None or len(chain) > MAX_REPLACEMENTS:
                why = "names no replacement" if order.replaced_by is None else (
                    f"is still replaced after {MAX_REPLACEMENTS} replacements followed")
                raise BrokenChain(cid, f"replaced order {order.id} {why}")
            successor = str(order.replaced_by)
            if listed is None:
                listed = SymbolOrders(self.rest, client, cid, chain[0])
            order = listed.get(successor) or self.rest(
                f"lookup {cid} (replacement {successor})",
                lambda v=successor: client.get_order_by_id(v, NESTED), repeatable=True,
            )  # fmt: skip
            chain.append(order)
            self._replacement_of(ours, str(order.client_order_id))
        return chain

    def _first(self, client: AlpacaTradingClient, cid: str) -> Any:
        """The walk's first order: the latest this session knows for ``cid``; else the one a listing
        showed (``listed_id``) when Alpaca shows it under ``cid``; else (none listed, a 404 of the
        listed id, or another order there) the order under ``cid`` by client order id."""
        latest = self._venue_ids.get(cid)
        listed_id = None if latest is not None else self._listed_id(cid)
        if latest is not None or listed_id is None:
            return self._read(client, cid, latest)
        try:
            order = self._read(client, cid, listed_id)
        except VenueRequestFailed as exc:
            if exc.status != 404:
                raise
            return self._read(client, cid, None)  # (a 404 of what a listing showed: asked by client order id)
        # (what a listed replacement replaces may be another replacement: asked by client order id)
        return order if str(order.client_order_id) == cid else self._read(client, cid, None)

    def _read(self, client: AlpacaTradingClient, cid: str, venue_id: str | None) -> Any:
        """The order ``venue_id`` with its legs (:data:`NESTED`), or without one the order under
        ``cid`` (``GET /v2/orders:by_client_order_id``, which shows them unasked)."""
        if venue_id is not None:
            return self.rest(f"lookup {cid} ({venue_id})", lambda: client.get_order_by_id(venue_id, NESTED),
                             repeatable=True)  # fmt: skip
        return self.rest("lookup " + cid, lambda: client.get_order_by_client_id(cid), repeatable=True)

    def next_replace(self, cid: str) -> int:
        """The next n of ``<cid>.r<n>`` (the look-ups' walks count the replacements they find)."""
        with self._replaces_lock:
            n = self._replaces[cid] = self._replaces.get(cid, 0) + 1
        return n

    def _replacement_of(self, ours: str, venue_cid: str) -> None:
        """``venue_cid`` is the id of a replacement of our order ``ours``: alias and count it."""
        self.tracker.alias(venue_cid, ours)
        parsed = replacement_id(venue_cid)
        if parsed is not None and parsed[0] == ours:
            with self._replaces_lock:  # (the stream's watcher walks chains on its own thread)
                self._replaces[ours] = max(self._replaces.get(ours, 0), parsed[1])

    def ours_by_replacement(self, order: Any, is_ours: Callable[[str], bool]) -> str | None:
        """Our id of a listed replacement the tracker does not know (``<ours>.r<n>`` that
        ``replaces`` an order, e.g. after a restart; ``is_ours``: whether an id is one of ours),
        aliased from now on; else None."""
        parsed = replacement_id(str(order.client_order_id))
        if order.replaces is None or parsed is None or not is_ours(parsed[0]):
            return None
        self._replacement_of(parsed[0], str(order.client_order_id))
        return parsed[0]


class Submitter:
    """Submits our orders to Alpaca and settles an unknown outcome (see the module docstring).
    Owned by the gateway, which hands it the REST caller, the tracker, the order stream (its
    reader of executions, its watcher of unknown submits, its emit), its map of our ids to the
    current Alpaca ids (shared: a submit sets it), ``require`` (the connected client) and the
    walks of :class:`OrderChains`: ``lookup`` (the current order under a client order id, None
    if none) and ``chain`` (the order under it and its replacements)."""

    def __init__(self, *, rest: RestCaller, tracker: OrderTracker, stream: OrderStream,
                 venue_ids: dict[str, str], require: Callable[[], AlpacaTradingClient],
                 lookup: Callable[[str], Any],
                 chain: Callable[[str, AlpacaTradingClient], list[Any]]) -> None:  # fmt: skip
        self.rest, self.tracker, self.stream = rest, tracker, stream
        self._venue_ids, self._require, self._lookup, self._chain = venue_ids, require, lookup, chain
        self._emit = stream.emit

    def submit(self, cid: str, body: Any, *, also: str | None = None) -> Any:
        """The order Alpaca holds under ``cid`` once sent; None while its outcome is unknown.
        Every VenueError it raises means not placed (Alpaca refused it: OrderRefused; or it was
        not sent: RateLimitTimeout, ConnectionFailed when not connected)."""
        client = self._require()
        self.tracker.register(cid)
        if also is not None:
            self.tracker.register(also)
        try:
            order = self.rest("submit " + cid, lambda: client.submit_order(body), repeatable=False)
        except AmbiguousOutcome as exc:
            _log.warning("submit of {} got no usable answer ({}); looking it up by client order id", cid, exc)
            order = self._resolve(cid, body, str(exc), also)
        except VenueRequestFailed as exc:
            if not _duplicate_id(exc):
                raise OrderRefused(f"Alpaca refused {cid}: {exc.message} (code {exc.code})") from None
            # our id is already there (an earlier attempt, or an earlier run): adopt that order,
            # never a second one; its fills from before we knew it are in the account
            order = self._find_existing(cid, f"{exc.message} (HTTP 422)", also, body)
            if order is not None:
                self._venue_ids[cid] = str(order.id)
                executions = self.stream.executions.for_view(client, order, adopting=True)
                self._emit(self.tracker.adopt(order, executions))
            return order
        if order is None:
            return None
        self._venue_ids[cid] = str(order.id)
        executions = self.stream.executions.for_view(client, order)
        self._emit(self.tracker.on_order_snapshot(order, executions))
        return order

    def _resolve(self, cid: str, body: Any, why: str, also: str | None) -> Any:
        """The order Alpaca holds under ``cid`` after a submit without a usable answer, or None
        (unknown: handed to the bounded look-ups of :class:`~.unknown.UnknownOutcomes`)."""
        try:
            found = self._lookup(cid)
        except VenueError as exc:  # no answer, or no request slot in time: unknown, never refused
            return self._unknown(cid, f"{why}; look-up failed: {exc}", also, body)
        if found is not None:
            _log.info("order {} had reached Alpaca ({}); adopted", cid, found.status.value)
            return found
        _log.warning("Alpaca has no order {} (404); sending it once more under the same id", cid)
        client = self._require()
        try:
            return self.rest("resubmit " + cid, lambda: client.submit_order(body), repeatable=False)
        except AmbiguousOutcome as exc:
            return self._unknown(cid, f"{why}; the second attempt too: {exc}", also, body)
        except RateLimitTimeout as exc:  # not sent, but the first attempt may still land
            return self._unknown(cid, f"{why}; the second attempt was not sent: {exc}", also, body)
        except VenueRequestFailed as exc:
            if _duplicate_id(exc):  # the first attempt did land: proof the order exists
                return self._find_existing(cid, f"{exc.message} (HTTP 422)", also, body)
            raise OrderRefused(f"Alpaca refused {cid}: {exc.message} (code {exc.code})") from None

    def _find_existing(self, cid: str, why: str, also: str | None, body: Any) -> Any:
        """Alpaca said it holds ``cid``: read it, or follow it as unknown if the read fails."""
        try:
            found = self._lookup(cid)
        except VenueError as exc:  # no answer, or no request slot in time
            found, why = None, f"{why}; look-up failed: {exc}"
        return found if found is not None else self._unknown(cid, why, also, body)

    def _unknown(self, cid: str, reason: str, also: str | None, body: Any) -> None:
        self.stream.unknown.add(cid, reason, also, symbol=getattr(body, "symbol", None))
        self._emit([VenueErrorReported(VENUE, "submit_unconfirmed", f"{cid}: {reason}; still looking", cid)])
        limit, every = self.stream.unknown.limit, self.stream.config.order_poll_interval
        _log.warning(
            "cannot tell yet whether Alpaca has order {} ({}); looking it up by client order id "
            "every {:g}s, at most {} times, before it counts as lost", cid, reason, every, limit,
        )  # fmt: skip

    def found_listed(self, client: AlpacaTradingClient, cid: str, listed: Any) -> None:
        """A listing of open orders (a snapshot) shows ``listed`` under ``cid``, a submit of
        unknown outcome: settled and its chain reported as the watcher does
        (:meth:`~.order_stream.OrderStream.found_unknown`: accepted, what it filled, once), never
        adopted (an adopted order's fills so far count as reported). A look-up that gets no
        answer (a refusal, no request slot in time) or finds nothing, or a report that raises
        (counted as the watcher's failures are, :meth:`~.order_stream.OrderStream.report_failed`),
        leaves it of unknown outcome to the watcher's look-ups, as does a watcher (or a modify's
        or cancel's look-up) that is reporting it already; the listing goes on either way. A
        look-up that gets no answer or finds nothing notes the listing
        (:meth:`~.unknown.UnknownOutcomes.seen_listed`): it is never declared lost, and the
        walks read it by the listed Alpaca id (:meth:`OrderChains.chain`)."""
        try:
            chain = self._chain(cid, client)
        except VenueError as exc:
            self._seen_listed(cid, listed)
            _log.warning("order {} of unknown outcome is listed open at Alpaca ({}) but its look-up got "
                         "no answer ({}); it stays of unknown outcome, never declared lost (it exists), "
                         "left to the adapter's watcher", cid, listed.id, exc)  # fmt: skip
            return
        try:
            reported = bool(chain) and self.stream.found_unknown(client, cid, chain, on_loop=False)
        except Exception as exc:  # noqa: BLE001  (released and counted: a listing never fails on one report)
            self.stream.report_failed(cid, exc, "a listing of open orders", on_loop=False)
            return
        if reported:
            self._venue_ids[cid] = str(chain[-1].id)  # (set once reported, as in _venue_id)
        elif chain:
            _log.info("order {} of unknown outcome is listed open at Alpaca while its look-up "
                      "reports it; left to that report", cid)  # fmt: skip
        else:
            self._seen_listed(cid, listed)
            _log.warning("order {} of unknown outcome is listed open at Alpaca ({}) but its look-up "
                         "found nothing; it stays of unknown outcome, never declared lost (it exists), "
                         "left to the adapter's watcher", cid, listed.id)  # fmt: skip

    def found_looked_up(self, client: AlpacaTradingClient, cid: str, chain: list[Any]) -> bool:
        """A look-up by client order id (the gateway's ``lookup``: a cancel check's) found ``cid``,
        a submit of unknown outcome, as ``chain`` (non-empty): settled and its chain reported as
        the watcher does (True: accepted, what it filled, its end, once each), or left to another
        that is reporting it (False). A report that raises is counted as the watcher's failures
        are (:meth:`~.order_stream.OrderStream.report_failed`) and raised as ConnectionFailed: the
        look-up failed, the order stays of unknown outcome."""
        try:
            return self.stream.found_unknown(client, cid, chain, on_loop=False)
        except Exception as exc:  # noqa: BLE001  (released and counted; the caller takes a failed look-up)
            self.stream.report_failed(cid, exc, "a look-up by client order id", on_loop=False)
            raise ConnectionFailed(f"Alpaca look-up of {cid} found it (a submit of unknown outcome), but its "
                                   f"report failed ({type(exc).__name__}); it stays of unknown outcome") from None

    def submit_oco(self, a: OrderRequest, b: OrderRequest) -> None:
        """Submit the OCO pair ``a`` / ``b`` (its take-profit limit and its stop) as one order; its
        stop leg, accepted with it, is ours under the stop's client order id."""
        take, stop = (a, b) if a.order_type.value == "limit" else (b, a)
        try:
            body = to_oco_request(take, stop)
        except NotExpressible as exc:
            # refuse both: two independent exits could both fill
            self._emit([OrderRejected(a.client_order_id, str(exc), "not_expressible")])
            raise OrderRefused(str(exc)) from None
        try:
            order = self.submit(take.client_order_id, body, also=stop.client_order_id)
        except VenueError as exc:  # not placed (refused, or no request slot: never sent); the pair
            # is one order: the member placed first is refused too
            self._emit([OrderRejected(a.client_order_id, str(exc), "refused")])
            raise
        if order is not None:
            for leg in order.legs or []:
                if str(leg.client_order_id) != take.client_order_id:
                    self.tracker.alias(leg.client_order_id, stop.client_order_id)
                    self._venue_ids[stop.client_order_id] = str(leg.id)
                    # accepted now, with its Alpaca id (journaled: a restart finds the leg by it)
                    self._emit(self.tracker.on_order_snapshot(leg))

    def found_for_change(self, client: AlpacaTradingClient, cid: str, chain: list[Any], wait: float) -> str:
        """The Alpaca id a modify or cancel of ``cid``, a submit of unknown outcome found as ``chain``
        (non-empty), goes to. Its whole chain is settled and reported first
        (:meth:`~.order_stream.OrderStream.found_unknown`): what the order under ``cid`` filled is
        reported once, and a replace then continues its cumulative fills. One that another (the
        watcher) claimed first is waited for, at most ``wait`` seconds, until its report is on the
        queue; :class:`~.unknown.BeingReported` (nothing sent; its ``venue_id`` the chain's current
        order, for a cancel) when it is not, and when the report raises (here or the other's: it
        stays of unknown outcome)."""
        # imported here: unknown.py's BeingReported subclasses this module's OrderRefused
        from .unknown import BeingReported

        try:
            claimed_elsewhere = not self.stream.found_unknown(client, cid, chain, on_loop=False)
        except Exception as exc:  # (released and counted: refused as one being reported)
            self.stream.report_failed(cid, exc, "the look-up of a modify or cancel", on_loop=False)
            raise BeingReported(
                f"{cid}, a submit of unknown outcome, was found, but its report failed ({type(exc).__name__}; "
                "it stays of unknown outcome: the adapter's watcher looks it up again): what it filled is not "
                "counted yet, so nothing was sent; it works unchanged, ask again at a later bar",
                str(chain[-1].id)) from exc
        if claimed_elsewhere and not self.stream.unknown.wait_settled(cid, wait):
            what = (f"is still being reported by the adapter's watcher (after {wait:g}s)"
                    if self.stream.unknown.claimed(cid) else "was found, but its report failed (it stays of "
                    "unknown outcome: the adapter's watcher looks it up again)")  # fmt: skip
            raise BeingReported(
                f"{cid}, a submit of unknown outcome, {what}: what it filled is not counted yet, so "
                "nothing was sent; it works unchanged, ask again at a later bar", str(chain[-1].id))  # fmt: skip
        venue_id = self._venue_ids[cid] = str(chain[-1].id)  # (set once reported: a watcher's walk until then starts at the first order)
        return venue_id

    def _seen_listed(self, cid: str, listed: Any) -> None:
        """``listed`` shows ``cid``, a submit of unknown outcome: it exists, and the watcher reads it by
        ``listed``'s id when that is the order under ``cid`` (an OCO pair too: :data:`NESTED`), or by the
        id its first replacement ``<cid>.r1`` ``replaces`` (the walk starts at the order under ``cid``,
        whose fills count too); a later replacement's ``replaces`` is the one before it: none."""
        if str(listed.client_order_id) == cid:
            first = str(listed.id)
        elif replacement_id(str(listed.client_order_id)) == (cid, 1) and listed.replaces is not None:
            first = str(listed.replaces)  # (OrderChains._first checks it is the order under cid)
        else:
            first = None
        self.stream.unknown.seen_listed(cid, first)
