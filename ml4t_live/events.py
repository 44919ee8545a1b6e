"""Past-tense events: what arrived from a feed or a venue.

Venue sessions translate what their library reports into these plain, immutable records on their
own loop thread and put them on that loop's janus queue; the engine thread reads them. Nothing
here refers to ib_async or alpaca-py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ml4t.backtest import OrderSide

#: ``BarClosed.replayed_arrival`` of a bar whose arrival nobody recorded (a journal from before
#: arrivals were kept): the rails read its prices' age as unknown, never as now
UNKNOWN_ARRIVAL = -math.inf


# --------------------------------------------------------------------------------------- feed
@dataclass(frozen=True, slots=True)
class BarClosed:
    """All bars that closed at one timestamp (one event per timestamp, like one backtest step).

    ``data`` maps asset -> the backtest's per-asset dict (``price, open, high, low, close,
    volume, signals`` plus optional ``vwap/bid/ask/mid/bid_size/ask_size``); ``context`` is the
    market-wide dict. ``timestamp`` is the bar's label exactly as the backtest labels it.
    """

    timestamp: datetime
    data: dict[str, dict[str, Any]]
    context: dict[str, Any] = field(default_factory=dict)
    #: True for a bar that reaches the strategy late: warm-up history, a backfill after an
    #: outage, a journal replay. The strategy sees it; an order placed on it does not leave.
    catch_up: bool = False
    #: ``time.monotonic()`` when a live venue feed handed the bar over (None: a replay); a bar
    #: that then waits longer than its interval plus a grace (the strategy fell behind) is late
    received_at: float | None = None
    #: a bar replayed from a journal: when it arrived in the run that journaled it, as this
    #: process's ``time.monotonic()`` (:data:`UNKNOWN_ARRIVAL`: the journal does not say;
    #: None: it came without an arrival time, like a recorded source's bars)
    replayed_arrival: float | None = field(default=None, compare=False)

    @property
    def arrived_at(self) -> float | None:
        """When the bar's prices arrived (``time.monotonic()``), where the rails' end-of-run
        clock counts from: live, ``received_at``; replayed, ``replayed_arrival``."""
        return self.received_at if self.received_at is not None else self.replayed_arrival


@dataclass(frozen=True, slots=True)
class FeedHeartbeat:
    """The feed is alive but has no bar yet (keeps the stall detector quiet)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class FeedDisconnected:
    venue: str
    reason: str


@dataclass(frozen=True, slots=True)
class FeedReconnected:
    venue: str
    missed_bars: int = 0


@dataclass(frozen=True, slots=True)
class FeedEnded:
    """The feed has nothing more to deliver (end of a replay, or the session is over)."""

    reason: str = "end of data"


# --------------------------------------------------------------------------------------- orders
@dataclass(frozen=True, slots=True)
class OrderAccepted:
    client_order_id: str
    venue_order_id: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution at the venue. ``exec_id`` identifies it (duplicates are applied once)."""

    client_order_id: str
    exec_id: str
    asset: str
    side: OrderSide
    quantity: float
    price: float
    timestamp: datetime
    commission: float = 0.0
    cumulative_quantity: float = 0.0
    #: made from a REST view of the order (no execution id at hand): its quantity is what the
    #: order filled beyond an earlier view, and may re-report fills known under their real ids
    reconstructed: bool = False
    #: ``time.monotonic()`` when the venue session's loop thread received it (the session's
    #: latency table); not part of the execution's identity (equality, the journal)
    received_at: float | None = field(default=None, compare=False)
    #: the venue's id of the order that executed (Alpaca: which order of a replace chain, all under
    #: our one client order id; "" when not known): journaled (a warm restart tells the listed
    #: order's own fills in the book from those of the orders it replaced), not part of the
    #: execution's identity (equality)
    venue_order_id: str = field(default="", compare=False, metadata={"journal": True})


def stamp_received(event: Any) -> Any:
    """An execution with its receive time set (now, unless set); other events unchanged."""
    if isinstance(event, Execution) and event.received_at is None:
        return replace(event, received_at=time.monotonic())
    return event


@dataclass(frozen=True, slots=True)
class OrderPartiallyFilled(Execution):
    """An execution that leaves the order open."""


@dataclass(frozen=True, slots=True)
class OrderFilled(Execution):
    """The execution that completes the order."""


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    client_order_id: str
    reason: str = "cancelled"


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_order_id: str
    reason: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class OrderLost:
    """The venue never confirmed the order, and a bounded look-up by client order id did not find
    it: it is taken as not placed (never re-sent) and the operator is alerted."""

    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    client_order_id: str
    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None


# --------------------------------------------------------------------------------------- venue
@dataclass(frozen=True, slots=True)
class BrokerDisconnected:
    venue: str
    reason: str


@dataclass(frozen=True, slots=True)
class BrokerReconnected:
    venue: str


@dataclass(frozen=True, slots=True)
class VenueErrorReported:
    """An unsolicited error or notice from the venue (IB error codes, Alpaca error bodies)."""

    venue: str
    code: str
    message: str
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class BackgroundTaskFailed:
    """A background task on a worker loop died; reported, never lost."""

    thread: str
    task: str
    error: str


FeedEvent = BarClosed | FeedHeartbeat | FeedDisconnected | FeedReconnected | FeedEnded
OrderEvent = (
    OrderAccepted
    | OrderPartiallyFilled
    | OrderFilled
    | OrderCancelled
    | OrderRejected
    | OrderReplaced
    | OrderLost
)
VenueEvent = OrderEvent | BrokerDisconnected | BrokerReconnected | VenueErrorReported
