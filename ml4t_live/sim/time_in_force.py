"""Time-in-force rules of the simulated venues: which open orders expire or lose their leftover.

Pure selection over the exchange's open orders; :class:`~.matching.SimExchange` applies them:

* ``opg`` - at ``open_bar``: a limit order the opening print does not reach expires before the
  broker runs; whatever the opening cross did not fill expires after it.
* ``ioc`` - at ``close_bar``: the rest of an order the broker could fill this bar is canceled.
* ``cls`` - at ``close_bar``: the market-on-close leftover expires.
* ``day`` - at ``end_session``: every open order expires (held children included).
"""

from __future__ import annotations

from collections.abc import Iterable

from ml4t.backtest import OrderSide, OrderStatus, OrderType

from .bars import SimBar
from .orders import SimOrderSpec
from .tracking import Track


def working(
    tracks: Iterable[Track],
    time_in_force: str,
    *,
    bar: int,
    next_bar_mode: bool,
    closing: bool = False,
) -> list[Track]:
    """Open orders with this time in force that the broker could have filled this bar."""
    return [
        t
        for t in tracks
        if t.order.spec.time_in_force == time_in_force
        and t.bt is not None
        and t.deferred is None
        and t.bt.status is OrderStatus.PENDING
        and had_chance_to_fill(t, bar=bar, next_bar_mode=next_bar_mode, closing=closing)
    ]


def had_chance_to_fill(
    track: Track, *, bar: int, next_bar_mode: bool, closing: bool = False
) -> bool:
    """Whether the broker has had a chance to fill this order during the current bar."""
    if not next_bar_mode:
        return True
    if closing and track.bt is not None and track.bt.order_type is OrderType.MOC:
        return True
    return track.bar < bar


def misses_opening_print(spec: SimOrderSpec, bars: dict[str, SimBar]) -> bool:
    """An "opg" limit order takes part in the opening print only: does this bar's open miss it?"""
    if spec.order_type is not OrderType.LIMIT or spec.asset not in bars:
        return False
    assert spec.limit_price is not None
    opening = bars[spec.asset].open
    return (opening - spec.limit_price) * (1 if spec.side is OrderSide.BUY else -1) > 0


def day_orders(tracks: Iterable[Track]) -> list[Track]:
    """Open "day" orders that expire at the end of the session (not while a split part executes)."""
    return [t for t in tracks if t.order.spec.time_in_force == "day" and t.deferred is None]
