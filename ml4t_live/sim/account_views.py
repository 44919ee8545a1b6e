"""Read-only views of a simulated account, mixed into :class:`~.matching.SimExchange`.

What a client sees is the backtest broker's state minus the held-back last parts of split fills
(the broker already booked them; the client has not been told yet, see :mod:`.executions`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ml4t.backtest import Broker, OrderSide

from .executions import Executions
from .orders import SimExecution, SimOrder
from .tracking import HeldPart, Track


class AccountViews:
    """The exchange's read-only properties; every attribute below is owned by ``SimExchange``."""

    orders: dict[int, SimOrder]
    _broker: Broker
    _time: datetime | None
    _bar: int
    _reports: Executions
    _open: dict[int, Track]
    _by_client_id: dict[str, int]

    @property
    def broker(self) -> Broker:
        """The backtest broker underneath (read it; mutating it bypasses the event mapping)."""
        return self._broker

    def trailing_stop_price(self, order_id: int) -> float | None:
        """The stop level the backtest broker holds for an open trailing stop (None before it first
        evaluated the order on a bar, or when the order is not an open, live trailing stop)."""
        track = self._open.get(order_id)
        return track.bt.stop_price if track is not None and track.bt is not None else None

    @property
    def now(self) -> datetime | None:
        """The timestamp of the current bar (None before the first ``open_bar``)."""
        return self._time

    @property
    def bar_index(self) -> int:
        """How many bars have been opened."""
        return self._bar

    @property
    def executions(self) -> list[SimExecution]:
        """Every execution reported so far, in order."""
        return self._reports.reports

    @property
    def cash(self) -> float:
        adjust = 0.0
        for track, d in self._held_parts():
            adjust += _signed(track.order.spec.side, d.quantity) * d.price * d.multiplier
            adjust += d.commission
        return self._broker.cash + adjust

    @property
    def positions(self) -> dict[str, tuple[float, float]]:
        """``{asset: (signed quantity, average cost)}`` for every non-flat asset."""
        out = {a: (p.quantity, p.entry_price) for a, p in self._broker.positions.items()}
        for track, d in self._held_parts():
            asset = track.order.spec.asset
            qty, cost = out.get(asset, (0.0, d.price))
            qty -= _signed(track.order.spec.side, d.quantity)
            if abs(qty) <= 1e-9:
                out.pop(asset, None)
            else:
                out[asset] = (qty, cost)
        return out

    @property
    def equity(self) -> float:
        """Cash plus positions marked at the last price (the backtest's ``get_account_value``)."""
        value = self._broker.get_account_value()
        for track, d in self._held_parts():
            mark = self.last_price(track.order.spec.asset) or d.price
            value += _signed(track.order.spec.side, d.quantity) * d.multiplier * (d.price - mark)
            value += d.commission
        return value

    @property
    def buying_power(self) -> float:
        return float(self._broker.get_buying_power())

    def last_price(self, asset: str) -> float | None:
        return self._broker.get_last_price(asset)

    def open_orders(self) -> list[SimOrder]:
        """Open orders (new, partially filled or held) in submission order."""
        return [t.order for t in self._open.values()]

    def order_by_client_id(self, client_order_id: str) -> SimOrder | None:
        """The latest order submitted with this client order id, or None."""
        order_id = self._by_client_id.get(client_order_id)
        return self.orders.get(order_id) if order_id is not None else None

    def _held_parts(self) -> Iterator[tuple[Track, HeldPart]]:
        for track in self._reports.held.values():
            assert track.deferred is not None
            yield track, track.deferred


def _signed(side: OrderSide, quantity: float) -> float:
    return quantity if side is OrderSide.BUY else -quantity
