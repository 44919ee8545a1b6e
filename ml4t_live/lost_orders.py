"""Orders the runtime declared lost that the venue turns out to work: cancelled at once.

An order is *lost* when the venue never confirmed it and bounded look-ups by client order id did
not find it (:mod:`~ml4t_live.unknown_orders`, or the adapter's own checks). It is REJECTED
``lost: ...`` for the strategy and never sent again; nothing may trade it. Mixed into
:class:`~ml4t_live.venue_broker.VenueBroker`:

* when the runtime declares an order lost it also sends a cancel for its client order id, in
  case the venue has it after all (its lists lag; a cancel is idempotent and harmless for an id
  the venue does not know), as IB's adapter does for the orders it declares lost. A refusal or a
  failure is the expected answer for an order that is not there: logged, nothing else (a bug in
  the gateway's cancel too: an ERROR with its traceback, then the same line);
* a lost order the venue reports *working* (an ``OrderAccepted``, or listed among the open orders
  at a warm restart or a reconciliation) is **surfaced**: an ERROR names it and its cancel is sent
  at once; once sent it is followed in ``book.cancelling`` until the venue confirms the end (a
  fill that beats the cancel counts once, by execution id) and, unanswered, sent again as any
  cancel (:mod:`~ml4t_live.cancel_resends`). A refused cancel leaves it to the venue's own
  events; a failed one is tried again when the venue next lists it working; one whose cancel
  raised a bug (CancelUnsure: whether it went out is unknown) is followed as sent, its first
  check due at once (the check sends the cancel again while the venue lists it working).

The strategy keeps seeing it REJECTED (lost); the journal's intent stays ``lost`` (its
``filled`` column counts any fill), or ``filled`` once the venue filled all of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from loguru import logger
from ml4t.backtest import Order

from .book import Book
from .errors import CancelRefused, CancelUnsure
from .protocols import VenueGateway
from .runtime_cancels import cancel_one

_log = logger.bind(component="venue-broker")


class LostOrders:
    """Cancels for lost orders; needs the attributes listed below."""

    gateway: VenueGateway
    book: Book
    own: Any  # Ownership
    cancel_resends: Any  # CancelResends

    def _is_lost(self, order: Order | None) -> bool:
        """Declared lost and no longer followed (not open, not cancelling)."""
        if order is None or order.rejection_code != "lost":
            return False
        cid = order.order_id
        return cid not in self.book.open and cid not in self.book.cancelling

    def _cancel_declared_lost(self, cid: str) -> None:
        """The runtime just declared ``cid`` lost: a cancel for its id, in case the venue has it."""
        outcome = cancel_one(self.gateway, cid)  # (a bug in it: logged as an ERROR, CancelUnsure)
        if outcome is not None:  # (CancelRefused too) the expected answer
            _log.info("order {} is lost; the cancel sent for its id in case the venue has it was not "
                      "taken ({})", cid, outcome)  # fmt: skip
            return
        _log.warning("order {} is lost; a cancel was sent for its id in case the venue has it after all", cid)

    def _lost_listed(self, venue_orders: Iterable[Any], where: str) -> None:
        """The venue lists these orders as working (``where``: at a restart, a reconciliation):
        any of ours that was declared lost is surfaced, once per listing (Alpaca lists our id
        twice while a replace is pending: the old order and its replacement)."""
        seen: set[str] = set()
        for venue_order in venue_orders:
            cid = venue_order.client_order_id or ""
            order = self.book.get(cid)
            if cid not in seen and self._is_lost(order):
                self._lost_surfaced(order, f"listed working {where}")
            seen.add(cid)

    def _lost_surfaced(self, order: Order, how: str) -> None:
        """A lost order the venue works (``how`` it said so): cancel it now and follow it."""
        cid = order.order_id
        _log.error("order {} was declared lost but the venue works it ({}): cancelling it now (the "
                   "strategy keeps it REJECTED; a fill that beats the cancel still counts)", cid, how)  # fmt: skip
        outcome = cancel_one(self.gateway, cid)  # (a bug in it: logged as an ERROR, CancelUnsure)
        if isinstance(outcome, CancelRefused):
            _log.warning("cancel of surfaced lost order {} refused ({}); its own events say how it ended",
                         cid, outcome)  # fmt: skip
            return
        if isinstance(outcome, CancelUnsure):
            _log.warning("the cancel of surfaced lost order {} {}; whether it went out is unknown: it is "
                         "followed, and the next check sends the cancel again while the venue lists it working",
                         cid, outcome.said())  # fmt: skip
        elif outcome is not None:
            _log.error("cancel of surfaced lost order {} failed ({}); it may still work at the venue: "
                       "tried again when the venue next lists it working (check the venue)", cid, outcome)  # fmt: skip
            self.own.check_soon()
            return
        self.book.follow_cancel(cid)
        self.cancel_resends.sent(cid, long_ago=outcome is not None)  # unanswered, sent again as any cancel
