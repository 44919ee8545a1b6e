"""OrderStream: the gateway's stream side: ``trade_updates`` -> ml4t order events, never lost.

Runs on the ``ml4t-alpaca-trade-stream`` loop thread (:class:`~.session.TradeUpdatesSession`):

* each trade update goes through the :class:`~.tracker.OrderTracker` (ours only, each execution
  once) onto the session's janus queue, which the engine reads as the gateway's ``events``;
* a lost connection is reported (``BrokerDisconnected``); after alpaca-py reconnects,
  ``BrokerReconnected`` and a re-sync: our open orders are re-read over REST and whatever the stream
  missed is reported once (the stream has no replay);
* a submit whose outcome stayed unknown is looked up on every watchdog tick until Alpaca has it
  (its events follow; a trade update for it, or a look-up of the gateway's modify or cancel that
  finds it, settles it too) or ``unknown_order_lookups`` look-ups found nothing (``OrderLost``, an
  ERROR line; never for one found once, whose report raised, nor for one a listing of open
  orders showed, nor for one the trade stream reported): see :mod:`.unknown`. The look-up is the
  gateway's walk (``chain``): by client order id (by the Alpaca id instead once the session knows
  one, or a listing showed one), then along ``replaced_by`` to the
  current order, so replacements made meanwhile (elsewhere too) are followed; an OCO pair is
  walked even once the stream reported it (only the walk aliases and reports its stop leg);
* a watchdog re-reads open orders when the stream has been quiet for ``order_poll_interval`` while
  orders are open; finding missed updates means the socket is silent-but-open, so it is closed and
  alpaca-py reconnects (with our backoff).

The re-sync uses its own ``TradingClient`` (blocking on this loop, briefly and on purpose: no update
can interleave with it) behind the gateway's shared token bucket. Events made on the engine thread
(REST outcomes) go through :meth:`emit` under the same lock as the tracker's decisions here, so the
queue order always matches the order in which the tracker decided.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from loguru import logger

from ...errors import VenueError
from ...events import (
    BrokerDisconnected,
    BrokerReconnected,
    OrderLost,
    VenueErrorReported,
    stamp_received,
)
from ...logs import log_failure
from .config import AlpacaConfig, redact
from .executions import ExecutionReader
from .parsing import flatten_open, num
from .rest import AlpacaTradingClient, RestCaller, UnreadableAnswer
from .session import TradeUpdatesSession
from .tracker import OrderTracker
from .unknown import MOST_TICKS_APART, Unknown, UnknownOutcomes

_log = logger.bind(component="alpaca.order-stream")
VENUE = "alpaca"


#: the gateway's walk (:meth:`~.submit.OrderChains.chain`): (our id, the client to read with) ->
#: the order under it and the replacements that followed it, [] when Alpaca has no such order
Chain = Callable[[str, AlpacaTradingClient], list[Any]]


class OrderStream:
    def __init__(
        self, config: AlpacaConfig, tracker: OrderTracker, rest: RestCaller, chain: Chain
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.rest = rest
        self.chain = chain
        self.session = TradeUpdatesSession(
            config, self._on_update, self._on_lost, self._on_reconnected
        )
        self.emit_lock = threading.Lock()  # tracker decision + enqueue, as one step
        self.executions = ExecutionReader(rest, tracker)  # fills a REST view shows, by execution
        self._client: AlpacaTradingClient | None = (
            None  # used only on the stream's loop
        )
        self._last_update = time.monotonic()
        self.unknown = UnknownOutcomes(config.unknown_order_lookups)

    # ================================================================== engine thread
    @property
    def events(self) -> Any:
        return self.session.events

    def start(self) -> None:
        self._client = AlpacaTradingClient(self.config)
        self.session.start()

    def watch(self) -> None:
        """Start the silent-stream watchdog (after the connect snapshot registered our orders)."""
        self.session.call(
            lambda: self.session.thread.spawn(self._watchdog(), "watchdog")
        )

    def emit(self, events: list[Any]) -> None:
        with self.emit_lock:
            self._put_from_engine(events)

    def _put_from_engine(self, events: list[Any]) -> None:
        for event in events:
            self.session.events.put_nowait(stamp_received(event))

    def report_chain(self, client: AlpacaTradingClient, chain: list[Any], *, on_loop: bool) -> None:
        """Report a non-empty ``chain`` (an order and the replacements that followed it,
        :attr:`chain`) read with ``client``: what each replaced order filled, then the current
        order (accepted, its fills, its end); each replacement continues the cumulative fills of
        the one before. ``on_loop``: called on this stream's loop thread, else the engine's."""
        put = self._put if on_loop else self._put_from_engine
        for old, new in pairwise(chain):
            if num(old.filled_qty):  # what a replaced order filled counts toward ours
                self._report(client, old, put)
            with self.emit_lock:
                self.tracker.carry_over(str(old.id), str(new.id))
        self._report(client, chain[-1], put)

    def _report(self, client: AlpacaTradingClient, order: Any, put: Callable[[list[Any]], None]) -> None:
        executions = self.executions.for_view(client, order)
        with self.emit_lock:
            put(self.tracker.on_order_snapshot(order, executions))

    def close(self) -> None:
        self.session.close()

    # ================================================================== loop thread
    def _put(self, events: list[Any]) -> None:
        for event in events:
            self.session.thread.async_events.put_nowait(stamp_received(event))

    async def _on_update(self, update: Any) -> None:
        self._last_update = time.monotonic()
        try:
            with self.emit_lock:
                foreign = self.tracker.foreign_updates
                self._put(self.tracker.on_trade_update(update))
                foreign = self.tracker.foreign_updates > foreign
        except Exception as exc:  # noqa: BLE001  (a bad update must not kill the stream: report it)
            log_failure(_log, exc, "could not apply an Alpaca trade update")
            reason = redact(f"{type(exc).__name__}: {exc}", self.config)
            self._put([VenueErrorReported(VENUE, "bad_update", reason)])
            return
        self._walk_pairs_of(update.order, foreign)

    def _walk_pairs_of(self, order: Any, foreign: bool) -> None:
        """The trade stream reported an update of ``order`` (``foreign``: not ours): an OCO pair of
        unknown outcome resting after failed walks that it may be of (its take-profit, or an OCO
        leg not ours yet of its symbol: the stop leg is ours only once a walk aliases it) is walked
        at once, in a task of its own on this loop, one walk in flight per pair
        (:meth:`.UnknownOutcomes.wake_pairs`)."""
        if not len(self.unknown) or self._client is None:
            return
        if foreign and str(getattr(order.order_class, "value", order.order_class)) != "oco":
            return
        woken = self.unknown.wake_pairs(None if foreign else str(order.client_order_id), order.symbol)
        if woken:
            client = self._client
            self.session.thread.spawn(self._walk_now(client, woken), "oco-walk")

    async def _walk_now(self, client: AlpacaTradingClient, items: list[Unknown]) -> None:
        try:
            for item in items:
                if item.client_order_id in self.unknown and not self.unknown.claimed(item.client_order_id):
                    _log.info("OCO pair {} of unknown outcome walked at once: the trade stream reported an "
                              "update of an OCO order", item.client_order_id)  # fmt: skip
                    self._resolve(client, item)
        finally:  # (one walk in flight per pair: an update may wake it again now)
            self.unknown.walk_ended([item.client_order_id for item in items])

    async def _on_lost(self, reason: str) -> None:
        await self.session.thread.async_events.put(BrokerDisconnected(VENUE, reason))

    async def _on_reconnected(self) -> None:
        await self.session.thread.async_events.put(BrokerReconnected(VENUE))
        self.resync()

    def resync(self) -> int:
        """Re-read our open orders over REST (blocking, on this loop); report what was missed.

        One listing of the open orders covers the usual case (1 request, whatever the number of
        resting orders); only orders of ours that left the open list are read one by one.
        """
        client = self._client
        if client is None:
            return 0
        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500, nested=True)
        try:
            listed = self.rest(
                "re-sync", lambda: client.get_orders(query), repeatable=True
            )
        except VenueError as exc:
            _log.warning("re-sync of the open Alpaca orders failed: {}", exc)
            return 0
        snapshots = flatten_open(listed)
        still_open = {str(order.id) for order in snapshots}
        for venue_id in self.tracker.open_venue_ids():
            if venue_id in still_open:
                continue
            try:  # it finished while we were not listening: how?
                snapshots.append(
                    self.rest(
                        "re-sync",
                        lambda v=venue_id: client.get_order_by_id(v),
                        repeatable=True,
                    )
                )
            except VenueError as exc:
                _log.warning("re-sync of Alpaca order {} failed: {}", venue_id, exc)
        missed = 0
        for order in snapshots:
            executions = self.executions.for_view(client, order)
            with self.emit_lock:
                events = self.tracker.on_order_snapshot(order, executions)
                self._put(events)
            missed += len(events)
        if missed:
            _log.warning(
                "re-sync found {} order event(s) the trade stream had not delivered",
                missed,
            )
        return missed

    def resolve_unconfirmed(self) -> None:
        """Look up each unknown submit once (:attr:`chain`: by client order id, or by the Alpaca id
        once the session knows one); settle it or count the miss. A found one whose report
        raises stays of unknown outcome (:meth:`report_failed`): looked up again at the next
        tick, never declared lost (it exists; a look-up of it without an answer rests it as its
        failed report does: :meth:`.UnknownOutcomes.missed`), less often once its report failed
        ``unknown_order_lookups`` times, ever less often from twice that, for good (see
        :meth:`.UnknownOutcomes.spacing`)."""
        client = self._client
        if client is None:
            return
        for item in self.unknown.pending():
            self._resolve(client, item)

    def _resolve(self, client: AlpacaTradingClient, item: Unknown) -> None:
        """Look ``item`` up once (:meth:`resolve_unconfirmed`)."""
        cid = item.client_order_id
        # reported by the trade stream: it exists (one whose report raised is reported again;
        # an OCO pair is walked all the same: only the walk aliases and reports its stop leg)
        streamed = self.tracker.outcome(cid) != "unknown"
        if streamed and not item.failed_reports and item.also is None:
            if self.unknown.claim(cid) is None:  # (being reported by the gateway's look-up)
                return
            self.unknown.settled(cid)
            _log.warning("order {} of unknown outcome was reported by the trade stream", cid)
            return
        try:
            chain = self.chain(cid, client)
        except UnreadableAnswer as exc:  # (answered, but it proves nothing: no miss, nor found)
            if streamed or item.listed or item.failed_reports:  # (known to exist: as any failed read)
                self._not_walked(item, streamed, f"no answer: {exc}")
            else:
                self._unread(cid, str(exc))
            return
        except VenueError as exc:
            self._not_walked(item, streamed, f"no answer: {exc}")
            return
        if not chain:
            self._not_walked(item, streamed, "Alpaca has no such order")
            return
        try:
            self.found_unknown(client, cid, chain, on_loop=True)
        except Exception as exc:  # noqa: BLE001  (the watcher goes on: released, it is looked up again)
            self.report_failed(cid, exc, "the watcher's look-up", on_loop=True)

    def found_unknown(self, client: AlpacaTradingClient, cid: str, chain: list[Any], *, on_loop: bool) -> bool:
        """The submit of unknown outcome ``cid`` was found as ``chain`` (non-empty, read by
        :attr:`chain`): settle it and report the chain (an OCO pair's stop leg aliased
        first, then reported accepted with its Alpaca id and its fills). False, nothing done,
        when ``cid`` is not (or no longer) of unknown outcome: the watcher here and the
        gateway's look-up (its modify, its cancel) may both find it, and the one that claims it
        reports it. It stays of unknown outcome (``in`` :attr:`unknown`)
        until its report is on the queue, so a snapshot that lists it meanwhile does not adopt it
        (its fills so far taken as known) but leaves it here; a report that raises releases it
        (still unknown, looked up again) and the exception propagates. ``on_loop``: as for
        :meth:`report_chain`. A caller that goes on after the exception says so with
        :meth:`report_failed`."""
        item = self.unknown.claim(cid)  # (still unknown to a snapshot until reported)
        if item is None:
            return False
        try:
            _log.warning("order {} of unknown outcome found at Alpaca ({}{})", cid, chain[-1].status.value,
                         f", after {len(chain) - 1} replacement(s)" if len(chain) > 1 else "")  # fmt: skip
            if item.also is not None:  # an OCO pair: its stop leg carries a venue-chosen id
                for order in chain:
                    for leg in order.legs or []:
                        if str(leg.client_order_id) != cid:
                            self.tracker.alias(leg.client_order_id, item.also)
            self.report_chain(client, chain, on_loop=on_loop)
            if item.also is not None:
                self._report_legs(client, cid, chain[-1], on_loop=on_loop)
        except BaseException:
            self._release_failed(cid, str(chain[-1].id))
            raise
        self.unknown.settled(cid)
        return True

    def report_failed(self, cid: str, exc: Exception, where: str, *, on_loop: bool) -> None:
        """The report of ``cid``, a submit of unknown outcome found at Alpaca (in ``where``: the
        watcher's look-up, a listing's, a modify's or a cancel's), raised ``exc`` out of
        :meth:`found_unknown`, which released and counted it: an ERROR line (with the traceback)
        saying when the watcher looks it up next, and a ``VenueErrorReported``
        ``unknown_report_failed``. ``on_loop``: as for :meth:`report_chain`."""
        ticks = self.unknown.spacing(self.unknown.failed_reports(cid))
        log_failure(_log, exc, "could not report order {} of unknown outcome, found at Alpaca by {}; it "
                    "stays of unknown outcome, looked up again by the adapter's watcher in {} tick(s) of "
                    "{:g}s", cid, where, ticks, self.config.order_poll_interval)  # fmt: skip
        reason = redact(f"report of {cid} failed: {type(exc).__name__}: {exc}", self.config)
        event = [VenueErrorReported(VENUE, "unknown_report_failed", reason, cid)]
        if on_loop:
            self._put(event)
        else:
            self.emit(event)

    def _release_failed(self, cid: str, venue_id: str) -> None:
        """The report of ``cid`` (found as Alpaca order ``venue_id``) raised: released, unknown
        still (never forgotten), with an ALERT at the bounds of :meth:`.UnknownOutcomes.release`."""
        failures, unknown = self.unknown.release(cid), self.unknown
        every = self.config.order_poll_interval
        if failures == unknown.limit:
            _log.error("ALERT order {} was found at Alpaca ({}) but its report failed {} times: its "
                       "acceptance or fills may be missing (the position reconciliation shows it); "
                       "looked up again every {} ticks of {:g}s, less often once it failed {} times", cid,
                       venue_id, failures, unknown.limit, every, unknown.back_off_after)  # fmt: skip
        elif failures == unknown.back_off_after:
            _log.error("ALERT order {} was found at Alpaca ({}) but its report failed {} times: the adapter's "
                       "watcher looks it up less often now, for good (next in {} ticks of {:g}s, the spacing "
                       "doubling at each failure, at most every {} ticks); it stays followed (its trade updates "
                       "still reach the runtime) and of unknown outcome, never declared lost or ended; once its "
                       "report works again (the watcher's look-up, a listing of open orders that shows it, a "
                       "modify or cancel of it) it is reported, also if it ended meanwhile; its acceptance or "
                       "fills may be missing: check it at Alpaca", cid, venue_id, failures,
                       unknown.spacing(failures), every, max(unknown.limit, MOST_TICKS_APART))  # fmt: skip

    def _report_legs(self, client: AlpacaTradingClient, cid: str, order: Any, *, on_loop: bool) -> None:
        """The stop leg of the OCO pair ``order`` (found under ``cid``, the leg aliased): accepted
        with its Alpaca id, as the gateway's submit reports it (the journal keeps that id: a
        restart finds the leg by it), then what it filled, by its executions read with ``client``."""
        put = self._put if on_loop else self._put_from_engine
        for leg in order.legs or []:
            if str(leg.client_order_id) != cid:
                self._report(client, leg, put)

    def _not_walked(self, item: Unknown, streamed: bool, last: str) -> None:
        """The walk of ``item`` got no answer or found nothing (``last``): a miss, or, for one the
        trade stream reported (it exists: never lost, walked again; an OCO pair, walked for its
        stop leg), counted toward the bound (:meth:`.UnknownOutcomes.walk_failed`: walked ever
        less often from it) with one ALERT there, except for one found whose report failed: its
        ALERT is its report's (:meth:`.UnknownOutcomes.release`)."""
        if not streamed:
            self._missed(item.client_order_id, last)
        elif self.unknown.walk_failed(item.client_order_id) and not item.failed_reports:
            unknown, every = self.unknown, self.config.order_poll_interval
            leg = (f" (its stop leg {item.also} is not followed until a walk succeeds; the pair is walked at once "
                   "when the trade stream reports an update of an OCO order)" if item.also else "")
            _log.error("ALERT order {} of unknown outcome, reported by the trade stream, could not be walked "
                       "in {} look-ups (last: {}){}; walked again every {} ticks of {:g}s, less often once {} "
                       "walks failed (the spacing doubling at each failure, at most every {} ticks): check it "
                       "at Alpaca", item.client_order_id, item.failed_walks, last, leg, unknown.limit, every,
                       unknown.back_off_after, max(unknown.limit, MOST_TICKS_APART))  # fmt: skip

    def _unread(self, cid: str, last: str) -> None:
        """The watcher's walk of ``cid`` was answered with a body that cannot be read: no miss
        (:meth:`.UnknownOutcomes.unread_answer`: it rests, ever longer), with an ALERT at
        ``unknown_order_lookups`` and at ``back_off_after`` such answers, once each."""
        unreadables, unknown = self.unknown.unread_answer(cid), self.unknown
        if unreadables in (unknown.limit, unknown.back_off_after):
            _log.error("ALERT order {} of unknown outcome: {} look-ups were answered with a body that cannot be "
                       "read (last: {}); it is not declared lost on such answers and is looked up less often now "
                       "(at most every {} ticks of {:g}s): check it at Alpaca", cid, unreadables, last,
                       max(unknown.limit, MOST_TICKS_APART), self.config.order_poll_interval)  # fmt: skip

    def _missed(self, cid: str, last: str) -> None:
        lost = self.unknown.missed(cid)
        if lost is not None:
            self._lost(lost, last)
            return
        misses = self.unknown.known_misses(cid)  # known to exist: never lost, said at two counts
        if misses in (self.unknown.limit, self.unknown.back_off_after):
            _log.error("ALERT order {} of unknown outcome exists at Alpaca (found, or listed) but {} look-ups in a "
                       "row could not read it (last: {}); it is never declared lost and is looked up less often "
                       "now: its fills and end reach the runtime once a look-up answers; check it at Alpaca",
                       cid, misses, last)  # fmt: skip

    def _lost(self, item: Unknown, last: str) -> None:
        reason = (
            f"Alpaca never confirmed the order and {item.misses} look-ups did not "
            f"find it (submit: {item.reason}; last look-up: {last}); taken as not placed, not re-sent"
        )
        cids = [item.client_order_id] + ([item.also] if item.also is not None else [])
        for cid in cids:
            _log.error("order {} is LOST: {}; check the Alpaca account by hand", cid, reason)
        with self.emit_lock:
            self._put([OrderLost(cid, reason) for cid in cids])

    async def _watchdog(self) -> None:
        interval = self.config.order_poll_interval
        while True:
            await asyncio.sleep(interval)
            if len(self.unknown):
                self.resolve_unconfirmed()
            quiet = time.monotonic() - self._last_update
            if quiet < interval or not self.tracker.open_venue_ids():
                continue
            if self.resync():
                _log.warning(
                    "trade stream silent for {:.1f}s with missed updates; reconnecting",
                    quiet,
                )
                await self.session.force_reconnect()
            self._last_update = time.monotonic()
