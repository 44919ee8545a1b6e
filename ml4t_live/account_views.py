"""The read-only part of a venue broker's strategy surface: positions, orders, fills, account.

Mixed into :class:`~ml4t_live.venue_broker.VenueBroker`; every answer comes from its local
:class:`~ml4t_live.book.Book` on the engine thread (no venue round trip), with the same return
conventions as ml4t.backtest's ``Broker`` (``get_position`` is None when flat, ``positions`` is
the live dict, ``get_pending_orders`` a list of the live orders). One difference: ``orders`` is
a read-only sequence, not a list (every order in submission order; the finished ones are kept
packed and built again when read: :mod:`ml4t_live.order_history`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml4t.backtest import Fill, Order, Position

from .book import Book


class AccountViews:
    """Queries a strategy may make; needs ``self.book``."""

    book: Book

    def get_position(self, asset: str) -> Position | None:
        return self.book.positions.get(asset)

    def get_positions(self) -> dict[str, Position]:
        return self.book.positions

    @property
    def positions(self) -> dict[str, Position]:
        return self.book.positions

    def get_pending_orders(self, asset: str | None = None) -> list[Order]:
        return self.book.pending(asset)

    @property
    def pending_orders(self) -> list[Order]:
        return self.book.pending()

    @property
    def orders(self) -> Sequence[Order]:
        return self.book.orders

    @property
    def fills(self) -> list[Fill]:
        return self.book.fills

    def get_order(self, order_id: str) -> Order | None:
        return self.book.get(order_id)

    def get_fills(self, order_id: str | None = None) -> list[Fill]:
        return [f for f in self.book.fills if order_id is None or f.order_id == order_id]

    def get_rejected_orders(self, asset: str | None = None) -> list[Order]:
        return [o for o in self.book.rejected() if asset is None or o.asset == asset]

    def get_account_value(self) -> float:
        return self.book.equity()

    def equity(self) -> float:
        return self.book.equity()

    def get_cash(self) -> float:
        return self.book.cash

    @property
    def cash(self) -> float:
        return self.book.cash

    def get_multiplier(self, asset: str) -> float:
        return 1.0

    def get_last_price(self, asset: str) -> float | None:
        return self.book.last_prices.get(asset)

    def get_price_for_source(self, source: Any, asset: str, **_: Any) -> float | None:
        return self.book.last_prices.get(asset)
