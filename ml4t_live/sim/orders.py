"""The order vocabulary of the simulated venues: specs, venue-side order state, executions,
the events the exchange reports, its errors, and the validation every venue applies.

Pure data, no behaviour beyond validation; :mod:`ml4t_live.sim.matching` does the matching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from ml4t.backtest import OrderSide, OrderType

TIME_IN_FORCE = frozenset({"gtc", "day", "ioc", "opg", "cls"})
OPEN_STATUSES = frozenset({"new", "partially_filled", "held"})


@dataclass(frozen=True, slots=True)
class SimOrderSpec:
    """What a client asked for. ``quantity`` is the total, always positive; ``side`` says buy/sell.

    ``time_in_force``: gtc | day (expires at ``end_session``) | ioc (the rest is canceled after the
    first bar that could fill it) | opg (only the opening fill of the next bar) | cls (market on
    close). ``parent_id``: the order is held until that order fills completely (bracket children).
    """

    asset: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None
    time_in_force: str = "gtc"
    client_order_id: str = ""
    oca_group: str | None = None
    parent_id: int | None = None


@dataclass(slots=True)
class SimOrder:
    """An order on the simulated venue; mutated by the exchange as it fills.

    ``status``: new | partially_filled | filled | canceled | rejected | expired | held.
    """

    order_id: int
    spec: SimOrderSpec
    status: str
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    reject_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def remaining(self) -> float:
        """Quantity still working (0 once the order is finished)."""
        if self.status not in OPEN_STATUSES:
            return 0.0
        return max(0.0, self.spec.quantity - self.filled_quantity)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class SimExecution:
    """One execution (a fill or part of one) as venues report it."""

    exec_id: str
    order_id: int
    client_order_id: str
    asset: str
    side: OrderSide
    quantity: float
    price: float
    commission: float
    timestamp: datetime
    cumulative_quantity: float
    remaining_quantity: float


@dataclass(frozen=True, slots=True)
class OrderExecuted:
    """An execution; ``order.status`` is "filled" on the last one, else "partially_filled"."""

    order: SimOrder
    execution: SimExecution


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """Canceled: reason "user" (or the caller's), "oca", "ioc", "parent canceled", "venue"."""

    order: SimOrder
    reason: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order: SimOrder
    reason: str


@dataclass(frozen=True, slots=True)
class OrderExpired:
    """Time in force ran out ("day" at end_session, "opg"/"cls" leftovers)."""

    order: SimOrder


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    order: SimOrder


@dataclass(frozen=True, slots=True)
class OrderActivated:
    """A held child became live because its parent filled completely."""

    order: SimOrder


type SimEvent = (
    OrderExecuted | OrderCanceled | OrderRejected | OrderExpired | OrderReplaced | OrderActivated
)


class UnknownOrder(KeyError):
    """No order with this id exists on the exchange."""


class OrderNotCancelable(ValueError):
    """The order is finished (or its last part is already executing); the message says which."""


class RemainderExecuting(OrderNotCancelable):
    """The order's split fill (the ``partial_fill`` fault) holds its remainder, already executing:
    it fills when its bar opens and cannot be taken back."""


class OrderNotReplaceable(ValueError):
    """The order is finished, or the requested change is invalid; the message says why."""


def spec_problem(spec: SimOrderSpec) -> str | None:
    """Why a venue would refuse this order, or None when it is acceptable."""
    if not isinstance(spec.asset, str) or not spec.asset:
        return "asset must be a non-empty symbol"
    if not _positive(spec.quantity):
        return f"quantity must be a finite positive number, got {spec.quantity!r}"
    if spec.time_in_force not in TIME_IN_FORCE:
        return f"time in force {spec.time_in_force!r} is not one of {sorted(TIME_IN_FORCE)}"
    kind = spec.order_type
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not _positive(spec.limit_price):
        return f"{kind.value} order needs a positive limit price"
    if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and not _positive(spec.stop_price):
        return f"{kind.value} order needs a positive stop price"
    if kind is OrderType.TRAILING_STOP and not _positive(spec.trail_amount):
        return "trailing stop order needs a positive trail amount"
    if spec.time_in_force == "cls" and kind not in (OrderType.MARKET, OrderType.MOC):
        return f"time in force cls supports market orders only, not {kind.value}"
    if spec.time_in_force == "opg" and kind not in (OrderType.MARKET, OrderType.LIMIT):
        return f"time in force opg supports market and limit orders only, not {kind.value}"
    return None


def _positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
