"""The steps of ``ml4t.backtest.Engine._run_once``, applied to the exchange's Broker.

The only module that calls the Broker's private methods, so a change in ml4t.backtest shows up
here alone. See :mod:`.matching` for the order in which the exchange runs them.
"""

from __future__ import annotations

from datetime import datetime

from ml4t.backtest import Broker, OrderType

from .bars import SimBar


def give_bar(broker: Broker, timestamp: datetime, bars: dict[str, SimBar]) -> None:
    """Move the broker's clock and prices to bar ``timestamp``."""
    closes = {a: b.close for a, b in bars.items()}
    broker._update_time(
        timestamp,
        dict(closes),
        {a: b.open for a, b in bars.items()},
        {a: b.high for a, b in bars.items()},
        {a: b.low for a, b in bars.items()},
        closes,
        {a: b.volume for a, b in bars.items()},
        {},
        {},
        {},
        {},
        {},
        {},
        {a: {} for a in bars},
    )


def fill_at_open(broker: Broker, *, next_bar_mode: bool) -> None:
    """NEXT_BAR: orders submitted during the previous bar, at this bar's open / limit / stop
    levels. SAME_BAR: leftovers from earlier bars."""
    if next_bar_mode:
        broker._process_orders(use_open=True)
    else:
        broker._process_orders()


def fill_at_close(broker: Broker, *, next_bar_mode: bool) -> None:
    """NEXT_BAR: market-on-close orders (those of this bar included). SAME_BAR: everything."""
    if next_bar_mode:
        broker._process_orders(order_types={OrderType.MOC}, include_orders_this_bar=True)
    else:
        broker._process_orders()


def update_water_marks(broker: Broker) -> None:
    """Trailing stops' high / low water marks, after the bar's fills."""
    broker._update_water_marks()


def cancel(broker: Broker, bt_order_id: str, timestamp: datetime | None, reason: str) -> None:
    """Cancel an order inside the broker (it reports it as CANCELLED with ``reason``)."""
    broker._cancel_order_at(bt_order_id, timestamp=timestamp, reason=reason)
