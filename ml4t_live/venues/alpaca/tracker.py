"""OrderTracker: trade updates and order snapshots -> ml4t order events, each execution once.

Alpaca's ``trade_updates`` stream has no replay and may deliver an update twice (LEAN's Alpaca
adapter saw ``new -> fill`` replayed three times). The tracker keeps, per Alpaca order id, the
cumulative filled quantity already reported; an update (or a REST snapshot after a reconnect)
produces an execution only for quantity beyond it. ``execution_id`` duplicates are dropped first.
So a fill reported by the stream, by a re-sync, or by both, reaches the engine exactly once.

Only orders registered as ours (placed by this gateway or adopted on connect) produce events;
updates for foreign orders are counted and logged, never turned into fills. Replacement orders
and OCO legs carry venue-chosen client ids that are *aliases* of ours.

Pure bookkeeping: no I/O. ``register``/``alias`` may be called from the engine thread, the
updates from the stream's loop thread; one lock guards the maps.
"""

from __future__ import annotations

import threading
from typing import Any

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.models import Order as AlpacaOrder
from loguru import logger

from ...events import (
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderRejected,
    VenueErrorReported,
)
from ...quantities import EPS as _EPS
from .executions import Execution
from .parsing import CANCELLED_STATUSES, num
from .tracked import Tracked, execution_fills, view_fills
from .undone_replaces import UndoneReplaces

_log = logger.bind(component="alpaca.tracker")
_ACCEPT_EVENTS = {"new", "accepted", "pending_new"}
_CANCEL_EVENTS = {"canceled", "expired"}
_REFUSED_CHANGES = {"order_cancel_rejected", "order_replace_rejected"}


class OrderTracker:
    def __init__(self) -> None:
        self._lock = threading.Condition()  # guards the maps; notified when an order's state moves
        self._ours: dict[str, str] = {}  # venue client_order_id -> our client_order_id
        self._orders: dict[str, Tracked] = {}  # Alpaca order id -> state
        self._exec_ids: set[str] = set()
        self._replaces = UndoneReplaces(self._orders)  # replaces Alpaca answered and did not carry out
        #: Alpaca id of an order -> its replacements seen before the replace is followed (carry_over)
        self._seen_early: dict[str, list[str]] = {}
        self.duplicates_dropped = 0
        self.foreign_updates = 0

    # ------------------------------------------------------------------ identity
    def register(self, client_order_id: str) -> None:
        with self._lock:
            self._ours.setdefault(client_order_id, client_order_id)

    def alias(self, venue_client_order_id: str, ours: str) -> None:
        with self._lock:
            self._ours[venue_client_order_id] = ours

    def ours(self, venue_client_order_id: str) -> str | None:
        with self._lock:
            return self._ours.get(venue_client_order_id)

    def carry_over(self, old_venue_id: str, new_venue_id: str) -> None:
        """A replacement order continues the old one's cumulative fills."""
        with self._lock:
            old = self._orders.get(old_venue_id)
            if old is None:
                return
            self._seen_early.pop(old_venue_id, None)
            old.terminal, old.undone_end, old.undone_by = True, None, None
            old.successor = new_venue_id
            new = self._orders.setdefault(new_venue_id, Tracked(old.ours))
            new.base = old.base + old.filled
            new.accepted = True

    def replace_undone(self, old_venue_id: str, replacement: AlpacaOrder) -> bool:
        """A replace Alpaca answered and then did not carry out: :meth:`UndoneReplaces.replace_undone`."""
        with self._lock:
            return self._replaces.replace_undone(old_venue_id, replacement)

    def continues(self, venue_id: str, base: float) -> None:
        """The order ``venue_id`` (adopted on connect) replaced orders of ours that filled ``base``
        (read after a restart): its cumulative fills continue from there, and so do those of the
        orders that replaced it since."""
        with self._lock:
            state = self._orders.get(venue_id)
            if state is not None:
                delta, state.base = base - state.base, base
                self._carry(state, delta)

    def book_holds(self, ours: str, chain: list[AlpacaOrder], filled: float, avg_price: float | None) -> None:
        """The runtime's book holds ``filled`` of our order ``ours`` (at ``avg_price``; after a warm
        restart, from its journal, under whatever execution ids), made by the orders of ``chain``
        (the order under ``ours``, then its replacements) in turn. When none of them is followed
        yet (a fresh tracker), each starts from its part of it: a report of the chain then counts
        only what goes beyond. Nothing changes once one of them is followed."""
        with self._lock:
            if any(str(order.id) in self._orders for order in chain):
                return
            left, value = filled, filled * (avg_price or 0.0)
            for order in chain:
                own = num(order.filled_qty) or 0.0
                take = min(own, left)
                if take <= _EPS:
                    return
                avg = num(order.filled_avg_price) if take >= own - _EPS else value / take
                self._orders[str(order.id)] = Tracked(ours, filled=take, avg_price=avg)
                left, value = left - take, value - take * (avg or 0.0)

    def filled_total(self, venue_id: str) -> float:
        """What our order has filled as reported, up to and including the order ``venue_id``."""
        with self._lock:
            state = self._orders.get(venue_id)
            return 0.0 if state is None else state.base + state.filled

    def counted(self, venue_id: str) -> tuple[float, float]:
        """(what our order has filled as reported up to and including the order ``venue_id``,
        what the order ``venue_id`` itself has reported filled), read together."""
        with self._lock:
            state = self._orders.get(venue_id)
            return (0.0, 0.0) if state is None else (state.base + state.filled, state.filled)

    def open_venue_ids(self) -> list[str]:
        """Alpaca ids of our orders not yet known to be finished (re-sync reads these)."""
        with self._lock:
            return [vid for vid, state in self._orders.items() if not state.terminal]

    def venue_id_of(self, client_order_id: str) -> str | None:
        """The Alpaca id of our order ``client_order_id`` still working (an OCO leg included)."""
        with self._lock:
            for venue_id, state in self._orders.items():
                if state.ours == client_order_id and not state.terminal:
                    return venue_id
        return None

    def followed_instead(self, venue_id: str) -> str | None:
        """The old order followed again instead of the replacement ``venue_id``, still working:
        :meth:`UndoneReplaces.followed_instead`."""
        with self._lock:
            return self._replaces.followed_instead(venue_id)

    def replacements_undone(self) -> list[str]:
        """The replacements given way to an old order not ended for good: :meth:`UndoneReplaces.replacements`."""
        with self._lock:
            return self._replaces.replacements()

    def outcome(self, client_order_id: str) -> str:
        """``filled`` | ``closed`` (finished without a complete fill) | ``open`` | ``unknown``."""
        with self._lock:
            states = [s for s in self._orders.values() if s.ours == client_order_id]
        if not states:
            return "unknown"
        if any(not s.terminal for s in states):
            return "open"
        return "filled" if any(s.complete for s in states) else "closed"

    def wait_reported(self, filled: dict[str, float], ended: set[str], timeout: float) -> bool:
        """Wait (bounded) until every order in ``filled`` (Alpaca id -> cumulative quantity a REST
        view shows) has that much reported or has ended, and every order in ``ended`` (Alpaca ids
        a REST listing no longer shows open) has been reported finished. False on timeout."""

        def reported() -> bool:
            for venue_id, quantity in filled.items():
                state = self._orders.get(venue_id)
                if state is not None and not state.terminal and state.filled < quantity - _EPS:
                    return False
            return all(self._orders[v].terminal for v in ended if v in self._orders)

        with self._lock:
            return self._lock.wait_for(reported, timeout)

    def unreported(self, order: AlpacaOrder, *, known_only: bool = False) -> float:
        """How much more than reported a REST view of our order shows filled (0 if not ours);
        ``known_only``: 0 as well for an order not followed yet (one adopted on connect)."""
        with self._lock:
            state = self._orders.get(str(order.id))
            if state is None and (known_only or self._ours.get(order.client_order_id) is None):
                return 0.0
            return max((num(order.filled_qty) or 0.0) - (state.filled if state else 0.0), 0.0)

    # ------------------------------------------------------------------ inputs
    def on_trade_update(self, update: Any) -> list[OrderEvent]:
        """One alpaca-py ``TradeUpdate`` -> zero or more events."""
        with self._lock:
            self._lock.notify_all()  # waiters re-check once this update is applied
            out = self._trade_update(update)
            self._replaces.forget()
            return out

    def _trade_update(self, update: Any) -> list[OrderEvent]:
        """:meth:`on_trade_update` under the lock."""
        event = str(getattr(update.event, "value", update.event))
        exec_id = str(update.execution_id) if update.execution_id is not None else None
        state = self._state(update.order)
        if state is None:
            self.foreign_updates += 1
            _log.debug("ignored {} for foreign order {}", event, update.order.client_order_id)
            return []
        if exec_id is not None and exec_id in self._exec_ids:
            self.duplicates_dropped += 1
            return []
        if event in ("fill", "partial_fill"):
            out = view_fills(state, update.order, update.price, update.qty, exec_id, update.timestamp,
                             self._carry)  # fmt: skip
            if not out:
                self.duplicates_dropped += 1
            if exec_id is not None:
                self._exec_ids.add(exec_id)
            return out
        return self._lifecycle(state, update.order, event, update.timestamp)

    def adopt(self, order: AlpacaOrder, executions: list[Execution] | None = None) -> list[OrderEvent]:
        """An open order of ours found on connect: what it has filled is already in the account
        snapshot (positions, the order's filled quantity), so only LATER executions are reported.
        An order already followed is re-read as a snapshot instead (missed updates reported)."""
        with self._lock:
            known = str(order.id) in self._orders
        if known:
            return self.on_order_snapshot(order, executions)
        with self._lock:
            state = self._state(order)
            if state is None:
                return []
            state.filled = num(order.filled_qty) or 0.0
            state.avg_price = num(order.filled_avg_price)
            state.accepted = True
        return []

    def on_order_snapshot(
        self, order: AlpacaOrder, executions: list[Execution] | None = None
    ) -> list[OrderEvent]:
        """A REST view of an order (after submit, lookup or re-sync): report what we missed.

        An order the venue took but we never saw accepted (a submit whose answer was lost) is
        reported ``OrderAccepted`` first, then what it filled: one event per execution of
        ``executions`` (Alpaca's FILL activities of this order: real ids, prices, times) beyond
        what was reported; what they do not cover (none given: they could not be read) is one
        event under a made-up id ``<order id>:<cumulative qty>`` and a WARNING."""
        with self._lock:
            self._lock.notify_all()  # waiters re-check once this view is applied
            state = self._state(order)
            if state is None:
                return []
            out: list[OrderEvent] = []
            if not (state.accepted or state.terminal) and order.status is not AlpacaStatus.REJECTED:
                state.accepted = True
                out.append(OrderAccepted(state.ours, str(order.id)))
            out += execution_fills(state, order, executions or [], self._exec_ids, self._carry)
            before = state.filled
            made_up = view_fills(state, order, None, None, None, order.filled_at or order.updated_at, self._carry)
            if made_up:
                _log.warning(
                    "{} of Alpaca order {} ({}) filled without a known execution: reported under "
                    "the made-up execution id {}",
                    f"{state.filled - before:g}",
                    order.id,
                    state.ours,
                    made_up[0].exec_id,
                )
            out += made_up
            status = str(order.status.value)
            event = "fill" if status == "filled" else status
            if status in ("new", "accepted", "pending_new", "partially_filled"):
                event = "new"
            out += self._lifecycle(state, order, event)
            self._replaces.forget()
            return out

    # ------------------------------------------------------------------ internals
    def _state(self, order: AlpacaOrder) -> Tracked | None:
        venue_id = str(order.id)
        state = self._orders.get(venue_id)
        if state is None:
            ours = self._ours.get(order.client_order_id)
            if ours is None:
                return None
            state = self._orders[venue_id] = Tracked(ours)
            old = self._orders.get(str(order.replaces)) if order.replaces is not None else None
            if old is not None and old.ours == ours:  # (a replacement seen before its replace is followed)
                state.base = old.base + old.filled  # its fills continue the chain's cumulative quantity
                if old.successor is None:  # ... and those the old order makes until then (_carry)
                    self._seen_early.setdefault(str(order.replaces), []).append(venue_id)
        return state

    def _carry(self, state: Tracked, delta: float) -> None:
        """``delta`` more filled by ``state``'s order counts in the base of every order that
        replaced it: those a replace followed (its fill arrived late) and, its replace not followed
        yet, its replacements seen already (its fill made while the replace was pending), in turn."""
        if state.successor is not None:
            later_ids = [state.successor]
        else:
            later_ids = next((ids for old_id, ids in self._seen_early.items() if self._orders.get(old_id) is state), [])
        for later_id in later_ids:
            later = self._orders.get(later_id)
            if later is not None and later is not state:
                later.base += delta
                self._carry(later, delta)

    def _lifecycle(
        self, state: Tracked, order: AlpacaOrder, event: str, when: Any = None
    ) -> list[OrderEvent]:
        """``event`` (a trade update's, or a REST view's status as one) for our order. An end
        (``replaced``, ``canceled``, ``expired``) whose ``filled_qty`` exceeds what was reported
        reports the excess first, once: a fill whose own update was lost, under the made-up
        execution id ``<order id>:<cumulative qty>`` at the price the average fill prices give
        (a replaced order's excess counts in its replacements' cumulative quantity too)."""
        ends = event in ("replaced", *_CANCEL_EVENTS) or order.status in CANCELLED_STATUSES
        out = self._fill_before_end(state, order, when) if ends else []
        if event == "replaced" or order.status is AlpacaStatus.REPLACED:
            state.replaced = True
        ended = ends or event == "rejected" or order.status is AlpacaStatus.REJECTED
        if state.terminal:
            if ended and state.successor is not None and not state.replaced and state.own_end is None:
                state.own_end = _end_of(state, order, event)  # (its replace pending; a later view: the same end)
            if state.replaced and state.undone_end is not None and (event == "replaced" or order.status is AlpacaStatus.REPLACED):
                end = self._replaces.end_when_replaced(state, order)  # (shown replaced before, none named)
                return out if end is None else [*out, end]
            return out
        if ended and event != "replaced" and order.status is not AlpacaStatus.REPLACED:
            first = self._replaces.ended_first(str(order.id))
            if first is not None:  # the old order ended before its replacement: that end is ours
                state.terminal = True
                return out + [first]
            if self._replaces.undo(state, order):
                text = ("Alpaca ended the order's replacement before the order it replaces was shown replaced: "
                        "taken as a replace not carried out, the order followed with its old terms")
                return out + [VenueErrorReported("alpaca", "order_replace_rejected", text, state.ours)]
        if event in _ACCEPT_EVENTS:
            if state.accepted:
                return []
            state.accepted = True
            return [OrderAccepted(state.ours, str(order.id))]
        if event == "replaced" or order.status is AlpacaStatus.REPLACED:
            state.terminal = True  # the replacement carries on under the same id of ours
            end = self._replaces.end_when_replaced(state, order)  # ... which had ended: our order's end?
            return out if end is None else [*out, end]
        if event in _REFUSED_CHANGES:  # the order itself is unchanged and still working
            text = f"Alpaca refused to {event.split('_')[1]} the order"
            return [VenueErrorReported("alpaca", event, text, state.ours)]
        if event in _CANCEL_EVENTS or order.status in CANCELLED_STATUSES:
            state.terminal = True
            return out + [OrderCancelled(state.ours, event)]
        if event == "rejected" or order.status is AlpacaStatus.REJECTED:
            state.terminal = True
            return [OrderRejected(state.ours, "rejected by Alpaca", "rejected")]
        return []

    def _fill_before_end(self, state: Tracked, order: AlpacaOrder, when: Any) -> list[OrderEvent]:
        """What an ending view of ``order`` shows filled beyond what was reported, as one fill."""
        before = state.filled
        out = view_fills(state, order, None, None, None, when or order.filled_at or order.updated_at, self._carry)
        if out:
            _log.warning(
                "Alpaca order {} ({}) ended {} with {:g} more filled than reported: reported under "
                "the made-up execution id {}", order.id, state.ours, order.status.value,
                state.filled - before, out[0].exec_id,
            )  # fmt: skip
        return out


def _end_of(state: Tracked, order: AlpacaOrder, event: str) -> OrderEvent:
    """Our order's end as ``order``'s own end (``event``, or its status) says it."""
    if event == "rejected" or order.status is AlpacaStatus.REJECTED:
        return OrderRejected(state.ours, "rejected by Alpaca", "rejected")
    return OrderCancelled(state.ours, event if event in _CANCEL_EVENTS else order.status.value)
