"""The matching core's events as Alpaca ``trade_updates``: part of the simulated Alpaca venue.

Threading rule: as :class:`~ml4t_live.sim.alpaca.venue.AlpacaVenue` (the simulated Alpaca's loop
only). :class:`TradeUpdates` shares the venue's order dicts and moves each order's status, times
and fills as the core reports them (executions, cancels, expiries, rejections, activations); it
keeps the account's fill records (GET /v2/account/activities) and its signed position per symbol.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..matching import (
    OrderActivated,
    OrderCanceled,
    OrderExecuted,
    OrderExpired,
    OrderRejected,
)
from . import payloads
from .records import AlpacaOrder, FillRecord

Messages = list[dict[str, Any]]


class TradeUpdates:
    """Events -> trade-update messages for the venue's orders (``orders``: id -> order;
    ``by_exchange``: the core's order id -> our id; both the venue's own dicts)."""

    def __init__(self, orders: dict[str, AlpacaOrder], by_exchange: dict[int, str],
                 now: Callable[[], datetime]) -> None:  # fmt: skip
        self.orders = orders
        self.by_exchange = by_exchange
        self._now = now
        self.position: dict[str, float] = {}
        self.fills: list[FillRecord] = []

    def legs_of(self, order: AlpacaOrder) -> list[AlpacaOrder]:
        return [self.orders[i] for i in order.leg_ids]

    def translate(self, events: list[Any]) -> Messages:
        messages: Messages = []
        for event in events:
            order_id = self.by_exchange.get(getattr(getattr(event, "order", None), "order_id", -1))
            if order_id is None:
                continue
            order = self.orders[order_id]
            if isinstance(event, OrderExecuted):
                messages.append(self._executed(order, event.execution))
            elif isinstance(event, OrderCanceled):
                self.close(order, "canceled")
                messages.append(self.update("canceled", order))
            elif isinstance(event, OrderExpired):
                self.close(order, "expired")
                messages.append(self.update("expired", order))
            elif isinstance(event, OrderRejected):
                self.close(order, "rejected")
                messages.append(self.update("rejected", order))
            elif isinstance(event, OrderActivated) and _stays_held(order):
                order.updated_at = self._now()  # Alpaca keeps a bracket's stop-loss held
            elif isinstance(event, OrderActivated):
                order.status, order.updated_at = "new", self._now()
                messages.append(self.update("new", order))
        return messages

    def close(self, order: AlpacaOrder, status: str) -> None:
        now = self._now()
        order.status, order.updated_at = status, now
        if status == "canceled":
            order.canceled_at = now
        elif status == "expired":
            order.expired_at = now
        elif status == "rejected":
            order.failed_at = now

    def _executed(self, order: AlpacaOrder, execution: Any) -> dict[str, Any]:
        qty, price = float(execution.quantity), float(execution.price)
        prior = order.filled_qty
        order.filled_qty = float(execution.cumulative_quantity) - order.core_filled  # its own, as Alpaca's
        order.filled_avg_price = ((order.filled_avg_price or 0.0) * prior + price * qty) / order.filled_qty
        done = float(execution.remaining_quantity) <= 1e-9
        now = self._now()
        partly = order.status if order.status in ("pending_cancel", "pending_replace") else "partially_filled"
        order.status, order.updated_at = ("filled" if done else partly), now
        if done:
            order.filled_at = now
            if order.notional is not None:
                order.qty = order.filled_qty
        signed = qty if order.side == "buy" else -qty
        position = self.position.get(order.symbol, 0.0) + signed
        self.position[order.symbol] = position
        exec_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"sim-alpaca:{execution.exec_id}"))
        fill_ts = execution.timestamp or now
        self.fills.append(FillRecord(exec_id, order.id, order.client_order_id, order.symbol, order.side,
                                     qty, price, fill_ts, position, order.filled_qty,
                                     max(float(execution.remaining_quantity), 0.0)))
        return self.update("fill" if done else "partial_fill", order, execution_id=exec_id, price=price,
                            qty=qty, position_qty=position)

    def update(self, event: str, order: AlpacaOrder, **fill: Any) -> dict[str, Any]:
        legs = self.legs_of(order) or None
        return payloads.trade_update(event, order, self._now(), legs, **fill)


def _stays_held(order: AlpacaOrder) -> bool:
    """After a bracket's entry fills, Alpaca shows the take-profit ``new`` and keeps the stop-loss
    ``held`` (it works inside Alpaca, one-cancels-other with the take-profit, until triggered); the
    matching core works it all the same."""
    return order.order_class == "bracket" and order.parent_id is not None and order.type in ("stop", "stop_limit")
