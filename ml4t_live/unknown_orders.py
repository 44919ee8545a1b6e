"""Orders whose outcome became unknown in this session: looked up by client order id, bounded and aged.

An order's outcome is *unknown* when its send timed out on the bridge or the gateway's ``place``
raised something other than a venue's answer (``SendFailed``): it may or may not be at the venue
(journal intent ``unknown``). It stays PENDING for the strategy (the risk limits count it) and is
never re-sent. Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`, the fill barrier
(``settle``, before each live bar's ``on_data``; never on a replayed bar) looks it up through the
gateway's ``lookup``:

* settled meanwhile by the venue's own events (accepted, a fill, cancelled, rejected, lost) ->
  nothing more to do, unless the look-up says it filled while it is still open (its executions
  short of what the venue says, or its end unknown): the venue's answer is taken as below;
* **found** -> the venue's state: working = accepted; cancelled / rejected as the restart path
  takes them; fills arrive as the look-up's events, applied once by execution id. A look-up that
  says "filled" without bringing the executions makes none up in the session (they arrive as
  events; one made up would count twice): the order is accepted and its executions decide;
* **not found** -> a *miss*. A venue's lists lag (IB's open orders, a submit still on its way), so
  one miss proves nothing: a look-up runs at the earliest ``spacing`` seconds after the unknown
  began and after the previous one, and only ``misses`` misses in a row make the order *lost*
  (``OrderLost``: REJECTED "lost: ...", an ``ALERT ... lost`` ERROR line, never re-sent, a cancel
  sent for its id in case the venue has it after all; a fill the venue reports later still
  counts, and should it surface working it is cancelled: :mod:`~ml4t_live.lost_orders`).
  Defaults: 5 misses, 5 s apart, so lost at the earliest 25 s after the unknown began (later with
  longer bars: one look-up per bar at most);
* a look-up that fails (``VenueError`` / ``BridgeError``) is not a miss (unknown is not gone): it
  is tried again ``spacing`` seconds later; one that could not read some orders and read the
  others (``LookupIncomplete``) fails for those alone, the others answered as above.

A warm restart hands over the orders the venue no longer lists (``unlisted``): its own look-up
counts as the first miss, and the rest go as above. One whose cancel had been sent (cancelling)
and that is never found ended while away: it ends CANCELLED (a WARNING; any fill is the position
reconciliation's), not lost.

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
from .errors import BridgeError, LookupIncomplete, VenueError
from .events import OrderAccepted, OrderCancelled, OrderLost
from .owed_executions import SAID_FILLED
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
    unlisted: bool = False  # a restart: the venue no longer lists it (it may have ended while away)


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

    def began(self, cid: str, reason: str, *, unlisted: bool = False) -> None:
        now = self.clock()
        self._items[cid] = _Unknown(now, reason, now + self.spacing, unlisted=unlisted)

    def unlisted(self, cid: str) -> bool:
        item = self._items.get(cid)
        return item is not None and item.unlisted

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
        taken = "lost" if item.unlisted else "not placed"
        return item.misses, (f"its outcome was unknown ({item.reason}) and {item.misses} look-ups by client "
                             f"order id over {now - item.since:.0f}s did not find it at the venue; taken as "
                             f"{taken}")  # fmt: skip

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
    _cancel_declared_lost: Any  # LostOrders._cancel_declared_lost
    cancel_resends: Any  # CancelResends
    _check_one: Any  # CancelResending._check_one
    _keep_follow_up: Any  # CancelResending._keep_follow_up

    def _unknown_began(self, order: Order, reason: str) -> None:
        self.unknown.began(order.order_id, reason)

    def _unlisted(self, order: Order, *, outcome_was_unknown: bool) -> None:
        """A warm restart's look-up did not find ``order``, which the venue no longer lists.

        Its outcome already unknown before the restart (journal intent ``unknown``: the venue
        did not answer its send): the first miss; the next look-ups go as for an order of
        unknown outcome (bounded, aged). Otherwise the answer stands: the earlier run sent it at
        least a restart ago, and the venue's lists were read after the reconnect's sync, so the
        lag one miss guards against in the session has passed: it is lost (never re-sent), or,
        when its cancel had been sent, it ended while away."""
        cid = order.order_id
        if outcome_was_unknown:
            self.unknown.began(cid, "the venue no longer lists it after a restart", unlisted=True)
            self._not_found(cid)
            return
        self._not_at_venue(cid, 1, "the venue does not know this order after a restart", unlisted=True)

    def _settled(self, cid: str) -> bool:
        """The venue has answered for it (or it ended): it is no longer of unknown outcome. (An
        order the venue no longer listed after a restart: only its end settles it, or, when not
        cancelling, the venue's accepting it; a fill alone does not say that it ended.)"""
        order = self.book.get(cid)
        open_ = cid in self.book.open or cid in self.book.cancelling
        if order is None or not open_:
            return True
        if self.unknown.unlisted(cid):
            return cid in self.book.open and cid in self.book.acknowledged
        return cid in self.book.acknowledged or order.filled_quantity > 0

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
        except LookupIncomplete as exc:  # the others were read: answered below
            unread = [cid for cid in due if cid in exc.unread]
            _log.warning("could not read {} of {} order(s) of unknown outcome looked up by client order id: {} "
                         "({}); not counted, trying again in {:g}s", len(unread), len(due), ", ".join(unread), exc,
                         self.unknown.spacing)  # fmt: skip
            self.unknown.failed(unread)
            found, due = exc.found, [cid for cid in due if cid not in exc.unread]
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
        said_filled = venue_order is not None and venue_order.status in SAID_FILLED and cid in self.book.open
        if self._settled(cid) and not said_filled:  # (the look-up's own events settled it)
            self.unknown.drop(cid)
            return
        if venue_order is None:
            self._not_found(cid)
            return
        unlisted = self.unknown.unlisted(cid)
        self.unknown.drop(cid)
        order = self.book.get(cid)
        if venue_order.status != "open":
            self._take_venue_end(order, venue_order, "(found by look-up)", in_session=not unlisted)
        elif cid in self.book.cancelling:  # its cancel was lost on the way: sent again (then as any)
            self._check_one(cid, True, self.cancel_resends.may_send(cid),
                            ", sent before the restart," if unlisted else "")  # fmt: skip
            self._keep_follow_up()
        elif order.status is OrderStatus.PENDING:  # working at the venue: accepted
            self._apply_live(OrderAccepted(cid, venue_order.venue_order_id))

    def _not_found(self, cid: str) -> None:
        """One more miss; at the bound: lost, or, for an order whose cancel had been sent,
        ended while away (cancelled)."""
        unlisted = self.unknown.unlisted(cid)
        misses, lost = self.unknown.missed(cid)
        if lost is None:
            _log.info("order {} of unknown outcome not found at the venue (look-up {} of {}); "
                      "looking again in {:g}s", cid, misses, self.unknown.misses,
                      self.unknown.spacing)  # fmt: skip
            return
        self._not_at_venue(cid, misses, lost, unlisted=unlisted)

    def _not_at_venue(self, cid: str, misses: int, lost: str, *, unlisted: bool) -> None:
        """The look-ups' verdict on an order the venue does not have: lost, or, for an order
        whose cancel had been sent, ended (cancelled)."""
        if cid in self.book.cancelling:
            why = ("ended while away: the venue no longer lists it" if unlisted
                   else "never found at the venue") + "; its cancel had been sent"  # fmt: skip
            _log.warning("order {} {} ({} look-up(s) by client order id): taken as cancelled (any fill is "
                         "the position reconciliation's)", cid, why, misses)  # fmt: skip
            self._apply_live(OrderCancelled(cid, why))
            return
        event = OrderLost(cid, lost)
        self._apply_live(event)
        self._observe(event)  # (the run's notifications: an error)
        self._cancel_declared_lost(cid)
