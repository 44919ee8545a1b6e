"""Execution reports of the simulated exchange, and the split-fill fault.

:class:`Executions` numbers every execution, applies it to its :class:`~.orders.SimOrder` and keeps
the log venues replay. A scripted split (``SimExchange.split_next_fill``) reports one backtest fill
as several executions: all but the last at once, the last held back (a :class:`~.tracking.HeldPart`)
until the next bar opens. Total quantity, price and commission equal the unsplit fill.
"""

from __future__ import annotations

import math
from datetime import datetime

from ml4t.backtest.types import Fill

from .orders import OrderExecuted, SimEvent, SimExecution, SimOrder
from .tracking import HeldPart, Track, fill_complete, snapshot


class Executions:
    """Every execution the exchange reported, and the split-fill parts still held back."""

    def __init__(self) -> None:
        self.reports: list[SimExecution] = []
        self.held: dict[int, Track] = {}  # order id -> open order with a held-back part
        self._seq = 0

    def report_fill(self, track: Track, fill: Fill, final: bool) -> list[SimEvent]:
        """Report a backtest fill, split into parts if the order was scripted to split."""
        multiplier = fill.multiplier or 1.0
        parts = split_quantity(fill.quantity, track.split_parts)
        track.split_parts = 0
        if len(parts) > 1:
            *now_parts, last = parts
            share = [fill.commission * q / fill.quantity for q in now_parts]
            rest = fill.commission - sum(share)
            track.deferred = HeldPart(last, fill.price, rest, multiplier)
            self.held[track.order.order_id] = track
            return [
                self.record(track.order, q, fill.price, c, fill.timestamp, final=False)
                for q, c in zip(now_parts, share, strict=True)
            ]
        return [
            self.record(
                track.order, fill.quantity, fill.price, fill.commission, fill.timestamp, final=final
            )
        ]

    def release_held(self, now: datetime) -> list[SimEvent]:
        """Execute every held-back part (at the start of the following bar)."""
        events: list[SimEvent] = []
        for order_id, track in list(self.held.items()):
            d = track.deferred
            assert d is not None
            del self.held[order_id]
            track.deferred = None
            final = fill_complete(track.bt)
            events.append(
                self.record(track.order, d.quantity, d.price, d.commission, now, final=final)
            )
        return events

    def record(
        self,
        order: SimOrder,
        qty: float,
        price: float,
        commission: float,
        ts: datetime,
        *,
        final: bool,
    ) -> OrderExecuted:
        """Apply one execution to ``order``, log it and return its event."""
        previous = order.filled_quantity
        order.filled_quantity = previous + qty
        avg = order.avg_fill_price or 0.0
        order.avg_fill_price = (avg * previous + price * qty) / order.filled_quantity
        order.updated_at = ts
        order.status = "filled" if final else "partially_filled"
        self._seq += 1
        execution = SimExecution(
            exec_id=f"{self._seq:08d}.{order.order_id}",
            order_id=order.order_id,
            client_order_id=order.spec.client_order_id,
            asset=order.spec.asset,
            side=order.spec.side,
            quantity=qty,
            price=price,
            commission=commission,
            timestamp=ts,
            cumulative_quantity=order.filled_quantity,
            # 0 once filled, also when INTEGER shares truncated the quantity (10.7 fills 10)
            remaining_quantity=0.0 if final else max(0.0, order.spec.quantity - order.filled_quantity),
        )
        self.reports.append(execution)
        return OrderExecuted(snapshot(order), execution)


def split_quantity(quantity: float, parts: int) -> list[float]:
    """Split a fill into ``parts`` pieces (whole units when the quantity is whole)."""
    if parts < 2:
        return [quantity]
    if float(quantity).is_integer():
        parts = min(parts, int(quantity))
        if parts < 2:
            return [quantity]
        base = math.floor(quantity / parts)
        return [float(base)] * (parts - 1) + [quantity - base * (parts - 1)]
    return [quantity / parts] * (parts - 1) + [quantity - quantity / parts * (parts - 1)]
