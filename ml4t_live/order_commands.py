"""The journaled order commands of a venue broker: submit, cancel, change.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`. Each command goes through
:meth:`~ml4t_live.journal.link.JournalLink.command`: live, it is journaled (a submit's intent is
committed before the order leaves) and acted on; during a warm restart it is answered from the
journal and never reaches the venue; on the bar a crash interrupted, a command past the journal
is a catch-up decision (a submit is refused, a cancel or change is sent).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus
from ml4t.backtest.config import ShareType

from .book import Book
from .errors import BridgeError, CancelUnsure, ChangeDeferred, SendFailed, VenueError
from .failpoints import failpoint
from .journal.link import BEYOND, DIVERGED, JournalLink
from .latency import LatencyLog
from .logs import log_failure
from .order_entry import intent_args, order_request
from .order_ids import ClientOrderIds
from .ownership import Ownership
from .protocols import VenueGateway
from .restart_reads import AwayReads
from .runtime_cancels import cancel_one

_log = logger.bind(component="venue-broker")

#: the reason a strategy's cancel that raised a bug (CancelUnsure) is followed under
#: (:attr:`~ml4t_live.cancel_resends.CancelResends.refused_open`)
STRATEGY_CANCEL = "strategy cancel"


def _refused(code: str, reason: str) -> dict[str, Any]:
    return {"status": "rejected", "code": code, "reason": reason}


class JournaledOrders:
    gateway: VenueGateway
    venue: str
    book: Book
    ids: ClientOrderIds
    own: Ownership
    link: JournalLink
    share_type: ShareType
    _in_flight: dict[str, Order]
    _oca_groups: dict[str, str]
    _bar_time: Any
    _catch_up: bool
    _runtime_exit: bool
    risk_clock: Any  # RailSteps
    risk_refusal: Any
    risk_change_refusal: Any
    away_reads: AwayReads
    risk_sent: Any
    risk_changed: Any
    latency: LatencyLog
    _unknown_began: Any  # UnknownLookups
    cancel_resends: Any  # CancelResends
    _keep_follow_up: Any  # CancelResending._keep_follow_up

    def _send(self, order: Order, *, oca_group: str | None = None) -> None:
        """One journaled submit: the intent is committed, then the order leaves (or is refused).
        Raises SendFailed when the gateway's ``place`` raised something other than a venue's or
        the bridge's error (a bug in the order path): the order's outcome is unknown; a warm
        restart raises it again at the same order, from the journal."""
        if oca_group is not None:
            self._oca_groups[order.order_id] = oca_group
        request = order_request(order, oca_group=oca_group)
        args = intent_args(request)
        now, sent_at = self.risk_clock()
        result = self.link.command("submit", order.order_id, args, lambda: self._place(order, request, now), sent_at)
        if result is BEYOND:  # re-made on the bar a crash interrupted: that bar is late now
            result = _refused("catch_up", "catch-up bar: made on the bar a restart replayed")
            self.link.not_sent()
            self.link.record_beyond("submit", order.order_id, args, result)
            self.link.journal.set_intent(order.order_id, status="rejected", reason=result["reason"])
        elif result is DIVERGED:  # during a replay: never sent
            result = _refused("divergence", "the journal holds a different decision for this bar")
        if result["status"] == "rejected" and order.status is OrderStatus.PENDING:
            order.reject(result["reason"], result["code"])
            self.book.close(order)
            self._in_flight.pop(order.order_id, None)
        if "error" in result:
            raise SendFailed(f"order {order.order_id}: {result['error']}; its outcome is unknown: it stays pending "
                             "until the venue or a restart settles it, never re-sent")  # fmt: skip

    def _place(self, order: Order, request: Any, now: float | None = None) -> dict[str, Any]:
        """Live: refuse (catch-up bar, the rails: judged at ``now``), or place; the answer is journaled."""
        cid = order.order_id
        refusal = ("catch_up", (f"catch-up bar {self._bar_time}: it arrived late (warm-up, backfill "
                   "or replay), so its orders do not leave")) if self._catch_up and not self._runtime_exit else (
                  self.risk_refusal(order, now))  # fmt: skip
        if refusal is not None:
            self.link.not_sent()
            self.link.journal.set_intent(cid, status="rejected", reason=refusal[1])
            return _refused(*refusal)
        self._in_flight[cid] = order
        failpoint("after_intent")
        self.latency.sent(cid)
        try:
            self.gateway.place(request)
        except VenueError as exc:
            _log.error("order {} was not placed: {}", cid, exc)
            self.link.journal.set_intent(cid, status="rejected", reason=str(exc))
            return _refused("venue_error", f"{self.venue} refused the order: {exc}")
        except BridgeError as exc:
            # The outcome is unknown: it may have reached the venue. It stays PENDING (never
            # re-sent); the venue's events, the next re-sync or reconciliation settle it.
            return self._unknown_outcome(order, str(exc))
        except Exception as exc:  # noqa: BLE001  (raised again by _send, once journaled)
            # A bug (e.g. in the request's translation), not a venue answer: it may have raised
            # after the order left, so it is unknown as above (a rejection could send it twice),
            # and ``_send`` raises it once the journal holds it.
            error = f"{self.venue}.place raised {type(exc).__name__}: {exc}"
            log_failure(_log, exc, "order {}: {} (a bug in the order path)", cid, error)
            return {**self._unknown_outcome(order, error), "error": error}
        self._note_order_ids()
        self.risk_sent(order)
        failpoint("after_send")
        return {"status": "sent"}

    def _unknown_outcome(self, order: Order, reason: str) -> dict[str, Any]:
        cid = order.order_id
        self._in_flight.pop(cid, None)  # the fill barrier does not wait for it
        self.link.journal.set_intent(cid, status="unknown", reason=reason)
        self._unknown_began(order, reason)  # looked up by client order id, bounded (unknown_orders)
        _log.error("order {}: outcome unknown ({}); it stays pending until the venue reports it or "
                   "look-ups by client order id settle it", cid, reason)  # fmt: skip
        self._note_order_ids()
        self.risk_sent(order)  # it may be working: the limits count it (fail closed)
        return {"status": "unknown"}

    def _operators(self, order_id: str, what: str) -> bool:
        """True (logged) for an order the runtime placed itself (the operator's flatten): the
        strategy may see it, not cancel or change it."""
        if not self.ids.is_runtime(order_id):
            return False
        _log.warning("the strategy's {} of {} refused: the runtime placed it (the operator's flatten)", what, order_id)
        return True

    def _note_order_ids(self) -> None:
        """A venue with numeric order ids (IB) may roll them back after a restart: the journal
        keeps the highest one used, and the next connect starts above it."""
        if hasattr(type(self.gateway), "order_id_high_water"):
            self.link.journal.set_meta("venue_order_id_high_water", self.gateway.order_id_high_water)

    def cancel_order(self, order_id: str) -> bool:
        """Cancel a pending order: True once the venue took the request (as the backtest, the
        order is CANCELLED at once). False when the venue refused it (already filled, unknown):
        the order stays as the venue reports it. A fill that races the cancel still wins. A bug in
        the gateway's cancel (CancelUnsure: whether it went out is unknown) is not a cancel: False,
        the order stays PENDING and is followed as a refused runtime cancel is
        (:attr:`~ml4t_live.cancel_resends.CancelResends.refused_open`, reason
        :data:`STRATEGY_CANCEL`, kept across a restart): each check sends the cancel again while the
        venue lists it working; the venue's cancel, or a repeat it takes, ends it. The runtime's
        own orders (the operator's flatten) are not the strategy's to cancel: False. Either False
        is journaled as the answer, so a warm restart replays it as it was."""
        order = self.book.open.get(order_id)
        if order is None:
            return False
        unsure: list[CancelUnsure] = []  # the gateway's cancel was unsure (a bug: its __cause__)
        ok = self.link.command("cancel", order_id, {}, lambda: self._cancel_checked(order_id, unsure))
        if ok is DIVERGED:
            ok = False
        elif ok is BEYOND:
            ok = self._cancel_checked(order_id, unsure, replayed=True)
            self.link.record_beyond("cancel", order_id, {}, ok)
        if unsure:
            self.cancel_resends.refused(order_id, STRATEGY_CANCEL, str(unsure[0]), bug=unsure[0].__cause__ is not None)
            self._keep_follow_up()
        if not ok:
            return False
        order.status = OrderStatus.CANCELLED
        order.cancelled_at = self._bar_time
        order.cancellation_reason = "user"
        self.book.cancel_sent(order)
        self.cancel_resends.sent(order_id)
        self._in_flight.pop(order_id, None)
        return True

    def _cancel_checked(self, order_id: str, unsure: list[CancelUnsure], *, replayed: bool = False) -> bool:
        return not self._operators(order_id, "cancel") and self._cancel_at_venue(order_id, unsure, replayed)

    def _cancel_at_venue(self, order_id: str, unsure: list[CancelUnsure], replayed: bool = False) -> bool:
        """The venue's answer to the strategy's cancel: True taken; False refused, or unsure (the
        CancelUnsure put in ``unsure``). ``replayed``: made again on the bar a crash interrupted
        (a warm restart's replay), where the crashed run may have had the same cancel taken: an
        order the venue did not list working at the restart, refused as cancelled already
        (``CancelRefused.ended``), ended as the strategy asked: True (the restart's look-up
        settles its fills); refused otherwise, its end is the look-up's to find."""
        outcome = cancel_one(self.gateway, order_id)
        if isinstance(outcome, CancelUnsure):  # (cancel_one logged the bug as an ERROR)
            unsure.append(outcome)
            _log.warning("the strategy's cancel of {} {}; whether it went out is unknown: it stays pending "
                         "(cancel_order returned False) and is followed: the next check sends the cancel again "
                         "while the venue lists it working", order_id, outcome.said())  # fmt: skip
            return False
        if outcome is not None and replayed and not self._listed_working(order_id):
            if getattr(outcome, "ended", None) == "canceled":
                _log.warning("cancel of {}, made again on the bar a crash interrupted: the venue has the order "
                             "cancelled already ({}): the cancel stands (cancel_order True); the restart's "
                             "look-up settles what it filled", order_id, outcome)  # fmt: skip
                return True
            _log.warning("cancel of {}, made again on the bar a crash interrupted, was not accepted ({}); the "
                         "venue did not list the order working at the restart: its look-up settles how it "
                         "ended", order_id, outcome)  # fmt: skip
            return False
        if outcome is not None:
            _log.error("cancel of {} was not accepted ({}); the order stays pending", order_id, outcome)
            return False
        failpoint("after_cancel")
        return True

    def _listed_working(self, order_id: str) -> bool:
        """Whether the venue listed ``order_id`` working at the connect (True without a listing)."""
        snapshot = getattr(self, "snapshot", None)
        return snapshot is None or any(o.client_order_id == order_id for o in snapshot.open_orders)

    def update_order(self, order_id: str, **changes: Any) -> bool:
        """Change a pending order's quantity / prices: the order changes once the venue took it."""
        order = self.book.open.get(order_id)
        allowed = {"quantity", "limit_price", "stop_price", "trail_amount"}
        if order is None or not changes or set(changes) - allowed:
            return False
        if "quantity" in changes and self.share_type is ShareType.INTEGER:
            changes["quantity"] = float(int(changes["quantity"]))
            if changes["quantity"] <= 0:
                return False
        request = replace(
            order_request(order, oca_group=self._oca_groups.get(order_id)), **changes
        )
        now, sent_at = self.risk_clock(change=True)
        ok = self.link.command("update", order_id, dict(changes),
                               lambda: self._modify_checked(order, request, changes, now), sent_at)  # fmt: skip
        if ok is DIVERGED:
            ok = False
        elif ok is BEYOND:
            ok = self._modify_checked(order, request, changes, now)
            self.link.record_beyond("update", order_id, dict(changes), ok)
        if not ok:
            return False
        for name, value in changes.items():
            setattr(order, name, value)
        self.risk_changed(order)
        return True

    def _modify_checked(self, order: Order, request: Any, changes: dict[str, Any], now: float | None = None) -> bool:
        """The rails' answer, then the venue's (the runtime's own orders are not the strategy's
        to change: False, journaled as the answer)."""
        refused = "the runtime's order" if self._operators(order.order_id, "change") else \
            self.away_reads.change_refusal(order.order_id) or self.risk_change_refusal(order, changes, now)  # fmt: skip
        if refused is not None:
            self.link.not_sent()
            return False
        return self._modify_at_venue(request)

    def _modify_at_venue(self, request: Any) -> bool:
        try:
            self.gateway.modify(request)
        except ChangeDeferred as exc:  # a routine wait, not a refusal
            _log.warning("change of {} not made yet ({}); the order works unchanged, and a change asked at a "
                         "later bar is tried then", request.client_order_id, exc)  # fmt: skip
            return False
        except (VenueError, BridgeError) as exc:
            _log.error("change of {} was not accepted ({}); the order is unchanged",
                       request.client_order_id, exc)  # fmt: skip
            return False
        failpoint("after_change")
        return True
