"""What the simulated gateway keeps per order: the placeOrder as received, the IB view of the
order and its armed faults, and the routing protocol the venue sends through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from . import encoders as enc
from .decoders import PlaceOrder
from .faults import OrderFaults


class VenueSink(Protocol):
    def send(self, client_id: int, frames: list[bytes], delay: float = 0.0) -> None: ...

    def positions_changed(self) -> None: ...

    def later(self, delay: float, fn: Callable[..., None], *args: object) -> None: ...


@dataclass(slots=True)
class OrderReceived:
    """One placeOrder as it arrived (a read-only view for tests and benchmarks)."""

    client_id: int
    order_id: int
    order_ref: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    parent_id: int
    oca_group: str
    transmit: bool
    modify: bool
    bar: datetime | None  # the virtual bar current when it arrived
    perf_ns: int
    request: PlaceOrder  # everything decoded from the wire


@dataclass(slots=True)
class IBOrder:
    view: enc.OrderView
    sim_id: int | None = None
    done: bool = False
    faults: OrderFaults = field(default_factory=OrderFaults)
    held_acks: list[bytes] = field(default_factory=list)
    exec_seen: bool = False
    cancel_pending: bool = False  # a late cancel IB has not confirmed yet (listed PendingCancel)
    late_cancel: list[object] = field(default_factory=list)  # that cancel's exchange events, confirmed later
