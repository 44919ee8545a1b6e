"""AlpacaGateway: the :class:`~ml4t_live.protocols.VenueGateway` for Alpaca (paper or live).

Two sides, as the design asks:

* REST on the **engine thread**: alpaca-py's ``TradingClient`` is synchronous, so ``place`` /
  ``modify`` / ``cancel`` / ``snapshot`` / ``end_of_bar`` call it directly, each request behind the
  shared token bucket and the retry policy of :mod:`.rest`.
* ``trade_updates`` on its **own loop thread** (:class:`~.order_stream.OrderStream`): each update
  goes through the :class:`~.tracker.OrderTracker` (ours only, each execution once) onto the
  stream session's janus queue, which is this gateway's ``events``.

Order identity: every order carries the engine's deterministic ``client_order_id``; submitting
and resolving an ambiguous outcome by that id: :class:`~.submit.Submitter`, which the gateway owns
(``submitter``); the walk of an order's replacements by that id: :class:`~.submit.OrderChains`
(``chains``). A replace gets the
id ``<ours>.r<n>``, which the tracker maps back to ours; one Alpaca refuses raises (the order
works unchanged, so the broker keeps it as it was); the replace and the check that the chain
trades no more than asked: :class:`~.modify.Modifier`, which the gateway owns (``modifier``).

Combined orders (OCA pairs -> one Alpaca ``oco``; bracket exits held until the entry fills):
:class:`~.held.HeldOrders`. Connect: account -> live guard -> stream up -> positions and open
orders -> AccountSnapshot; state that cannot be read or understood raises ReconciliationError
(fail closed). Re-sync after a reconnect or a silent stream: :class:`~.order_stream.OrderStream`.
The listed orders of ours and what they filled while no runtime ran (a warm restart):
:class:`~.away.WhileAway`, which the gateway owns (``away``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from loguru import logger

from ...errors import (
    CancelRefused,
    ConnectionFailed,
    LiveTradingRefused,
    ReconciliationError,
    VenueError,
)
from ...events import (
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderReplaced,
    VenueErrorReported,
)
from ...logs import log_failure
from ...protocols import AccountSnapshot, OrderRequest, VenueOrder
from .away import WhileAway, legs_of_ours
from .config import AlpacaConfig, redact
from .held import HeldOrders
from .kept_cancels import CHANGING, refused_in, replacement_is_ours
from .lookups import Turns, Unread, look_up_each
from .modify import Modifier
from .order_stream import OrderStream
from .parsing import (
    NotExpressible,
    account_snapshot,
    describe_foreign,
    flatten_open,
    to_order_request,
    venue_order,
)
from .rate_limit import TokenBucket
from .rest import AlpacaTradingClient, RestCaller, UnreadableAnswer, VenueRequestFailed
from .submit import BrokenChain, OrderChains, OrderRefused, Submitter
from .tracker import OrderTracker
from .unknown import BeingReported
from .working import await_working

_log = logger.bind(component="alpaca.gateway")
VENUE = "alpaca"
#: account flags under which Alpaca refuses orders (alpaca-py ``TradeAccount``): connect refuses
_BLOCKING_FLAGS = ("trading_blocked", "account_blocked", "trade_suspended_by_user")


class AlpacaGateway:
    venue = VENUE

    def __init__(
        self, config: AlpacaConfig, *, is_ours: Callable[[str], bool] | None = None
    ) -> None:
        self.config = config
        self.is_ours = is_ours or (lambda _cid: False)
        self.bucket = TokenBucket(
            config.max_requests_per_minute, config.rate_limit_burst
        )
        self.rest = RestCaller(config, self.bucket)
        self.tracker = OrderTracker()
        self._client: AlpacaTradingClient | None = None
        self._venue_ids: dict[
            str, str
        ] = {}  # our client order id -> current Alpaca order id
        self.chains = OrderChains(rest=self.rest, tracker=self.tracker, venue_ids=self._venue_ids,
                                  require=self._require,
                                  listed_id=lambda cid: self.stream.unknown.listed_id(cid),
                                  found=lambda cid: self.stream.unknown.answered(cid))  # fmt: skip
        self.stream = OrderStream(config, self.tracker, self.rest, self.chains.chain)
        self.submitter = Submitter(rest=self.rest, tracker=self.tracker, stream=self.stream, venue_ids=self._venue_ids,
                                   require=self._require, lookup=self.chains.lookup,
                                   chain=self.chains.chain)  # fmt: skip
        self.modifier = Modifier(rest=self.rest, tracker=self.tracker, stream=self.stream, venue_ids=self._venue_ids,
                                 venue_id=self._venue_id, lookup=self.chains.lookup, require=self._require,
                                 next_replace=self.chains.next_replace)  # fmt: skip
        self.away = WhileAway(self.rest, self.tracker, self.stream.executions, stream=self.stream,
                              current_ids=self._venue_ids, walk=self.chains.chain,
                              check_chain=self.modifier.check_chain)  # (listed working orders)
        self.held = HeldOrders()  # OCA members and bracket exits not sent yet
        self._turns = Turns()  # the order lookup() asks its ids in (those failing last)
        self.account_number = ""
        self.is_paper = config.paper
        self._connected = False

    # ================================================================== engine thread
    @property
    def events(self) -> Any:
        return self.stream.events

    def connect(self) -> AccountSnapshot:
        client = AlpacaTradingClient(self.config)  # kept only once the account may trade
        try:
            account = self.rest("account", client.get_account, repeatable=True)
        except VenueRequestFailed as exc:
            raise ConnectionFailed(
                f"Alpaca refused the account request: {exc}"
            ) from None
        self.account_number = account.account_number
        self._check_live(account.account_number)
        blocked = [flag for flag in _BLOCKING_FLAGS if getattr(account, flag, None)]
        status = getattr(getattr(account, "status", None), "value", None)
        if status is not None and status != "ACTIVE":
            raise ReconciliationError(
                f"Alpaca account {account.account_number} is not active (status {status}); "
                "refusing to start"
            )
        if blocked:
            raise ReconciliationError(
                f"Alpaca account {account.account_number} is blocked for trading "
                f"({', '.join(blocked)}); refusing to start"
            )
        self._client = client
        self.stream.start()
        self._connected = True
        try:
            snapshot = self.snapshot()
            self.stream.watch()
        except BaseException:
            self.close()
            raise
        _log.info(
            "connected to Alpaca {} account {} ({} positions, {} open orders)",
            "paper" if snapshot.is_paper else "LIVE",
            snapshot.account_id,
            len(snapshot.positions),
            len(snapshot.open_orders),
        )
        return snapshot

    def _check_live(self, account_number: str) -> None:
        live = self.config.is_live_account(account_number)
        self.is_paper = not live
        if not live:
            return
        confirm = self.config.confirm_live
        if not self.config.allow_live or confirm is None or not confirm(account_number):
            why = (
                "paper=False"
                if not self.config.paper
                else "its number does not start with 'PA'"
            )
            raise LiveTradingRefused(
                f"Alpaca account {account_number} counts as a LIVE (real-money) account ({why}); "
                "live trading needs allow_live=True and a confirm_live callback that returns True"
            )
        _log.warning("LIVE trading confirmed on Alpaca account {}", account_number)

    def snapshot(self) -> AccountSnapshot:
        """The account now (positions, our open orders adopted or settled, foreign ones reported);
        ReconciliationError when it cannot be read (refused, no answer, or no request slot within
        ``request_timeout``) or understood: callers never take unknown for flat."""
        client = self._require()
        try:
            account = self.rest("account", client.get_account, repeatable=True)
            positions = self.rest(
                "positions", client.get_all_positions, repeatable=True
            )
            query = GetOrdersRequest(
                status=QueryOrderStatus.OPEN, limit=500, nested=True
            )
            orders = self.rest(
                "open orders", lambda: client.get_orders(query), repeatable=True
            )
        except (VenueError, ValueError) as exc:  # refused, no answer, or no request slot in time
            raise ReconciliationError(
                f"cannot read the Alpaca account state: {exc}"
            ) from None
        open_orders = []
        legs = legs_of_ours(orders, self.is_ours)  # (an OCO's stop leg: a client id Alpaca chose)
        listed = flatten_open(orders)
        superseded = self.away.new_listing(listed)
        for order in listed:
            cid = (
                self.tracker.ours(order.client_order_id)
                or self.chains.ours_by_replacement(order, self.is_ours)
                or order.client_order_id
            )
            if self.is_ours(cid) and cid in self.stream.unknown:
                self.submitter.found_listed(client, cid, order)  # reported as the watcher would, not adopted
            elif self.is_ours(cid):
                self.away.adopt_listed(client, cid, order, superseded=str(order.id) in superseded)
            elif str(order.id) in legs:  # ours: a restart's look-up finds it by its Alpaca id
                _log.info("Alpaca order {} ({}) is a leg of our order {}", order.id, cid, legs[str(order.id)])
            else:
                self._emit(
                    [
                        VenueErrorReported(
                            VENUE, "foreign_order", describe_foreign(order), cid
                        )
                    ]
                )
            open_orders.append(venue_order(order, cid))
        self.away.pair_pending(listed)
        try:
            return account_snapshot(
                account, positions, open_orders, is_paper=self.is_paper
            )
        except (TypeError, ValueError) as exc:
            raise ReconciliationError(
                f"cannot understand the Alpaca account state: {exc}"
            ) from None

    def lookup(self, client_order_ids: Iterable[str]) -> dict[str, VenueOrder]:
        """Where Alpaca has these client order ids (``GET /v2/orders:by_client_order_id``), each
        asked on its own (:func:`~.lookups.look_up_each`): ids Alpaca does not know are absent; an
        id it could not read (refused, no answer, an answer that cannot be read, no request slot
        within ``request_timeout``, or found with a report that raised) is unknown, never absent: LookupIncomplete (a
        ConnectionFailed) once the others were asked (those after a read that says Alpaca cannot be
        asked now, or after a second 5xx in a row, unasked), with what they came to; the ids whose
        read failed are asked after the others at the next look-up (:class:`~.lookups.Turns`). A found order is
        ours from now on: what it filled is reported as events; one whose report raises is
        logged with the traceback and not taken (its next look-up reports what this one did not,
        each execution once). A submit of unknown outcome is settled and reported as the adapter's
        watcher does (:meth:`~.submit.Submitter.found_looked_up`): absent while another reports
        it, unread when its report raises (it stays of unknown outcome).

        An order a modify replaced is reported as its CURRENT incarnation (the replacements its
        ``replaced_by`` leads to, see :meth:`~.submit.OrderChains.chain`), under our id: the order
        under our id stays ``replaced`` at Alpaca while its replacement works, fills or ends."""
        client = self._require()
        return look_up_each(client_order_ids, lambda cid: self._look_up_one(client, cid), self._turns)

    def _look_up_one(self, client: AlpacaTradingClient, cid: str) -> VenueOrder | None:
        self.tracker.register(cid)
        try:
            chain = self.chains.chain(cid) or self.away.chain_by_venue_id(cid)
        except BrokenChain as exc:  # (its replacements cannot be followed: this order's alone)
            raise Unread(f"look-up of {cid} found it, but {exc}", failure=exc) from None
        except UnreadableAnswer as exc:  # (an answer alpaca-py cannot read, after the retries)
            raise Unread(f"look-up of {cid} got an answer that cannot be read: {exc}", failure=exc) from None
        except VenueError as exc:  # an HTTP error status, no answer, or no request slot in time (not sent)
            answered = isinstance(exc, VenueRequestFailed) and exc.status is not None
            raise Unread(f"look-up of {cid} {'failed' if answered else 'got no answer'}: {exc}", failure=exc) from None
        if not chain:
            return None
        if cid in self.stream.unknown:  # a submit of unknown outcome: reported as the watcher would
            try:
                if not self.submitter.found_looked_up(client, cid, chain):
                    return None  # (another reports it: its events end it)
            except ConnectionFailed as exc:  # (its report raised: counted and logged as the watcher's)
                raise Unread(str(exc)) from None
        else:
            try:
                self.away.start_from_book(cid, chain)  # (a fresh tracker: the book's fills count as reported)
                self.stream.report_chain(client, chain, on_loop=False)
            except Exception as exc:  # noqa: BLE001  (logged with its traceback; this id alone is unread)
                log_failure(_log, exc, "Alpaca look-up of {} found it (Alpaca order {}), but its report failed; "
                            "it is reported at its next look-up", cid, chain[-1].id)  # fmt: skip
                raise Unread(redact(f"look-up of {cid} found it, but its report failed ({type(exc).__name__}: "
                                    f"{exc})", self.config)) from None  # fmt: skip
        self._venue_ids[cid] = str(chain[-1].id)
        return venue_order(chain[-1], cid)

    def follows_unknown(self, client_order_id: str) -> bool:
        """True while the adapter itself looks up this submit of unknown outcome (see
        :mod:`.unknown`): the broker leaves it to the adapter, whose events settle it."""
        return client_order_id in self.stream.unknown

    def place(self, request: OrderRequest) -> None:
        if request.parent_client_order_id is not None:
            self.held.hold_exit(request)  # sent once the entry has filled (see .held)
            return
        if request.oca_group is not None:
            first = self.held.pair(request)
            if first is not None:
                self.submitter.submit_oco(first, request)
            return
        try:
            body = to_order_request(request)
        except NotExpressible as exc:
            raise OrderRefused(str(exc)) from None
        self.submitter.submit(request.client_order_id, body)

    def cancel(self, client_order_id: str) -> None:
        """Ask Alpaca to cancel; the ``canceled`` trade update confirms it.

        Raises :class:`~ml4t_live.errors.CancelRefused` when Alpaca refuses: 422 (already filled,
        already canceled, or already ``pending_cancel``: a cancel Alpaca took and has not carried
        out, the order still working; the runtime follows it, see ``ml4t_live.cancel_resends``)
        or 404 (Alpaca has no such order, e.g. a submit still of unknown outcome). The order's
        real outcome (its fill, its cancel) then arrives as its events. No answer
        at all (retried as a repeatable request) raises :class:`VenueRequestFailed`.

        While the check of the order's last replace is pending (a modify's, or the runtime's own
        cut or bring-back: :func:`~.kept_cancels.cancel_asked`), the cancel is kept as well: the
        check changes the chain no more, and the cancel is sent to the order the chain settles on
        (a cut Alpaca does not carry out leaves the old order working); a refusal because the
        order is ``pending_new``, ``pending_replace`` or ``replaced`` (that replace in flight) is
        then no refusal: the cancel is taken, sent once the chain settles. A cancel that raises
        (no answer, or refused otherwise) is not kept: the strategy is told it failed.

        A submit of unknown outcome that the watcher is still reporting, or whose report failed
        (:class:`~.unknown.BeingReported` from the look-up), is cancelled all the same: a cancel
        needs no fills counted first, and the end of a run or a halt must not leave it working.
        The cancel goes to the order the look-up found; the order stays of unknown outcome, and
        its end and fills are reported once its report is on the queue (the watcher's look-up,
        a listing, a later cancel), each once.
        """
        if self.held.drop(client_order_id):
            return
        try:
            venue_id = self._venue_id(client_order_id)
        except BeingReported as exc:
            if exc.venue_id is None:
                raise  # (not found: nothing to cancel by id, the cancel failed)
            venue_id = exc.venue_id
            _log.warning("cancelling {} (Alpaca order {}), a submit of unknown outcome whose report is not on "
                         "the queue yet: its end and fills are reported with it", client_order_id, venue_id)  # fmt: skip
        except OrderRefused as exc:
            raise CancelRefused(f"cannot cancel {client_order_id}: {exc}") from None
        client = self._require()
        for may_follow in (True, False):
            try:
                self.rest(
                    "cancel " + client_order_id,
                    lambda v=venue_id: client.cancel_order_by_id(v),
                    repeatable=True,
                )
                break
            except VenueRequestFailed as exc:
                if exc.status not in (404, 422):
                    raise
                _log.info("Alpaca refused to cancel {}: {} (HTTP {})", client_order_id, exc.message, exc.status)
                state = refused_in(exc)
                if state in CHANGING and self.modifier.cancel_asked(client_order_id):  # (kept: its replace's check pending)
                    _log.info("the cancel of {} is sent to the order its chain settles on once its replace is "
                              "checked", client_order_id)  # fmt: skip
                    return
                if may_follow and state == "replaced" and (new_id := self._replacement(client_order_id, venue_id)):
                    venue_id = new_id  # (followed: the cancel sent to it, once)
                    continue
                raise CancelRefused(
                    f"Alpaca refused to cancel {client_order_id}: {exc.message} (HTTP {exc.status})",
                    ended=state,
                ) from None
        self.modifier.cancel_asked(client_order_id)  # (taken; its replace's check pending: kept, sent once settled)

    def _replacement(self, client_order_id: str, venue_id: str) -> str | None:
        """The cancel of ``client_order_id`` refused because Alpaca order ``venue_id`` is
        ``replaced`` (the stream's update of the replace lost or not seen yet, e.g. a cut whose
        answer was lost): that order read and reported first (its fills final), and the order its
        ``replaced_by`` names followed (this cancel and any later one go to it). None (the refusal
        raised) when it cannot be read or names no replacement yet."""
        try:
            order = self.modifier.read_reported(self._require(), venue_id)
        except VenueError as exc:
            _log.warning("the order {} ({}) refused a cancel as replaced and cannot be read: {}", venue_id,
                         client_order_id, exc)  # fmt: skip
            return None
        if order.status is not AlpacaStatus.REPLACED or order.replaced_by is None:
            _log.warning("the order {} ({}) refused a cancel as replaced and reads {}, replaced by {}", venue_id,
                         client_order_id, order.status.value, order.replaced_by)  # fmt: skip
            return None
        new_id = str(order.replaced_by)
        if not replacement_is_ours(self.modifier, self._require(), client_order_id, new_id):
            return None  # (another client's, ALERTed, or unread: the refusal raised, nothing followed)
        _log.warning("Alpaca refused the cancel of {} (Alpaca order {}), the order replaced by {}: {} is followed "
                     "and the cancel sent to it", client_order_id, venue_id, new_id, new_id)  # fmt: skip
        self.modifier.follow(client_order_id, venue_id, new_id)
        return new_id

    def modify(self, request: OrderRequest) -> None:
        """Change our order ``request.client_order_id`` to ``request``'s terms: one not sent yet
        goes out as modified; a working one is replaced (:class:`~.modify.Modifier`)."""
        if self.held.update(request):
            self._emit([OrderReplaced(request.client_order_id, request.quantity, request.limit_price,
                                      request.stop_price)])  # fmt: skip
            return
        if self.modifier.modify(request):  # (the restart's walk of it waiting, if any, stands for older terms)
            self.away.drop_rewalk(request.client_order_id)

    def end_of_bar(self, timestamp: Any) -> None:
        ready, dead = self.held.release_exits(self.tracker.outcome)
        if dead:
            reason = "parent order did not fill"
            self._emit([OrderCancelled(r.client_order_id, reason) for r in dead])
        for request in ready + self.held.lone_members():
            self.place(request)
        client = self._require()
        self.away.walk_again(client)  # (a restart's chain to check, not walked up to now yet)
        self.modifier.check_replaces()
        self.rest("clock", client.get_clock, repeatable=True)
        await_working(self.rest, client, self.stream)  # the stream delivers what REST shows

    def close(self) -> None:
        self.rest.close()
        self.stream.close()
        self._connected = False

    # ------------------------------------------------------------------ helpers
    def _require(self) -> AlpacaTradingClient:
        if self._client is None:
            raise ConnectionFailed(
                "AlpacaGateway is not connected; call connect() first"
            )
        return self._client

    def _venue_id(self, cid: str) -> str:
        """The Alpaca id of our order ``cid`` now (for a modify or a cancel), looked up when not
        known; a submit of unknown outcome found so: :meth:`~.submit.Submitter.found_for_change`.
        A replacement whose end the tracker took as a replace not carried out gives way to the
        old order it follows again."""
        venue_id = self._venue_ids.get(cid)
        if venue_id is not None and (old := self.tracker.followed_instead(venue_id)) is not None:
            venue_id = self._venue_ids[cid] = old  # (its replacement ended: a replace not carried out)
        venue_id = venue_id or self.tracker.venue_id_of(cid)
        if venue_id is not None:
            return venue_id
        chain = self.chains.chain(cid)
        if not chain:
            raise OrderRefused(f"Alpaca has no order {cid}")
        return self.submitter.found_for_change(self._require(), cid, chain, self.config.request_timeout)

    def _emit(self, events: list[Any]) -> None:
        self.stream.emit(events)

    # ------------------------------------------------------------------ warm restart (away.py)
    def executions_since(
        self, client_order_id: str, filled: float, avg_price: float | None = None
    ) -> list[OrderFilled | OrderPartiallyFilled]:
        """:meth:`.WhileAway.executions_since`: what our listed order filled beyond the book's
        ``filled`` while no runtime ran; VenueError when it cannot be read (asked again later)."""
        return self.away.executions_since(self._require(), client_order_id, filled, avg_price)

    def holds(self, client_order_id: str, filled: float, avg_price: float | None, venue_order_id: str | None = None) -> None:
        """:meth:`.WhileAway.holds`: what the book holds of our order, before a restart's look-up."""
        self.away.holds(client_order_id, filled, avg_price, venue_order_id)

    def holds_own(self, client_order_id: str, quantity: float) -> None:
        """:meth:`.WhileAway.holds_own`: what the journal holds of the listed order's own fills."""
        self.away.holds_own(client_order_id, quantity)

    def asked(self, request: OrderRequest) -> None:
        """:meth:`.Modifier.asked`: at a warm restart, what the strategy last asked of an order."""
        self.modifier.asked(request)

    def forget_away(self, client_order_id: str) -> None:
        """:meth:`.WhileAway.forget`: the broker gave up reading what the order filled while away."""
        self.away.forget(client_order_id)
