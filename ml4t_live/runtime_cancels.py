"""The runtime's own cancels of many working orders (a halt, ``cancel-all``, the end of the
run, a flatten's first step): the base of the bar steps (:mod:`~ml4t_live.broker_steps`), mixed into
:class:`~ml4t_live.venue_broker.VenueBroker`.

A gateway that offers ``cancel_many`` (:class:`~ml4t_live.protocols.CancelsMany`, IB: its cancel
waits for the answer) gets them all in one call, so a halt of N orders costs about one wait, not
N; any other gateway gets one ``cancel`` per order. Either way each order's outcome is handled
alike: taken -> CANCELLED for the strategy (journaled), cancelling until the venue confirms;
refused -> its events, else followed (:mod:`~ml4t_live.cancel_resends`); unsure (the gateway's
cancel raised a bug: ``CancelUnsure``, whether from ``cancel_many`` or from a single ``cancel``)
-> cancelling, its first check due at once (the check sends the cancel again while the venue
lists it working); failed -> warned once, tried again at the next call.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from ml4t.backtest import Order

from .book import Book
from .errors import BridgeError, CancelRefused, CancelUnsure, VenueError
from .order_ids import ClientOrderIds
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")


class RuntimeCancels:
    gateway: VenueGateway
    book: Book
    ids: ClientOrderIds
    cancel_resends: Any  # CancelResends
    _cancel_failed: set[str]
    _drain: Any  # FillBarrier._drain
    _cancel_taken: Any  # BarSteps._cancel_taken
    _keep_follow_up: Any  # CancelResending._keep_follow_up

    def cancel_open_orders(self, reason: str, *, strategy_only: bool = False) -> None:
        """The runtime (not the strategy) cancels every working order (``strategy_only``: the
        strategy's, not the runtime's own, e.g. the operator's flatten); each is journaled as an
        event, so a warm restart shows the strategy the same cancelled order. A cancel that failed
        leaves its order working (open in the book), tried again at the next call. One the venue
        refused for an order its events have not ended (e.g. already ``pending_cancel``) leaves it
        open (PENDING for the strategy) and followed like an unanswered cancel
        (:mod:`~ml4t_live.cancel_resends`): a WARNING, checks that send the cancel again while the
        venue works it, then the ALERT; not sent again by the next calls (the end of the run
        starts over: :meth:`~ml4t_live.broker_steps.BarSteps.finish_orders`). A gateway with ``cancel_many``
        (:class:`~ml4t_live.protocols.CancelsMany`) gets them all in one call, so the waits for
        the venue's answers overlap; the cancels it took are recorded first (they went out
        before any refusal's drain), then the others' outcomes in order."""
        self._cancel_failed &= self.book.open.keys()  # (warned once: only orders still working are kept)
        orders = [o for o in self.book.open.values() if not (strategy_only and self.ids.is_runtime(o.order_id))]
        if not hasattr(self.gateway, "cancel_many"):  # one by one: a refusal's drain comes before the next
            for order in orders:
                if order.order_id in self.cancel_resends.refused_open or order.order_id not in self.book.open:
                    continue  # followed on its own schedule / ended meanwhile
                self._cancel_outcome(order, cancel_one(self.gateway, order.order_id), reason)
            return
        orders = [o for o in orders if o.order_id not in self.cancel_resends.refused_open]
        outcomes = cancel_each(self.gateway, [o.order_id for o in orders])
        for order in sorted(orders, key=lambda o: outcomes[o.order_id] is not None):  # (stable)
            if order.order_id in self.book.open:  # (a refusal's drain may have ended it)
                self._cancel_outcome(order, outcomes[order.order_id], reason)

    def _cancel_outcome(self, order: Order, outcome: Exception | None, reason: str) -> None:
        """What the runtime's cancel of ``order`` came to: None (the venue took it), CancelRefused,
        CancelUnsure (a bug in the gateway's cancel: cancelling, its first check due at once), or
        another VenueError / BridgeError (failed: it may still work)."""
        if isinstance(outcome, CancelUnsure):  # (the gateway logged the bug as an ERROR)
            self._cancel_taken(order, reason)
            self.cancel_resends.sent(order.order_id, long_ago=True)
            _log.warning("{}: the cancel of {} {}; whether it went out is unknown: it is cancelling, and the "
                         "next check sends the cancel again while the venue lists it working", reason,
                         order.order_id, outcome.said())  # fmt: skip
        elif isinstance(outcome, CancelRefused):
            self._drain(block_until=None)  # a fill (or cancel) that raced it is applied first
            if order.order_id not in self.book.open:
                _log.info("{}: {} could not be cancelled ({}); its own events say how it ended",
                          reason, order.order_id, outcome)  # fmt: skip
                return
            self.cancel_resends.refused(order.order_id, reason, str(outcome))
            self._keep_follow_up()
            _log.warning("{}: the venue refused to cancel {} ({}); it stays pending for the strategy and "
                         "is followed: its events may end it, else the cancel is asked again while the "
                         "venue lists it working, then an ALERT", reason, order.order_id, outcome)  # fmt: skip
        elif outcome is not None:  # warned once per order (HALTED tries again each bar)
            level = "DEBUG" if order.order_id in self._cancel_failed else "WARNING"
            self._cancel_failed.add(order.order_id)
            _log.log(level, "{}: cancel of {} failed ({}); it may still work at the venue", reason,
                     order.order_id, outcome)  # fmt: skip
        else:
            self._cancel_taken(order, reason)


def cancel_each(gateway: VenueGateway, cids: list[str]) -> dict[str, Exception | None]:
    """Each order's cancel: None (the venue took it) or what its cancel raised (CancelRefused,
    CancelUnsure: a bug in the gateway's cancel, or another VenueError / BridgeError: failed, it
    may still work). A gateway with ``cancel_many`` gets them in one call (an order it gives no
    outcome, or a batch that raises a venue's or the bridge's error: failed; a batch that raises
    anything else: an ERROR with its traceback, each order CancelUnsure); any other, one
    ``cancel`` each."""
    if not cids:
        return {}
    cancel_many = getattr(gateway, "cancel_many", None)
    if cancel_many is None:
        return {cid: cancel_one(gateway, cid) for cid in cids}
    try:
        outcomes = cancel_many(cids)
    except (VenueError, BridgeError) as exc:
        return dict.fromkeys(cids, exc)
    except Exception as exc:  # noqa: BLE001  (a bug in the batch: logged, each order unsure)
        text = (f"cancel_many of {len(cids)} order(s) raised {type(exc).__name__}: {exc} (a bug in the "
                "venue gateway, not the venue's answer); whether the cancels went out is unknown")  # fmt: skip
        _log.opt(exception=exc).error("{}", text)
        return {cid: CancelUnsure.of_bug(text, exc) for cid in cids}
    missing = VenueError("the venue gateway gave no outcome for this cancel")
    return {cid: outcomes.get(cid, missing) for cid in cids}


def cancel_one(gateway: VenueGateway, cid: str) -> Exception | None:
    """The cancel of ``cid``: None (the venue took it), the VenueError / BridgeError it raised, or
    CancelUnsure when it raised anything else (a bug in the gateway's cancel, not the venue's
    answer: an ERROR with its traceback; whether the cancel went out is unknown), as
    :func:`cancel_each` gives for a ``cancel_many`` that raises one."""
    try:
        gateway.cancel(cid)
    except (VenueError, BridgeError) as exc:
        return exc
    except Exception as exc:  # noqa: BLE001  (a bug in the cancel: logged, the order's cancel unsure)
        text = (f"cancel of {cid} raised {type(exc).__name__}: {exc} (a bug in the venue gateway, not the "
                "venue's answer); whether the cancel went out is unknown")  # fmt: skip
        _log.opt(exception=exc).error("{}", text)
        return CancelUnsure.of_bug(text, exc)
    return None
