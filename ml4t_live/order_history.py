"""OrderHistory: every order of a venue run, in submission order, the finished ones packed.

A process that trades for a week keeps thousands of finished orders for ``broker.orders``,
``get_order(id)`` and the run's result. ml4t.backtest's ``Order`` has 36 fields, more than
CPython 3.12 shares instance-dict keys for (30), so every ``Order`` carries a dict of its own
(~1.6 KB). A finished order no longer changes (its final state is in the session files), so the
history keeps its values as a tuple (~0.3 KB, the values themselves shared) and builds the
``Order`` again when asked: ``get``, indexing and iteration answer exactly what was kept.

Identity: while anything holds a packed order (the strategy, the session writer's buffer), the
history hands out that same object (a weak reference), so ``get_order(id) is order`` holds as in
the backtest and a change made to it is seen; once nobody holds it, the packed values answer
(a change the strategy made to a finished order it no longer holds is not kept). The book
changes a finished order only through :meth:`live` (a fill after a confirmed cancel), which
unpacks it; :meth:`pack` packs it again when it is final again.

Engine thread only, like the book that owns it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from ml4t.backtest import Order, OrderSide, OrderStatus

# the instance-dict keys of an Order, in the order its __init__ sets them (what a pack stores)
_KEYS: tuple[str, ...] = tuple(vars(Order(asset="", side=OrderSide.BUY, quantity=0.0)))
_STATUS = _KEYS.index("status")
_ORDER_ID = _KEYS.index("order_id")


def _packable(order: Order) -> bool:
    """An order with exactly the dataclass's attributes (a strategy may have added its own:
    such an order stays as it is)."""
    keys = vars(order)
    return len(keys) == len(_KEYS) and tuple(keys) == _KEYS


def _unpack(values: tuple[Any, ...]) -> Order:
    order = Order.__new__(Order)
    vars(order).update(zip(_KEYS, values, strict=True))
    return order


class OrderHistory(Sequence[Order]):
    """A read-only sequence of ``Order`` (submission order), looked up by order id."""

    def __init__(self) -> None:
        self._items: list[Order | tuple[Any, ...]] = []
        self._index: dict[str, int] = {}  # order id -> position in _items
        self._held: weakref.WeakValueDictionary[str, Order] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ the book's side
    def append(self, order: Order) -> None:
        self._index[order.order_id] = len(self._items)
        self._items.append(order)

    def has(self, order_id: str) -> bool:
        return order_id in self._index

    def get(self, order_id: str) -> Order | None:
        """The order (the object still held anywhere, else built from its packed values)."""
        at = self._index.get(order_id)
        return None if at is None else self._resolve(at)

    def live(self, order_id: str) -> Order | None:
        """The order, unpacked: the book is about to change it."""
        at = self._index.get(order_id)
        if at is None:
            return None
        order = self._resolve(at)
        self._items[at] = order
        return order

    def pack(self, order: Order) -> None:
        """Keep a finished ``order`` as its values (the object lives on while anyone holds it)."""
        at = self._index.get(order.order_id)
        if at is None or self._items[at] is not order or not _packable(order):
            return
        self._items[at] = tuple(vars(order).values())
        self._held[order.order_id] = order

    def select(self, status: OrderStatus) -> list[Order]:
        """The orders whose status is ``status`` (the others are not built)."""
        return [
            self._resolve(at)
            for at, item in enumerate(self._items)
            if (item[_STATUS] if type(item) is tuple else item.status) is status
        ]

    def keep_only(self, keep: Callable[[Order], bool]) -> None:
        """Forget every order ``keep`` refuses (``retain``: they are in the session files)."""
        kept = [order for at in range(len(self._items)) if keep(order := self._resolve(at))]
        self._items = []
        self._index = {}
        for order in kept:
            self.append(order)
        held = self._held
        for order_id in [oid for oid in held if oid not in self._index]:
            held.pop(order_id, None)

    # ------------------------------------------------------------------ Sequence
    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, at: int) -> Order: ...
    @overload
    def __getitem__(self, at: slice) -> list[Order]: ...
    def __getitem__(self, at: int | slice) -> Order | list[Order]:
        if isinstance(at, slice):
            return [self._resolve(i) for i in range(*at.indices(len(self._items)))]
        if at < 0:
            at += len(self._items)
        if not 0 <= at < len(self._items):
            raise IndexError("order history index out of range")
        return self._resolve(at)

    def __iter__(self) -> Iterator[Order]:
        for at in range(len(self._items)):
            yield self._resolve(at)

    def __repr__(self) -> str:
        return f"OrderHistory({len(self._items)} orders)"

    # ------------------------------------------------------------------ internals
    def _resolve(self, at: int) -> Order:
        item = self._items[at]
        if type(item) is not tuple:
            return item
        order_id = item[_ORDER_ID]
        order = self._held.get(order_id)
        if order is None:
            order = self._held[order_id] = _unpack(item)
        return order
