"""The exchange's book-keeping record for one open order, shared by the matching helpers.

Internal to :mod:`ml4t_live.sim.matching` and its helpers (:mod:`.executions`,
:mod:`.time_in_force`, :mod:`.account_views`); venues see only :class:`~.orders.SimOrder`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ml4t.backtest import OrderStatus
from ml4t.backtest.types import Order as BtOrder

from .orders import SimOrder


@dataclass(slots=True)
class HeldPart:
    """The held-back last part of a split fill, executed on the following bar."""

    quantity: float
    price: float
    commission: float
    multiplier: float


@dataclass(slots=True)
class Track:
    """Book-keeping for one open order."""

    order: SimOrder
    bt: BtOrder | None  # None while held (not yet handed to the backtest broker)
    bar: int  # exchange bar index when it went live in the broker
    split_parts: int = 0
    deferred: HeldPart | None = None


def fill_complete(bt: BtOrder | None) -> bool:
    return bt is not None and bt.status is OrderStatus.FILLED


def snapshot(order: SimOrder) -> SimOrder:
    """A copy of the order as it is now (what an event carries)."""
    return replace(order)
