"""What the pre-trade checks read, kept up to date incrementally: :class:`Exposure`.

Per asset: the strategy's position, its contract multiplier, the last price and the market
time that price is valid for, and the quantity of its working (not yet filled) orders on each
side. Across assets: the gross exposure ``sum(|quantity x price x multiplier|)``.

Why incremental rather than summed per order: a position or working-order update is O(1)
and a check reads one asset, so a check never loops over positions or orders, however many
the strategy holds. Prices come a bar at a time: :meth:`set_prices` takes a whole bar with two
dict updates (no Python loop), marks the gross sum stale, and the next read of :attr:`gross`
re-adds it once (O(positions), at most once per bar); between bars a position change moves the
sum incrementally. :meth:`rebuild` (connect, warm restart) and every ``RESUM_EVERY`` updates
re-add it from scratch, so rounding never drifts. A bad price in a bar (NaN, zero, negative)
makes that asset's price unknown until a good one comes: the priced limits then fail closed.

Working orders, fed by hand: :meth:`order_working` when an order leaves, :meth:`order_filled`
for each of its fills, :meth:`order_closed` when it is done (filled, cancelled, rejected,
expired). Or followed: :meth:`follow` takes the backtest ``Order`` object a broker returned and
:meth:`settle` (once per bar) reads its fills and its end from the object itself. The
exit legs of a bracket (``contingent=True``) are not counted on their side: they only ever
close what their entry opens, and counting both OCA legs would make every bracket look like a
short. Unknown order ids are ignored (an order the tracker never saw has nothing to undo).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml4t.backtest import OrderSide, OrderStatus

#: updates between two exact re-sums of the gross exposure
RESUM_EVERY = 10_000
_PENDING = OrderStatus.PENDING
_BUY = OrderSide.BUY


@dataclass(slots=True)
class AssetView:
    quantity: float = 0.0
    multiplier: float = 1.0
    price: float | None = None  # filled in by Exposure.view from its price dicts
    price_time: float | None = None  # POSIX seconds the price is valid for
    working_buy: float = 0.0
    working_sell: float = 0.0


@dataclass(slots=True)
class _Working:
    asset: str
    side: OrderSide
    remaining: float
    counted: bool


class Exposure:
    """Positions, prices and working orders by asset, plus the running gross exposure."""

    def __init__(self) -> None:
        self.assets: dict[str, AssetView] = {}
        self.prices: dict[str, float] = {}
        self.price_times: dict[str, Any] = {}
        self._bar: dict[str, float] | None = None  # the last bar's prices, as it came
        self._bar_as_of: Any = None
        #: reads a stored ``as_of`` as POSIX seconds (a caller may store bar timestamps as they come)
        self.to_seconds: Callable[[Any], float] = float
        self._orders: dict[str, _Working] = {}  # fed by hand
        #: followed: id -> (the Order, the unfilled quantity counted, its filled quantity at the
        #: last look, the asset's view when counted on its side, None for a bracket's exit leg;
        #: views are never replaced, so the one kept is the asset's)
        self._followed: dict[str, tuple[Any, float, float, AssetView | None]] = {}
        self._gross = 0.0
        self._stale = False  # prices moved in bulk: the gross sum is re-added at the next read
        self._updates = 0

    # ------------------------------------------------------------------ reads
    @property
    def gross(self) -> float:
        if self._stale:
            self._resum()
        return max(self._gross, 0.0)

    def price(self, asset: str) -> float | None:
        bar = self._bar
        price = bar.get(asset) if bar is not None else None
        if price is None:
            price = self.prices.get(asset)
        return price if price is not None and 0 < price < math.inf else None

    def price_time(self, asset: str) -> float | None:
        """The market time (POSIX seconds) the asset's price is valid for."""
        bar = self._bar
        as_of = self._bar_as_of if bar is not None and asset in bar else self.price_times.get(asset)
        return None if as_of is None else self.to_seconds(as_of)

    def view(self, asset: str) -> AssetView:
        """The asset's view (an empty one, not stored, for an asset never seen)."""
        view = self.assets.get(asset) or AssetView()
        view.price, view.price_time = self.price(asset), self.price_time(asset)
        return view

    def notional(self, asset: str) -> float:
        view = self.assets.get(asset)
        return 0.0 if view is None else abs(view.quantity * (self.price(asset) or 0.0) * view.multiplier)

    @property
    def working_orders(self) -> int:
        return len(self._orders) + len(self._followed)

    # ------------------------------------------------------------------ positions and prices
    def set_position(self, asset: str, quantity: float, multiplier: float = 1.0) -> None:
        if self._stale:  # the gross sum is re-added at its next read: no notional to move
            view = self.assets.get(asset) or self._asset(asset)
            view.quantity, view.multiplier = float(quantity), float(multiplier)
            return
        before = self.notional(asset)
        view = self._asset(asset)
        view.quantity, view.multiplier = float(quantity), float(multiplier)
        self._moved(before, self.notional(asset))

    def set_price(self, asset: str, price: float, as_of: float | None = None) -> None:
        """The last price of ``asset``, valid for market time ``as_of`` (POSIX seconds, e.g.
        the close time of the bar it comes from); non-finite or non-positive prices are
        ignored (the last good one stays, with its age)."""
        if not math.isfinite(price) or price <= 0:
            return
        self._keep_bar()
        before = self.notional(asset)
        self.prices[asset] = float(price)
        if as_of is not None:
            self.price_times[asset] = as_of
        self._moved(before, self.notional(asset))

    def set_prices(self, prices: dict[str, float], as_of: Any = None) -> None:
        """A bar's prices at once, valid for market time ``as_of``: the bar's dict is kept as
        it is (not copied, not changed); only the assets the previous bar had and this one
        lacks move into the kept prices, with that bar's time. The gross sum is re-added at its
        next read."""
        prev = self._bar
        if prev is not None and prev.keys() != prices.keys():  # (the lengths are compared first)
            for asset in prev.keys() - prices.keys():
                self.prices[asset] = prev[asset]
                self.price_times[asset] = self._bar_as_of
        self._bar, self._bar_as_of = prices, as_of
        self._stale = True

    def _keep_bar(self) -> None:
        """Fold the current bar into the kept prices (before a single price changes one)."""
        bar, self._bar = self._bar, None
        if bar:
            self.prices.update(bar)
            self.price_times.update(dict.fromkeys(bar, self._bar_as_of))

    def rebuild(self, positions: dict[str, tuple[float, float]], prices: dict[str, float]) -> None:
        """Start over from ``{asset: (quantity, multiplier)}`` and ``{asset: price}`` (price
        times are kept); working orders are kept."""
        self._keep_bar()
        for view in self.assets.values():
            view.quantity = 0.0
        for asset, price in prices.items():
            if math.isfinite(price) and price > 0:
                self.prices[asset] = float(price)
        for asset, (quantity, multiplier) in positions.items():
            view = self._asset(asset)
            view.quantity, view.multiplier = float(quantity), float(multiplier)
        self._resum()

    def _asset(self, asset: str) -> AssetView:
        view = self.assets.get(asset)
        if view is None:
            view = self.assets[asset] = AssetView()
        return view

    def _moved(self, before: float, after: float) -> None:
        if self._stale:
            return  # re-added at the next read
        self._gross += after - before
        self._updates += 1
        if self._updates >= RESUM_EVERY:
            self._resum()

    def _resum(self) -> None:
        price = self.price  # notional(a) for each held asset
        self._gross = math.fsum([abs(v.quantity * (price(a) or 0.0) * v.multiplier)
                                 for a, v in self.assets.items() if v.quantity])  # fmt: skip
        self._updates = 0
        self._stale = False

    # ------------------------------------------------------------------ working orders
    def order_working(
        self, order_id: str, asset: str, side: OrderSide, quantity: float, *, contingent: bool = False
    ) -> None:
        if order_id in self._orders:
            return
        quantity = float(quantity)
        self._orders[order_id] = _Working(asset, side, quantity, not contingent)
        if not contingent:  # _add_working, inlined (once per order)
            view = self.assets.get(asset) or self._asset(asset)
            if side is OrderSide.BUY:
                view.working_buy = max(view.working_buy + quantity, 0.0)
            else:
                view.working_sell = max(view.working_sell + quantity, 0.0)

    def follow(self, order: Any, contingent: bool) -> None:
        """A working backtest ``Order`` (``order_working`` for an object whose fills and end
        :meth:`settle` reads). Followed again (a change, a re-sync), it counts what it has left
        now, once, on the side it counted on (``contingent`` is taken the first time only)."""
        order_id, filled = order.order_id, order.filled_quantity
        left = max(order.quantity - filled, 0.0)
        followed = self._followed
        known = followed.get(order_id)
        if known is None:  # a new order (the usual case: once per order)
            if contingent:
                followed[order_id] = (order, left, filled, None)
                return
            view = self.assets.get(order.asset) or self._asset(order.asset)
            followed[order_id] = (order, left, filled, view)
        else:  # followed again: what it counted leaves its side first
            view = known[3]
            followed[order_id] = (order, left, filled, view)
            if view is None:
                return
            self._add_working(known[0].asset, known[0].side, -known[1])
            view = self.assets.get(order.asset) or self._asset(order.asset)
        if order.side is _BUY:
            view.working_buy += left
        else:
            view.working_sell += left

    def drop_followed(self, working: set[int]) -> None:
        """Forget every followed order whose ``Order`` object is not in ``working`` (object ids):
        rolled back by a strategy hook that raised (it never worked), or ended since the last
        look (the caller reads the positions its fills moved). What it had left leaves its side."""
        followed = self._followed
        for order_id, (order, left, _, view) in list(followed.items()):
            if id(order) in working:
                continue
            del followed[order_id]
            if view is not None and left:
                self._add_working(order.asset, order.side, -left)

    def settle(self) -> set[str]:
        """Once per bar: each followed order's fills and end since the last look, read from the
        order itself (what it has left counts; an order that ended is forgotten). Returns the
        assets where followed orders filled."""
        filled_assets: set[str] = set()
        followed = self._followed
        for order_id, (order, left, filled, view) in list(followed.items()):
            now_filled = order.filled_quantity
            if order.status is not _PENDING:  # ended (the usual case: filled at the bar's open)
                del followed[order_id]
                if now_filled != filled:
                    filled_assets.add(order.asset)
                if view is not None and left:  # what it had left leaves its side (w + 0.0 - left = w - left)
                    if order.side is _BUY:
                        view.working_buy = max(view.working_buy - left, 0.0)
                    else:
                        view.working_sell = max(view.working_sell - left, 0.0)
                continue
            now_left = order.quantity - now_filled
            if now_left == left and now_filled == filled:
                continue  # (the usual resting order: nothing happened)
            now_left = max(now_left, 0.0)
            followed[order_id] = (order, now_left, now_filled, view)
            if now_filled != filled:
                filled_assets.add(order.asset)
            if view is not None and now_left != left:
                if order.side is _BUY:
                    view.working_buy = max(view.working_buy + now_left - left, 0.0)
                else:
                    view.working_sell = max(view.working_sell + now_left - left, 0.0)
        return filled_assets

    def order_filled(self, order_id: str, quantity: float) -> None:
        order = self._orders.get(order_id)
        if order is None:
            return
        done = min(float(quantity), order.remaining)
        order.remaining -= done
        if order.counted:
            self._add_working(order.asset, order.side, -done)

    def order_ended(self, order_id: str, filled: float = 0.0) -> None:
        """``order_filled(order_id, filled)`` (when ``filled`` > 0) then ``order_closed``, in
        one step: the usual end of an order (its last fills were seen when it was done)."""
        order = self._orders.pop(order_id, None)
        if order is None or not order.counted:
            return
        done = min(float(filled), order.remaining) if filled > 0 else 0.0
        view = self.assets.get(order.asset) or self._asset(order.asset)
        if order.side is OrderSide.BUY:  # two steps, each clamped at zero, as the two calls do
            view.working_buy = max(max(view.working_buy - done, 0.0) - (order.remaining - done), 0.0)
        else:
            view.working_sell = max(max(view.working_sell - done, 0.0) - (order.remaining - done), 0.0)

    def order_closed(self, order_id: str) -> None:
        order = self._orders.pop(order_id, None)
        if order is not None and order.counted:
            self._add_working(order.asset, order.side, -order.remaining)

    def remaining(self, order_id: str, asset: str, side: OrderSide) -> float:
        """The quantity a working order still counts on its side (0 for a contingent leg, an
        unknown order, or one on another asset or side)."""
        followed = self._followed.get(order_id)
        if followed is not None:
            order, left, _, view = followed
            return left if view is not None and order.asset == asset and order.side is side else 0.0
        order = self._orders.get(order_id)
        if order is None or not order.counted or order.asset != asset or order.side is not side:
            return 0.0
        return order.remaining

    def _add_working(self, asset: str, side: OrderSide, quantity: float) -> None:
        view = self._asset(asset)
        if side is OrderSide.BUY:
            view.working_buy = max(view.working_buy + quantity, 0.0)
        else:
            view.working_sell = max(view.working_sell + quantity, 0.0)
