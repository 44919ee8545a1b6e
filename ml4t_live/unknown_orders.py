"""Orders whose outcome became unknown in this session: looked up by client order id, bounded and aged.

An order's outcome is *unknown* when its send timed out on the bridge or the gateway's ``place``
raised something other than a venue's answer (``SendFailed``): it may or may not be at the venue
(journal intent ``unknown``). It stays PENDING for the strategy (the risk limits count it) and is
never re-sent. Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`, the fill barrier
(``settle``, before each live bar's ``on_data``; never on a replayed bar) looks it up through the
gateway's ``lookup``:

* settled meanwhile by the venue's own events (accepted, a fill, cancelled, rejected, lost) ->
  nothing more to do;
* **found** -> the venue's state: working = accepted; cancelled / rejected / filled as the restart
  path takes them; fills arrive as the look-up's events, applied once by execution id;
* **not found** -> a *miss*. A venue's lists lag (IB's open orders, a submit still on its way), so
  one miss proves nothing: a look-up runs at the earliest ``spacing`` seconds after the unknown
  began and after the previous one, and only ``misses`` misses in a row make the order *lost*
  (``OrderLost``: REJECTED "lost: ...", an ``ALERT ... lost`` ERROR line, never re-sent; a fill
  the venue reports later still counts). Defaults: 5 misses, 5 s apart, so lost at the earliest
  25 s after the unknown began (later with longer bars: one look-up per bar at most);
* a look-up that fails (``VenueError`` / ``BridgeError``) is not a miss (unknown is not gone): it
  is tried again ``spacing`` seconds later.

One owner per order: when the venue adapter follows the order's outcome itself (the gateway's
``follows_unknown(cid)`` says so: Alpaca's :mod:`~ml4t_live.venues.alpaca.unknown`, IB's in-flight
checks in :mod:`~ml4t_live.venues.ib.inflight`), the broker leaves it to the adapter, whose events
settle it; these look-ups take over only once the adapter has let go of it without an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from ml4t.backtest import Order, OrderStatus

from .book import Book
from .errors import BridgeError, VenueError
from .events import OrderAccepted, OrderLost
from .protocols import VenueGateway

_log = logger.bind(component="venue-broker")

#: look-ups that must find nothing before an order of unknown outcome counts as lost
LOOKUP_MISSES = 5
#: seconds from the unknown's start, and between look-ups, before the next look-up
LOOKUP_SPACING = 5.0


@dataclass(slots=True)
class _Unknown:
    since: float  # when the outcome became unknown
    reason: str
    next_at: float  # no look-up before this
    misses: int = 0


class UnknownOrders:
    """Which orders are of unknown outcome, since when, and how often a look-up missed them."""

    def __init__(self, *, misses: int = LOOKUP_MISSES, spacing: float = LOOKUP_SPACING,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if misses < 1 or spacing < 0:
            raise ValueError("UnknownOrders needs misses >= 1 and spacing >= 0")
        self.misses = misses
        self.spacing = spacing
        self.clock = clock
        self._items: dict[str, _Unknown] = {}

    def began(self, cid: str, reason: str) -> None:
        now = self.clock()
        self._items[cid] = _Unknown(now, reason, now + self.spacing)

    def due(self) -> list[str]:
        now = self.clock()
        return [cid for cid, item in self._items.items() if item.next_at <= now]

    def drop(self, cid: str) -> None:
        self._items.pop(cid, None)

    def failed(self, cids: list[str]) -> None:
        """The look-up got no answer: not a miss; tried again ``spacing`` seconds from now."""
        later = self.clock() + self.spacing
        for cid in cids:
            if cid in self._items:
                self._items[cid].next_at = later

    def missed(self, cid: str) -> tuple[int, str | None]:
        """One more look-up without the order: (misses so far, the lost reason once the bound
        is reached, else None)."""
        item = self._items[cid]
        now = self.clock()
        item.misses += 1
        item.next_at = now + self.spacing
        if item.misses < self.misses:
            return item.misses, None
        del self._items[cid]
        return item.misses, (f"its outcome was unknown ({item.reason}) and {item.misses} look-ups by client "
                             f"order id over {now - item.since:.0f}s did not find it at the venue; taken as "
                             "not placed")  # fmt: skip

    def __contains__(self, cid: object) -> bool:
        return cid in self._items

    def __len__(self) -> int:
        return len(self._items)


class UnknownLookups:
    """``look_up_unknown``, called by the fill barrier; needs the attributes listed below."""

    gateway: VenueGateway
    book: Book
    unknown: UnknownOrders
    link: Any  # JournalLink
    _apply_live: Any  # BarSteps._apply_live
    _drain: Any  # FillBarrier._drain
    _observe: Any  # FillBarrier._observe
    _take_venue_end: Any  # BarSteps._take_venue_end

    def _unknown_began(self, order: Order, reason: str) -> None:
        self.unknown.began(order.order_id, reason)

    def _settled(self, cid: str) -> bool:
        """The venue has answered for it (or it ended): it is no longer of unknown outcome."""
        order = self.book.get(cid)
        open_ = cid in self.book.open or cid in self.book.cancelling
        return order is None or not open_ or cid in self.book.acknowledged or order.filled_quantity > 0

    def look_up_unknown(self) -> None:
        """Look up the orders of unknown outcome whose next look-up is due (at most one bounded
        gateway ``lookup`` call); see the module docstring."""
        if not len(self.unknown) or self.link.replaying:
            return
        for cid in self.unknown.due():
            if self._settled(cid):
                self.unknown.drop(cid)
        lookup = getattr(self.gateway, "lookup", None)
        due = self.unknown.due()
        if lookup is None or not due:
            return
        try:
            due = [cid for cid in due if not self._adapter_follows(cid)]
            found = lookup(due) if due else {}
        except (VenueError, BridgeError) as exc:  # unknown is never read as gone
            _log.warning("could not look up {} order(s) of unknown outcome ({}); not counted, trying "
                         "again in {:g}s", len(due), exc, self.unknown.spacing)  # fmt: skip
            self.unknown.failed(due)
            return
        self._drain(block_until=None)  # what the look-up reported (fills by execution id) first
        for cid in due:
            self._answer(cid, found.get(cid))

    def _adapter_follows(self, cid: str) -> bool:
        follows = getattr(self.gateway, "follows_unknown", None)
        if follows is None or not follows(cid):
            return False
        self.unknown.failed([cid])  # (asked again later: the adapter may let go without an answer)
        _log.debug("order {} of unknown outcome: the {} adapter is looking it up itself", cid,
                   getattr(self.gateway, "venue", "venue"))  # fmt: skip
        return True

    def _answer(self, cid: str, venue_order: Any) -> None:
        if venue_order is not None:
            _log.warning("order {} of unknown outcome found at the venue ({})", cid, venue_order.status)
        if self._settled(cid):  # (the look-up's own events may have settled it)
            self.unknown.drop(cid)
            return
        if venue_order is None:
            misses, lost = self.unknown.missed(cid)
            if lost is not None:
                event = OrderLost(cid, lost)
                self._apply_live(event)
                self._observe(event)  # (the run's notifications: an error)
            else:
                _log.info("order {} of unknown outcome not found at the venue (look-up {} of {}); "
                          "looking again in {:g}s", cid, misses, self.unknown.misses,
                          self.unknown.spacing)  # fmt: skip
            return
        self.unknown.drop(cid)
        order = self.book.get(cid)
        if venue_order.status != "open":
            self._take_venue_end(order, venue_order, "(found by look-up)")
        elif order.status is OrderStatus.PENDING:  # working at the venue: accepted
            self._apply_live(OrderAccepted(cid, venue_order.venue_order_id))
