"""The journaled bar steps of a venue broker: bar numbers, the warm restart, the clean end.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker` (needs the attributes listed below).
The engine drives them in this order::

    begin_warm_restart()            -> True when the journal holds earlier decisions
    for n, bar in replay_bars():    the journaled bars, through the unchanged strategy
        open_bar(bar, n) ... begin_bar / on_data / end_bar (orders answered from the journal)
    end_warm_restart()              divergences; venue outcomes of open intents; reconcile
    per live bar: open_bar(bar) -> settle -> begin_bar -> on_data -> end_bar
    settle_last_bar(timeout)        an orderly end: the last bar's orders settled ... on_end ...
    finish_orders(policy, timeout)  settle what on_end sent; cancel what is left (policy "cancel")
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus

from .book import Book
from .errors import BridgeError, ReconciliationError, VenueError
from .events import (
    BarClosed,
    Execution,
    OrderAccepted,
    OrderCancelled,
    OrderLost,
    OrderRejected,
)
from .failpoints import failpoint
from .journal import recovery
from .journal.arrival import replayed
from .journal.link import JournalLink, divergence_summary
from .journal.store import TERMINAL
from .latency import LatencyLog
from .order_commands import STRATEGY_CANCEL
from .order_entry import order_from_request
from .owed_executions import SAID_FILLED, OwedExecutions, made_up_fill, settle
from .ownership import Ownership
from .protocols import AccountSnapshot, VenueGateway
from .quantities import EPS as _EPS
from .restart_reads import AwayReads, RestartLookUps
from .runtime_cancels import RuntimeCancels
from .venue_rails import HALT_REASONS

_log = logger.bind(component="venue-broker")

#: what happens at an orderly end to what the strategy left: ``cancel`` its working orders, ``keep``
#: them working, or ``flatten`` (cancel them, then close its positions with MARKET orders)
END_POLICIES = ("cancel", "keep", "flatten")


class BarSteps(RuntimeCancels):
    gateway: VenueGateway
    venue: str
    book: Book
    own: Ownership
    link: JournalLink
    snapshot: AccountSnapshot | None
    on_divergence: str
    catch_up_policy: str
    _in_flight: dict[str, Order]
    _catch_up: bool
    _bar_time: Any
    risk_position: Any  # RailSteps
    away_reads: AwayReads
    restart_lookups: RestartLookUps
    cancel_resends: Any  # CancelResends
    _resend_due_cancels: Any  # CancelResending._resend_due_cancels
    _restore_follow_up: Any  # CancelResending._restore_follow_up
    _keep_follow_up: Any  # CancelResending._keep_follow_up
    _listed_now: Any  # CancelResending._listed_now
    _listed_among: Any  # CancelResending._listed_among
    gate: Any  # RailSteps.gate
    left_at_venue: list[Order]
    settle: Any  # FillBarrier.settle
    _drain: Any  # FillBarrier._drain
    risk_positions: Any
    latency: LatencyLog
    owed: OwedExecutions
    _is_lost: Any  # LostOrders
    _lost_listed: Any  # LostOrders
    _lost_surfaced: Any  # LostOrders

    # ------------------------------------------------------------------ bars
    def open_bar(self, bar: BarClosed, replay_n: int | None = None) -> None:
        """Bar ``n`` begins: journaled (live) or numbered (replay); its journaled events applied."""
        n = self.link.start_bar(bar.timestamp, bar.data, bar.context, bar.catch_up, replay_n, bar.received_at)
        self.latency.bar(bar.received_at)
        self._catch_up = bar.catch_up and self.catch_up_policy == "reject"
        if replay_n is not None:
            for event in self.link.events_before(n):
                self._apply_journaled(event)

    def replay_runtime_orders(self) -> None:
        """Replaying bar ``n``: the orders the runtime itself placed then (an operator's
        flatten) are back in the book with their journaled answers; their events follow."""
        for cid, request, answer in self.link.runtime_submits(self.link.n):
            order = order_from_request(cid, request)
            self.book.add(order)
            if isinstance(answer, dict) and answer.get("status") == "rejected":
                order.reject(answer.get("reason", ""), answer.get("code", "rejected"))
                self.book.close(order)

    # ------------------------------------------------------------------ warm restart
    def begin_warm_restart(self) -> bool:
        if not self.link.begin_replay():
            return False
        if self.snapshot is not None:  # (their reads run after the replay: a change waits for them)
            self.away_reads.expect(self.snapshot.open_orders)
        for event in self.link.events_before(0):
            self._apply_journaled(event)
        return True

    def replay_bars(self) -> Iterator[tuple[int, BarClosed]]:
        for n, timestamp, data, context, catch_up, arrived in self.link.replay_bars():
            yield n, BarClosed(timestamp, data, context, catch_up, replayed_arrival=replayed(arrived))

    def end_warm_restart(self) -> None:
        """After the replay: report divergences, apply what happened while we were away."""
        late = self.link.late_events()
        divergences, unmatched = self.link.end_replay()
        for cid, request, answer in unmatched:  # e.g. made in on_end: may be at the venue
            if not self.book.knows(cid):
                order = order_from_request(cid, request)
                self.book.add(order)
                if isinstance(answer, dict) and answer.get("status") == "rejected":
                    order.reject(answer.get("reason", ""), answer.get("code", "rejected"))
                    self.book.close(order)
        for event in late:
            self._apply_journaled(event)
        self._restore_cancelling()
        if divergences:
            shown = divergence_summary(divergences)
            if self.on_divergence == "fail":
                raise ReconciliationError(
                    f"warm restart: the strategy did not repeat its journaled decisions ({shown}). "
                    "It is not deterministic (random numbers, wall-clock time, outside data?). "
                    "Nothing was sent. Fix the strategy, or accept the journal's decisions with "
                    "on_divergence = 'continue' (--on-divergence continue)"
                )
            _log.error("warm restart: {} divergence(s), continuing as asked: {}", len(divergences), shown)
        self.book.take_new_records()  # what the replay re-applied belongs to the earlier runs' files
        self.link.closing()  # what the venue reports now comes before the next bar
        self._resolve_open_intents()
        self.risk_positions()
        _log.info(
            "warm restart done: {} bars replayed; {} open orders, positions {}",
            self.link.journal.bars, len(self.book.open),
            {a: p.quantity for a, p in self.book.positions.items()},
        )  # fmt: skip

    def _restore_cancelling(self) -> None:
        """The replay closed the orders the runtime cancelled (HALTED, the end-of-run policy,
        cancel-all: its own journaled ``OrderCancelled``); one whose end the venue never confirmed
        (its intent is not terminal) is cancelling again, as before the restart: a fill that races
        the cancel is still applied, and a venue that still works it gets the cancel again."""
        for cid, intent in self.link.journal.intents().items():
            if intent["status"] not in TERMINAL and self.book.cancel_unconfirmed(cid):
                _log.info("order {}: its cancel was sent, the venue had not confirmed it: cancelling", cid)

    def _resolve_open_intents(self) -> None:
        """Executions the venue reports for our orders that the journal lacks happened while we
        were away: applied once. Orders the venue still works are re-attached. The others are
        looked up by client order id (a venue gateway with ``lookup``): ended orders take the
        venue's end; one the venue does not know is lost (never re-sent), or ended while away
        when its cancel had been sent, unless its outcome was already unknown before the restart:
        then it is looked up again, bounded and aged (:mod:`~ml4t_live.unknown_orders`); a look-up that
        fails is tried again at each reconciliation (unknown is never read as gone). An order
        declared lost that the venue lists working is cancelled (:mod:`~ml4t_live.lost_orders`)."""
        snapshot = self.snapshot
        if snapshot is None:
            return
        for execution in snapshot.executions:
            if self.book.knows(execution.client_order_id) and not self.book.seen(execution.exec_id):
                _log.info("execution {} of {} happened while away: applied", execution.exec_id,
                          execution.client_order_id)  # fmt: skip
                self._apply_live(execution)
        self._apply_fills_while_away(snapshot.open_orders)
        working = {o.client_order_id for o in snapshot.open_orders}
        for cid in list(self.book.open):
            if cid in working:
                self.book.acknowledged.add(cid)
        for cid in self.book.cancelling:  # sent before the restart: due at once (if still working)
            self.cancel_resends.sent(cid, long_ago=True)
        # counts continue from the journal; a halt's refused cancels only while it holds
        self._restore_follow_up((*HALT_REASONS, STRATEGY_CANCEL) if self.gate.halted else (STRATEGY_CANCEL,))
        self.restart_lookups.cids = [cid for cid in list(self.book.open) + list(self.book.cancelling)
                                     if cid not in working]  # fmt: skip
        # the look-up first: an unlisted order it finds working is checked (its cancel sent
        # again) as a listed one, once
        working |= self._look_up_unresolved()
        self._resend_due_cancels(working, when=", sent before the restart,")
        self._lost_listed(snapshot.open_orders, "at the restart")

    def _apply_fills_while_away(self, listed: list[Any]) -> None:
        """The restart's read of what the listed working orders filled while away
        (:meth:`~ml4t_live.restart_reads.AwayReads.read_at_restart`); one that got no answer
        makes the first reconciliation due at once (it reads again there)."""
        if self.away_reads.read_at_restart(listed):
            self.own.check_soon()

    def _look_up_unresolved(self) -> set[str]:
        """The restart's look-up of the orders the venue no longer lists
        (:meth:`~ml4t_live.restart_reads.RestartLookUps.look_up`): those it found working; one
        that got no answer makes the next reconciliation due at once (it looks up again there)."""
        working = self.restart_lookups.look_up(self.link.journal)
        if working is None:
            self.own.check_soon()
            return set()
        return working

    def _take_venue_end(self, order: Order, venue_order: Any, when: str, *, in_session: bool = False) -> None:
        """A looked-up order the venue has ended: cancelled, rejected, or filled. ``when`` says
        when it happened. Filled after a restart: what its events did not bring is applied, at
        the order's price (IB lists only today's executions). In the session the executions are
        within reach and arrive as events: none is made up at once (it would count twice); if
        they have not come by the next reconciliation, the missing quantity is applied then
        (:mod:`~ml4t_live.owed_executions`). Filled no more than the order's fills while it is
        short of its quantity, or said "unknown" (IB shows an order by its executions alone): how
        much it filled is unknown, nothing is made up; it stays as it is, owed, looked up again at each reconciliation,
        with an ALERT (:meth:`~ml4t_live.owed_executions.OwedExecutions.owe`)."""
        cid = order.order_id
        if venue_order.status == "cancelled":
            self._apply_live(OrderCancelled(cid, f"cancelled at the venue {when}"))
        elif venue_order.status == "rejected":
            self._apply_live(OrderRejected(cid, f"rejected at the venue {when}", "venue_rejected"))
        elif venue_order.status in SAID_FILLED:  # ("unknown": IB shows it by its executions alone)
            beyond = venue_order.filled_quantity > order.filled_quantity + _EPS
            working = order.status is OrderStatus.PENDING or cid in self.book.cancelling
            if not beyond and not (working and order.filled_quantity < order.quantity - _EPS):
                return  # its own events brought what it filled
            # its executions decide (in the session; "unknown": the venue listed them, they are
            # real and reach the book as events, a made-up fill would count them twice); or it is in doubt
            if in_session or not beyond or venue_order.status != "filled":
                self.owed.owe(order, venue_order, when)
                if in_session and order.status is OrderStatus.PENDING:  # the venue has it: no longer unknown
                    self._apply_live(OrderAccepted(cid, venue_order.venue_order_id))
                return
            # its executions are out of reach (IB lists only today's): the position moves by
            # what the venue says it filled, at the order's price, and says so
            made_up_fill(self.book, self._apply_live, order, venue_order, when,
                         "the venue no longer lists those executions")  # fmt: skip

    # ------------------------------------------------------------------ session files
    def session_opened(self, folder: Any) -> None:
        recovery.session_opened(self.link.journal, folder)

    def session_closed(self, finished: bool = False) -> None:
        journal = self.own.journal
        if journal is not None and not journal.closed:
            recovery.session_closed(journal)

    # ------------------------------------------------------------------ events
    def _apply_journaled(self, event: Any) -> None:
        """A journaled event, during a replay: the book changes, the journal does not."""
        order = self.book.apply(event)
        if order is not None and isinstance(event, Execution):
            self.risk_position(order.asset)

    def _apply_live(self, event: Any) -> Order | None:
        """A venue event now: the book changes, and the journal records it (ours only)."""
        seen = isinstance(event, Execution) and self.book.seen(event.exec_id)
        prior = self.book.get(getattr(event, "client_order_id", ""))
        before = prior.filled_quantity if prior is not None else 0.0
        order = self.book.apply(event)
        if order is None or seen:
            return order
        applied = order.filled_quantity - before  # a re-reported or ignored execution applies nothing
        if isinstance(event, Execution):
            self.risk_position(order.asset)
            if applied > _EPS:  # one latency row per fill the book applied
                self.latency.filled(order.order_id, order.asset, applied, event.received_at,
                                    order.status is not OrderStatus.PENDING)  # fmt: skip
            failpoint("after_fill")
        journal = self.link.journal
        self.link.event(event)
        cid = order.order_id
        match event:
            case OrderAccepted(venue_order_id=vid):
                journal.set_intent(cid, status="accepted", venue_id=vid or None)
                if self._is_lost(order):
                    self._lost_surfaced(order, "the venue reports it accepted")
            case Execution():
                if applied > _EPS:
                    signed = applied if event.side.value == "buy" else -applied
                    journal.append_fill(self.link.n, event.exec_id, cid, event.asset, signed,
                                        event.price, event.commission, event.timestamp)  # fmt: skip
                # a part of an order whose cancel the venue has not confirmed: not ended yet
                working = order.status is OrderStatus.PENDING or cid in self.book.cancelling
                status = "partial" if working else order.status.value
                journal.set_intent(cid, status=status, filled=order.filled_quantity)
            case OrderCancelled(reason=reason):
                journal.set_intent(cid, status=order.status.value, reason=reason)
            case OrderRejected(reason=reason):
                journal.set_intent(cid, status="rejected", reason=reason)
            case OrderLost(reason=reason):
                journal.set_intent(cid, status="lost", reason=reason)
                _log.error("ALERT order {} is lost: {} (never re-sent; check the venue)", cid, reason)
        return order

    # ------------------------------------------------------------------ reconciliation
    def reconcile_if_due(self, when: str = "periodic") -> None:
        if not self.link.replaying:
            self._resend_due_cancels()  # its own schedule (cancels unanswered for a while)
        if not self.own.due():
            return
        if self.restart_lookups.cids:
            self._found_working(self._look_up_unresolved())
        if self.away_reads.unread:
            self.away_reads.read_again()
        try:
            snapshot = self.gateway.snapshot()
        except (VenueError, BridgeError) as exc:  # unknown is never read as "flat"
            _log.warning("reconciliation skipped: the venue's positions could not be read ({})", exc)
            return  # still due (only a comparison sets the next): tried at the next bar; the owed wait for it
        # an order owed its executions that the venue lists working is no longer owed (nothing made
        # up for it, whatever a look-up says); the others are settled before the positions are
        # compared: a made-up fill counts
        self._listed_among(o.client_order_id for o in snapshot.open_orders)
        ours = self._positions()
        settle(self.owed, getattr(self.gateway, "lookup", None), self._drain, self._apply_live, self._take_venue_end,
               listed=self._listed_now)  # fmt: skip
        if self._positions() != ours:  # what settle applied (an execution during its look-up) may be newer
            try:  # than the read: the positions are compared with a read made after it
                snapshot = self.gateway.snapshot()
            except (VenueError, BridgeError) as exc:
                _log.warning("reconciliation skipped: the venue's positions could not be read again after the "
                             "owed executions were settled ({})", exc)  # fmt: skip
                return  # as a failed first read: still due, not passed (the owed wait for one that passes)
            self._listed_among(o.client_order_id for o in snapshot.open_orders)
        self._lost_listed(snapshot.open_orders, "at the reconciliation")
        self.own.reconcile(snapshot, self._positions(), when)
        self.owed.passed()  # the orders owed executions before it are looked up at the next

    def _positions(self) -> dict[str, float]:
        return {a: p.quantity for a, p in self.book.positions.items()}

    # ------------------------------------------------------------------ the end
    def _cancel_taken(self, order: Order, reason: str) -> None:
        """The venue took the runtime's cancel of ``order``: CANCELLED for the strategy (journaled),
        cancelling until the venue confirms."""
        order.status = OrderStatus.CANCELLED
        order.cancelled_at = self._bar_time
        order.cancellation_reason = reason
        self.book.cancel_sent(order)
        self.cancel_resends.sent(order.order_id)
        self._in_flight.pop(order.order_id, None)
        self.link.event(OrderCancelled(order.order_id, reason))

    def _cancel_and_wait(self, reason: str, timeout: float) -> None:
        """Cancel what works and wait (bounded) for the venue's answers; a cancel still
        unanswered then is checked once more (a ``final`` check: sent again while the venue
        works its order and it has tries left), and waited for."""
        self.cancel_open_orders(reason)
        self._drain(block_until=None)  # a refused cancel's fill is already on the queue
        self._wait_cancelling(timeout)
        if self.book.cancelling or self.cancel_resends.refused_open:
            self._resend_due_cancels(final=True, when=f" ({reason})")
            self._wait_cancelling(timeout)

    def _wait_cancelling(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.book.cancelling and time.monotonic() < deadline:
            if not self._drain(block_until=deadline):
                break

    def _flatten(self, timeout: float) -> None:
        """End of day ``flatten``: close each position the strategy owns (its journal's; external
        ones are never touched) with MARKET orders, as the operator's flatten does (runtime orders:
        they leave whatever the trading state), then one end-of-bar signal (a step-mode simulated
        venue moves on and fills them; harmless at a real venue) and wait (bounded) for the fills.
        What did not fill is cancelled, never left to fill in the next session."""
        self._catch_up = False  # the runtime's own orders, even when the last bar was a late one
        placed = self.flatten_owned("end of day")  # type: ignore[attr-defined]
        if placed:
            self.gateway.end_of_bar(self._bar_time)
            self.settle(timeout)
            self._cancel_and_wait("end of day: flatten order not filled", timeout)
        left = {a: p.quantity for a, p in self.book.positions.items() if abs(p.quantity) > _EPS}
        if left:  # (also when nothing was sent: an earlier closing order that could not be cancelled)
            _log.error("end of day: the strategy is NOT flat, it still holds {}; check the venue "
                       "(ml4t-live reconcile)", left)  # fmt: skip
        elif placed:
            _log.info("end of day: flat")

    def settle_last_bar(self, timeout: float) -> int:
        """The run ends in order: the last bar's orders are settled (their fills applied and
        journaled before ``on_end``); from now on events come after the last bar."""
        self.link.closing()
        return self.settle(timeout)

    def finish_orders(self, policy: str, timeout: float) -> list[Order]:
        """After ``on_end``: settle what it sent; with ``cancel`` cancel what the strategy left
        working and wait (bounded) for the venue's answers. Returns what is still at the venue."""
        self.settle(timeout)
        if policy in ("cancel", "flatten"):
            if self.cancel_resends.withdraw_refused():  # the end of the run asks again, its own request
                self._keep_follow_up()
            self._cancel_and_wait("end of run", timeout)
        if policy == "flatten":
            self._flatten(timeout)
        self.own.check_soon()
        self.reconcile_if_due("end of run")
        self.left_at_venue = list(self.book.open.values()) + list(self.book.cancelling.values())
        for order in self.left_at_venue:
            _log.warning("left at the venue: {} {} {} {} ({})", order.order_id, order.side.value,
                         order.quantity, order.asset, order.status.value)  # fmt: skip
        return self.left_at_venue
