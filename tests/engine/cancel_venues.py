"""The fake venues of the engine's cancel tests (FakeVenue is the remote side): limit orders that
keep working while a cancel is lost (``LosesFirstCancel``), the fake time of each cancel noted
(``TimedVenue``), and the ways a venue answers a cancel, a repeat, a batch or a look-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml4t_live.errors import BridgeTimeout, CancelRefused, ConnectionFailed, VenueError
from ml4t_live.events import OrderAccepted, OrderCancelled
from ml4t_live.protocols import VenueOrder
from tests.engine.fake_clock import Clock
from tests.support.fakes import FakeVenue


@dataclass
class LosesFirstCancel(FakeVenue):
    """Limit orders are accepted and keep working (listed in ``open_orders``). The first cancel
    never reaches the matching engine (``partial_first``: a part fills meanwhile); a later one is
    confirmed or, ``fill_instead``, the order fills first and the cancel is refused (IB 10148)."""

    fill_instead: bool = False
    partial_first: bool = False
    lost: int = 1  # how many cancels are lost

    def place(self, request):
        super().place(request)
        self.events.put(OrderAccepted(request.client_order_id, f"V{len(self.placed)}"))
        self.open_orders.append(VenueOrder(request.client_order_id, f"V{len(self.placed)}", request.asset,
                                           request.side, request.quantity, 0.0, request.order_type, "open",
                                           request.limit_price))  # fmt: skip

    def cancel(self, client_order_id):
        self._maybe_fail("cancel")
        self.cancelled.append(client_order_id)
        request = next(r for r in self.placed if r.client_order_id == client_order_id)
        if len(self.cancelled) <= self.lost:  # lost: the order keeps working
            if self.partial_first and len(self.cancelled) == 1:
                self.fill(request, 2, final=False)
            return
        self.open_orders = [o for o in self.open_orders if o.client_order_id != client_order_id]
        if self.fill_instead:
            self.fill(request, request.quantity - (2 if self.partial_first else 0))
            raise CancelRefused(f"{client_order_id}: cannot cancel, state Filled (10148)")
        self.events.put(OrderCancelled(client_order_id, "cancelled"))


@dataclass
class TimedVenue(LosesFirstCancel):
    """LosesFirstCancel that notes the (fake) time of each cancel it receives."""

    clock: Clock = field(default_factory=Clock)
    times: list[float] = field(default_factory=list)

    def cancel(self, client_order_id):
        self.times.append(self.clock.now - 1000.0)
        super().cancel(client_order_id)


@dataclass
class CancelsSilently(TimedVenue):
    """Carries out the cancel (the order leaves its open orders) but never confirms it."""

    def cancel(self, client_order_id):
        self.times.append(self.clock.now - 1000.0)
        self.cancelled.append(client_order_id)
        self.open_orders = [o for o in self.open_orders if o.client_order_id != client_order_id]


@dataclass
class FailsRepeatOnce(TimedVenue):
    """The first repeat (the second cancel) fails: the connection is down."""

    def cancel(self, client_order_id):
        if len(self.times) == 1:
            self.times.append(self.clock.now - 1000.0)
            raise ConnectionFailed("connection to the venue lost")
        super().cancel(client_order_id)


@dataclass
class LooksUp(CancelsSilently):
    """CancelsSilently with a look-up by client order id: ``answer`` says what it finds
    ("cancelled", "filled": the fill is reported as the gateway's event first, "filled, no
    executions": it is never reported, None: not found, "fail": the look-up fails)."""

    answer: str | None = "cancelled"
    looked_up: list[list[str]] = field(default_factory=list)

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        if self.answer == "fail":
            raise VenueError("GET /v2/orders:by_client_order_id: HTTP 503 (after 4 tries)")
        if self.answer is None:
            return {}
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            filled = request.quantity if self.answer.startswith("filled") else 0.0
            if self.answer == "filled" and len(self.looked_up) == 1:
                self.fill(request)  # (a real gateway reports what the look-up found as events)
            status = "filled" if self.answer.startswith("filled") else self.answer
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity, filled,
                                  request.order_type, status, request.limit_price)  # fmt: skip
        return out


@dataclass
class BugOnCancel(TimedVenue):
    """TimedVenue whose ``bug_at``-th cancel raises TypeError before it reaches the venue (nothing
    sent); the others are taken and confirmed (``lost``: the first ones are lost)."""

    bug_at: int = 1
    calls: int = 0

    def cancel(self, client_order_id):
        self.calls += 1
        if self.calls == self.bug_at:
            self.times.append(self.clock.now - 1000.0)
            raise TypeError("'NoneType' object is not subscriptable")
        super().cancel(client_order_id)


@dataclass
class BatchVenue(TimedVenue):
    """Limit orders work (listed) until cancelled. ``script``: the first batch's outcome per order
    (by placing index): "fill" or "fail"; any other order's cancel is taken and confirmed.
    ``whole``: the next batch raises it. Single cancels (the repeats' path) are LosesFirstCancel's."""

    script: dict[int, str] = field(default_factory=dict)
    whole: Exception | None = None
    batches: list[list[str]] = field(default_factory=list)

    def cancel_many(self, client_order_ids: list[str]) -> dict[str, Exception | None]:
        self.batches.append(list(client_order_ids))
        if self.whole is not None:
            exc, self.whole = self.whole, None
            raise exc
        out: dict[str, Exception | None] = {}
        for cid in client_order_ids:
            i, request = next((i, r) for i, r in enumerate(self.placed) if r.client_order_id == cid)
            what = self.script.pop(i, "take")
            if what == "fail":
                out[cid] = BridgeTimeout("ib-session: cancel_many did not finish within 8s; it was cancelled")
                continue
            self.open_orders = [o for o in self.open_orders if o.client_order_id != cid]
            if what == "fill":
                self.fill(request)
                out[cid] = CancelRefused(f"IB refused the cancel of {cid}: error 10148: state: Filled")
            else:
                self.cancelled.append(cid)
                self.events.put(OrderCancelled(cid, "Cancelled at IB"))
                out[cid] = None
        return out


@dataclass
class StuckPendingCancel(TimedVenue):
    """The orders were already being cancelled at the venue (a DELETE the journal never saw,
    Alpaca ``pending_cancel``): every cancel is refused (422) and the order stays listed working;
    ``take_after`` cancels refused, the next one is taken and carried out (confirmed)."""

    take_after: int = 10**6

    def cancel(self, client_order_id):
        self.times.append(self.clock.now - 1000.0)
        if len(self.times) <= self.take_after:
            self.cancelled.append(client_order_id)
            raise CancelRefused('order is already in "pending_cancel" state (HTTP 422)')
        self.lost = 0
        super(TimedVenue, self).cancel(client_order_id)
