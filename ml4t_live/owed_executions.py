"""Executions a look-up says the venue made but that never came: waited for, then made up, once.

In the session, a look-up by client order id (of a cancelling order the venue no longer lists, of
an order of unknown outcome) can find an order *filled* beyond what its events brought. Its
executions are then on their way (the look-up itself reports those within its reach), and they
decide: none is made up at once (it would count twice). But they may never come (a stream that
dropped them, executions the venue no longer lists); left alone, the order would stay cancelling
(or pending) for the rest of the run, and its position would differ from the venue's with nothing
to end it.

So the order is *owed* its executions (:class:`OwedExecutions`, mixed into
:class:`~ml4t_live.venue_broker.VenueBroker`): once a reconciliation has passed since the finding
(every ``reconcile_every`` seconds; 5 s later while a position difference is being confirmed, as the
one its missing executions leave; one skipped because the venue's positions could not be read does
not count), the reconciliation after it looks the order up once more. The venue still saying filled
beyond the order's fills (those the look-up's own executions brought included), the missing quantity
is applied as a warm restart applies it (reconstructed, at the order's limit or stop price, else the
asset's last price; execution id ``<client order id>:filled-while-away``), once, with an ERROR
``ALERT`` that says so. Executions that came meanwhile settle it (nothing made up), as does a venue
saying filled no more than the order's fills (IB's answer is built from the executions it finds); a
look-up that fails or does not find the order leaves it owed until the next reconciliation; the
venue giving it another end (cancelled, rejected) ends it so; working after all, it is no longer
owed (a cancelling one is the cancel checks', :mod:`~ml4t_live.cancel_checks`). A restart does not
carry the debt: its own look-up applies what the venue says the order filled
(:meth:`~ml4t_live.broker_steps.BarSteps._take_venue_end`).
Either made-up fill ends the order at what the venue said it filled: real executions of it that
still come later (IB's after a reconnect, a slow stream) are ignored by the book, with a WARNING,
in the session and in a warm restart's replay alike (:meth:`~ml4t_live.book.Book._new_real_part`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus

from .book import Book
from .errors import BridgeError, VenueError
from .events import OrderAccepted, OrderFilled
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

_EPS = 1e-9


class OwedExecutions:
    """``_owe_executions`` / ``_settle_owed`` / ``_made_up_fill``; needs the attributes below."""

    gateway: VenueGateway
    book: Book
    _owed: dict[str, tuple[float, int]]  # client order id -> (the quantity the venue said it filled,
    #                                        the reconciliations done when it said so)
    _reconciled: int  # reconciliations done in this run
    _apply_live: Any  # BarSteps._apply_live
    _drain: Any  # FillBarrier._drain
    _take_venue_end: Any  # BarSteps._take_venue_end

    def _owe_executions(self, order: Order, venue_order: Any, when: str) -> None:
        """A look-up in the session found ``order`` filled beyond its fills: its executions decide,
        until the next reconciliation (see the module docstring). Said once."""
        cid = order.order_id
        if cid not in self._owed:
            _log.warning("order {} filled {:g} at the venue {}, {:g} of it not reported yet: its executions "
                         "decide; if they have not come by the next reconciliation (the venue still saying "
                         "filled), the missing quantity is applied at the order's price", cid,
                         venue_order.filled_quantity, when,
                         venue_order.filled_quantity - order.filled_quantity)  # fmt: skip
        quantity, since = self._owed.get(cid, (0.0, self._reconciled))
        self._owed[cid] = (max(quantity, venue_order.filled_quantity), since)
        if order.status is OrderStatus.PENDING:  # the venue has it: no longer unknown
            self._apply_live(OrderAccepted(cid, venue_order.venue_order_id))

    def _settle_owed(self) -> None:
        """A reconciliation: the orders owed executions since before the last one that passed are
        looked up again, and what the venue says now settles each (see the module docstring)."""
        eligible = {cid for cid, (_, since) in self._owed.items() if since < self._reconciled}
        for cid in [c for c in self._owed if not self._still_owed(c)]:
            del self._owed[cid]  # its executions came, or its order ended otherwise
        cids = [cid for cid in self._owed if cid in eligible]
        lookup = getattr(self.gateway, "lookup", None)
        if not cids or lookup is None:
            return
        try:
            found = lookup(cids)
        except (VenueError, BridgeError) as exc:
            _log.warning("could not look up {} order(s) found filled whose executions have not come ({}); "
                         "looked up again at the next reconciliation", len(cids), exc)  # fmt: skip
            return
        self._drain(block_until=None)  # what the look-up reported (fills by execution id) first
        for cid in cids:
            venue_order = found.get(cid)
            if not self._still_owed(cid):
                self._owed.pop(cid, None)
            elif venue_order is None:
                _log.info("order {} (found filled, its executions not come) not found by this look-up: looked "
                          "up again at the next reconciliation", cid)  # fmt: skip
            elif venue_order.status == "filled" and venue_order.filled_quantity <= self.book.get(cid).filled_quantity + _EPS:
                del self._owed[cid]
                _log.info("order {} (found filled, its executions not come) filled {:g} at the venue, as its "
                          "executions now applied say: no longer owed, nothing made up", cid,
                          venue_order.filled_quantity)  # fmt: skip
            elif venue_order.status == "filled":
                del self._owed[cid]
                self._made_up_fill(self.book.get(cid), venue_order, "at the venue (found by look-up, and again at "
                                   "the reconciliation)", "its executions never came", alert=True)  # fmt: skip
            else:
                del self._owed[cid]
                if venue_order.status != "open":
                    self._take_venue_end(self.book.get(cid), venue_order, "(found by look-up)")

    def _still_owed(self, cid: str) -> bool:
        order = self.book.get(cid)
        working = cid in self.book.open or cid in self.book.cancelling
        return order is not None and working and order.filled_quantity < self._owed[cid][0] - _EPS

    def _made_up_fill(self, order: Order, venue_order: Any, when: str, why: str, *, alert: bool = False) -> None:
        """Apply what the venue says ``order`` filled beyond its fills, reconstructed at the order's
        price (its executions are out of reach: ``why``), saying so (an ERROR ALERT: ``alert``)."""
        cid = order.order_id
        price = venue_order.limit_price or venue_order.stop_price or self.book.last_prices.get(order.asset)
        missing = venue_order.filled_quantity - order.filled_quantity
        _log.log("ERROR" if alert else "WARNING",
                 "{}order {} filled {:g} {}, but {}: applied at {} (check with the venue; ml4t-live reconcile)",
                 "ALERT " if alert else "", cid, missing, when, why, price)  # fmt: skip
        self._apply_live(OrderFilled(cid, f"{cid}:filled-while-away", order.asset, order.side, missing,
                                     float(price or 0.0), datetime.now(UTC), 0.0, venue_order.filled_quantity,
                                     True))  # fmt: skip
