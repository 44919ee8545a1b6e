"""The simulated Alpaca's own bookkeeping: one :class:`AlpacaOrder` per Alpaca order id.

The matching core (:mod:`ml4t_live.sim.matching`) knows orders by integer ids; Alpaca knows them by
UUID strings and ``client_order_id``. This module holds the Alpaca-side view (status names,
timestamps, legs, replace chains) that :mod:`.payloads` turns into JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

_ASSET_NAMESPACE = uuid.UUID("5f0c6a53-5b7e-4c43-9d43-8a8e0d6b2f11")
ACCOUNT_ID = "2c1e4a6b-8d3f-4e5a-9b7c-1d2e3f4a5b6c"
ACCOUNT_NUMBER = "PA3SIM000001"

#: ``done_for_day``: done executing for the day, updated again the next trading day (Alpaca's
#: order-status reference): open, as the adapter counts it; the simulator never sets it
OPEN_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "held", "pending_cancel", "pending_replace",
     "done_for_day"}
)
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})


def asset_id_for(symbol: str) -> str:
    """A stable asset UUID per symbol (real Alpaca ids are stable too)."""
    return str(uuid.uuid5(_ASSET_NAMESPACE, symbol.upper()))


def new_order_id() -> str:
    return str(uuid.uuid4())


@dataclass
class AlpacaOrder:
    """Alpaca's view of one order; mutated as the matching core reports events."""

    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # market | limit | stop | stop_limit | trailing_stop
    time_in_force: str
    created_at: datetime
    qty: float | None = None
    notional: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    hwm: float | None = None
    order_class: str = ""  # "" (simple) | bracket | oco | oto
    status: str = "new"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    parent_id: str | None = None  # Alpaca id of the bracket/oto parent (legs only)
    leg_ids: list[str] = field(default_factory=list)
    exchange_id: int | None = None  # the matching core's id
    core_filled: float = 0.0  # what the core's order had filled when this one replaced its predecessor
    position_intent: str | None = None
    extended_hours: bool = False
    received_ns: int = 0  # perf_counter_ns when the submit reached the venue
    seq: int = 0  # arrival order (orders of one virtual instant share created_at)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def asset_id(self) -> str:
        return asset_id_for(self.symbol)

    def touch(self, when: datetime) -> None:
        self.updated_at = when


@dataclass(frozen=True)
class FillRecord:
    """One execution as the venue reported it (read-only view for tests)."""

    execution_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    timestamp: datetime
    position_qty: float
    cum_qty: float = 0.0  # the order's filled quantity after this execution
    leaves_qty: float = 0.0  # what the order still has to fill after it (0: the order is filled)


def before_last_fill(order: AlpacaOrder, fills: list[FillRecord]) -> AlpacaOrder:
    """A copy of ``order`` as it was before its last execution of ``fills`` (the venue's, all
    orders): what a REST read lagging the stream shows (the ``stale_order_read`` fault)."""
    own = [f for f in fills if f.order_id == order.id][:-1]
    if len(own) == len([f for f in fills if f.order_id == order.id]):
        return order  # (no execution yet: nothing to lag behind)
    filled = sum(f.qty for f in own)
    avg = sum(f.qty * f.price for f in own) / filled if filled else None
    status = order.status
    if status in ("filled", "partially_filled"):
        status = "partially_filled" if filled else "new"
    return replace(order, filled_qty=filled, filled_avg_price=avg, status=status, filled_at=None)


def before_replace(order: AlpacaOrder) -> AlpacaOrder:
    """A copy of ``order`` (``pending_replace`` or ``replaced``) with its status as before the
    PATCH: what a REST read lagging the PATCH shows (the ``slow_replace`` fault's ``stale_old``,
    ``stale_replaced_read``)."""
    return replace(order, status="partially_filled" if order.filled_qty > 0 else "new", replaced_by=None,
                   replaced_at=None)  # fmt: skip
