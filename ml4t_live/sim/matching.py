"""The matching engine shared by the simulated venues: ml4t.backtest's own Broker, bar by bar.

Threading rule: :class:`SimExchange` is NOT thread-safe. It is created and used from one venue
loop (the simulated IB Gateway's or the simulated Alpaca's), never from two threads.

Fills are identical to ml4t.backtest by construction: the exchange owns a
``Broker.from_config(config)`` and drives it exactly as ``Engine._run_once`` does::

    open_bar(t, bars)   _update_time(t, ...) -> NEXT_BAR: _process_orders(use_open=True)
                                              SAME_BAR: _process_orders()       (leftovers)
    ... the venue publishes bar t; clients submit / replace / cancel (= on_data) ...
    close_bar()         NEXT_BAR: _process_orders({MOC}, include_orders_this_bar=True)
                        SAME_BAR: _process_orders()
                        then _update_water_marks()
    end_session()       expire time-in-force "day" orders

Everything a venue needs on top of the backtest (time in force, OCA groups, held bracket children,
scripted rejections and split fills, execution reports) is added here; no fill rule is re-implemented.
State changes are found by reading only new ``broker.fills`` and the still-open orders.

Helpers: :mod:`.backtest_steps` (the Broker calls above), :mod:`.time_in_force` (which orders
expire when), :mod:`.order_endings` (how an order ends, and the OCA siblings and held bracket
children that end with it), :mod:`.executions` (execution reports, split fills),
:mod:`.account_views` (the read-only account, a mixin), :mod:`.tracking` (the record kept per open
order). The data types live in :mod:`.orders` and are re-exported here.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from typing import Any

from loguru import logger
from ml4t.backtest import BacktestConfig, Broker, OrderSide, OrderStatus, OrderType
from ml4t.backtest.models import CommissionModel
from ml4t.backtest.types import ExecutionMode

from . import backtest_steps
from .account_views import AccountViews
from .bars import SimBar
from .executions import Executions
from .order_endings import OrderEndings
from .orders import (  # re-exported: the venues import them from here
    OPEN_STATUSES,
    TIME_IN_FORCE,
    OrderActivated,
    OrderCanceled,
    OrderExecuted,
    OrderExpired,
    OrderNotCancelable,
    OrderNotReplaceable,
    OrderRejected,
    OrderReplaced,
    RemainderExecuting,
    SimEvent,
    SimExecution,
    SimOrder,
    SimOrderSpec,
    UnknownOrder,
    spec_problem,
)
from .time_in_force import day_orders, misses_opening_print, working
from .tracking import Track, fill_complete, snapshot

__all__ = [
    "OPEN_STATUSES",
    "TIME_IN_FORCE",
    "OrderActivated",
    "OrderCanceled",
    "OrderExecuted",
    "OrderExpired",
    "OrderNotCancelable",
    "OrderNotReplaceable",
    "OrderRejected",
    "OrderReplaced",
    "RemainderExecuting",
    "SimEvent",
    "SimExchange",
    "SimExecution",
    "SimOrder",
    "SimOrderSpec",
    "UnknownOrder",
    "spec_problem",
]

_log = logger.bind(component="sim.matching")


class SimExchange(AccountViews):
    """One account on a simulated venue, filling like ml4t.backtest (see the module docstring).

    Not thread-safe: use it from one venue loop only. Every mutating call returns the events it
    caused (snapshots of the order at that moment; the live object is ``orders[order_id]``).
    """

    def __init__(
        self,
        config: BacktestConfig | None = None,
        *,
        known_assets: set[str] | frozenset[str] | None = None,
        commission_model: CommissionModel | None = None,
        execution_limits: Any = None,
    ) -> None:
        self.config = copy.deepcopy(config) if config is not None else BacktestConfig(calendar=None)
        # an explicit model (a venue's fee schedule) overrides the config's commission settings;
        # execution limits (not in the config) fill an order in parts over bars, as the backtest's
        self._broker = Broker.from_config(self.config, commission_model=commission_model,
                                          execution_limits=execution_limits)
        self._next_bar_mode = self.config.execution_mode is ExecutionMode.NEXT_BAR
        self._known_assets = frozenset(known_assets) if known_assets is not None else None
        self.orders: dict[int, SimOrder] = {}
        self._reports = Executions()
        self._open: dict[int, Track] = {}
        self._by_bt_id: dict[str, int] = {}
        self._by_client_id: dict[str, int] = {}
        self._endings = OrderEndings(self._broker, self._open, self._by_bt_id, lambda: self._time)
        self._fill_cursor = 0
        self._next_id = 1
        self._bar = 0
        self._time: datetime | None = None
        self._reject_next: str | None = None
        self._split_next = 0

    # ------------------------------------------------------------------ faults
    def reject_next(self, reason: str) -> None:
        """Reject the next submitted order with ``reason`` (a scripted venue fault)."""
        self._reject_next = reason

    def split_next_fill(self, parts: int = 2) -> None:
        """Report the next submitted order's fill as ``parts`` executions.

        All but the last are reported when the backtest fills the order; the last is executed on
        the following bar, so a client sees the order open with a partial ``filled_quantity`` in
        between. Total quantity, price and commission equal the unsplit fill.
        """
        if parts < 2:
            raise ValueError(f"split_next_fill needs parts >= 2, got {parts}")
        self._split_next = parts

    # ------------------------------------------------------------------ orders
    def submit(
        self, spec: SimOrderSpec, *, order_id: int | None = None
    ) -> tuple[SimOrder, list[SimEvent]]:
        """Accept (or reject) a new order. Business rejections never raise.

        ``order_id`` lets a venue whose clients choose ids (IB) use them; it must be new.
        Raises ``ValueError``/``TypeError`` only for programmer errors.
        """
        if not isinstance(spec, SimOrderSpec):
            raise TypeError(f"submit() needs a SimOrderSpec, got {type(spec).__name__}")
        if not isinstance(spec.side, OrderSide) or not isinstance(spec.order_type, OrderType):
            raise TypeError("SimOrderSpec.side / order_type must be ml4t.backtest enums")
        if order_id is None:
            order_id = self._next_id
        elif order_id in self.orders:
            raise ValueError(f"order id {order_id} is already used")
        self._next_id = max(self._next_id, order_id + 1)
        order = SimOrder(order_id, spec, "new", created_at=self._time, updated_at=self._time)
        self.orders[order_id] = order
        if spec.client_order_id:
            self._by_client_id[spec.client_order_id] = order_id
        problem = self._reject_next or spec_problem(spec)
        self._reject_next = None
        if problem is None and self._known_assets is not None and spec.asset not in self._known_assets:
            problem = f"unknown asset {spec.asset!r}"
        parent = None
        if problem is None and spec.parent_id is not None:
            parent = self.orders.get(spec.parent_id)
            if parent is None or parent.status in ("canceled", "rejected", "expired"):
                state = "unknown" if parent is None else parent.status
                problem = f"parent order {spec.parent_id} is {state}"
        if problem is not None:
            return order, [self._endings.finish(order, "rejected", problem)]
        track = Track(order, None, self._bar)
        if self._split_next:
            track.split_parts, self._split_next = self._split_next, 0
        self._open[order_id] = track
        if spec.oca_group:
            self._endings.join_oca(spec.oca_group, order_id)
        if parent is not None and parent.status != "filled":
            order.status = "held"
            self._endings.hold(order_id, parent.order_id)
            return order, []
        return order, self._go_live(track)

    def replace(
        self,
        order_id: int,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_amount: float | None = None,
    ) -> tuple[SimOrder, list[SimEvent]]:
        """Change an open order; ``quantity`` is the new total (filled part included).

        Raises :class:`UnknownOrder` or :class:`OrderNotReplaceable` (a ``ValueError``) with the
        reason; the order is unchanged then.
        """
        track = self._open_track(order_id, OrderNotReplaceable, "replaced")
        order = track.order
        changes = {
            k: v
            for k, v in (
                ("quantity", quantity),
                ("limit_price", limit_price),
                ("stop_price", stop_price),
                ("trail_amount", trail_amount),
            )
            if v is not None
        }
        new_spec = replace(order.spec, **changes)
        problem = spec_problem(new_spec)
        if problem is None and new_spec.quantity <= order.filled_quantity:
            problem = f"new quantity {new_spec.quantity} is not above the filled {order.filled_quantity}"
        if problem is None and track.deferred is not None:
            problem = "its remaining quantity is already executing"
        if problem is not None:
            raise OrderNotReplaceable(f"order {order_id} cannot be replaced: {problem}")
        if track.bt is not None:
            bt_changes = dict(changes)
            if "quantity" in bt_changes:
                bt_changes["quantity"] = new_spec.quantity - order.filled_quantity
            try:
                self._broker.update_order(track.bt.order_id, **bt_changes)
            except ValueError as exc:
                raise OrderNotReplaceable(f"order {order_id} cannot be replaced: {exc}") from exc
        order.spec = new_spec
        order.updated_at = self._time
        return order, [OrderReplaced(snapshot(order))]

    def cancel(self, order_id: int, reason: str = "user") -> tuple[SimOrder, list[SimEvent]]:
        """Cancel an open order (and the held children of a parent).

        Raises :class:`UnknownOrder`, or :class:`OrderNotCancelable` (a ``ValueError``) for a
        finished order, its subclass :class:`RemainderExecuting` for one whose split fill is
        already executing.
        """
        track = self._open_track(order_id, OrderNotCancelable, "canceled")
        if track.deferred is not None:
            raise RemainderExecuting(
                f"order {order_id} is partially_filled and its remaining quantity is already "
                "executing; it cannot be canceled"
            )
        return track.order, self._endings.cancel(track, reason)

    # ------------------------------------------------------------------ bars
    def open_bar(self, timestamp: datetime, bars: dict[str, SimBar]) -> list[SimEvent]:
        """Start bar ``timestamp``: the backtest's start-of-bar steps (see the module docstring).

        NEXT_BAR: orders submitted while the previous bar was current fill here, at this bar's
        open / limit / stop levels. SAME_BAR: leftovers from earlier bars are processed.
        """
        if self._time is not None and timestamp <= self._time:
            raise ValueError(f"open_bar({timestamp}) does not advance past {self._time}")
        backtest_steps.give_bar(self._broker, timestamp, bars)
        self._time = timestamp
        self._bar += 1
        events = self._reports.release_held(timestamp)
        missed = [t for t in self._working("opg") if misses_opening_print(t.order.spec, bars)]
        events.extend(self._expire_each(missed))
        backtest_steps.fill_at_open(self._broker, next_bar_mode=self._next_bar_mode)
        events.extend(self._collect())
        # time_in_force "opg": only the opening cross; the rest expires.
        events.extend(self._expire_each(self._working("opg")))
        return events

    def close_bar(self) -> list[SimEvent]:
        """End the current bar: MOC / this-bar fills, water marks, IOC and "cls" leftovers."""
        if self._time is None:
            raise ValueError("close_bar() before any open_bar()")
        backtest_steps.fill_at_close(self._broker, next_bar_mode=self._next_bar_mode)
        events = self._collect()
        backtest_steps.update_water_marks(self._broker)
        for track in self._working("ioc", closing=True):
            if track.order.order_id in self._open:
                events.extend(self._endings.cancel(track, "ioc"))
        events.extend(self._expire_each(self._working("cls", closing=True)))
        return events

    def end_session(self) -> list[SimEvent]:
        """Expire every open time-in-force "day" order (held children included)."""
        return self._expire_each(day_orders(self._open.values()))

    # ------------------------------------------------------------------ internals
    def _working(self, time_in_force: str, *, closing: bool = False) -> list[Track]:
        """Open orders with this time in force that the broker could have filled this bar."""
        return working(
            self._open.values(),
            time_in_force,
            bar=self._bar,
            next_bar_mode=self._next_bar_mode,
            closing=closing,
        )

    def _expire_each(self, tracks: list[Track]) -> list[SimEvent]:
        """Expire each of these orders that is still open when its turn comes."""
        events: list[SimEvent] = []
        for track in tracks:
            if track.order.order_id in self._open:
                events.extend(self._endings.expire(track))
        return events

    def _open_track(self, order_id: int, error: type[ValueError], verb: str) -> Track:
        order = self.orders.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        track = self._open.get(order_id)
        if track is None:
            raise error(f"order {order_id} is {order.status}; it cannot be {verb}")
        return track

    def _go_live(self, track: Track) -> list[SimEvent]:
        spec = track.order.spec
        order_type = OrderType.MOC if spec.time_in_force == "cls" else spec.order_type
        try:
            bt = self._broker.submit_order(
                spec.asset,
                spec.quantity - track.order.filled_quantity,
                spec.side,
                order_type,
                spec.limit_price,
                spec.stop_price,
                spec.trail_amount,
            )
        except ValueError as exc:
            return [self._endings.finish(track.order, "rejected", str(exc))]
        if bt is None:
            return [self._endings.finish(track.order, "rejected", "quantity rounds to zero")]
        if spec.oca_group:
            bt.parent_id = f"oca:{spec.oca_group}"  # the backtest cancels siblings on a full fill
        track.bt = bt
        track.bar = self._bar
        self._by_bt_id[bt.order_id] = track.order.order_id
        return self._collect()

    def _collect(self) -> list[SimEvent]:
        """Translate new backtest fills and status changes of open orders into events."""
        events: list[SimEvent] = []
        fills = self._broker.fills
        new = fills[self._fill_cursor :]
        self._fill_cursor = len(fills)
        last_fill = {fill.order_id: i for i, fill in enumerate(new)}
        for i, fill in enumerate(new):
            order_id = self._by_bt_id.get(fill.order_id)
            track = self._open.get(order_id) if order_id is not None else None
            if track is None:
                _log.warning("fill for an order the exchange does not track: {}", fill.order_id)
                continue
            final = last_fill[fill.order_id] == i and fill_complete(track.bt)
            events.extend(self._reports.report_fill(track, fill, final))
        for track in list(self._open.values()):
            bt = track.bt
            if bt is None or track.deferred is not None or track.order.order_id not in self._open:
                continue
            if bt.status is OrderStatus.FILLED:
                self._endings.close(track.order, "filled")
                events.extend(self._after_fill(track))
            elif bt.status is OrderStatus.REJECTED:
                reason = bt.rejection_reason or "rejected by the venue"
                events.append(self._endings.finish(track.order, "rejected", reason))
                events.extend(self._endings.cancel_held_children(track.order.order_id))
            elif bt.status is OrderStatus.CANCELLED:
                reason = bt.cancellation_reason or ("oca" if track.order.spec.oca_group else "venue")
                events.append(self._endings.finish(track.order, "canceled", reason))
                events.extend(self._endings.cancel_held_children(track.order.order_id))
        return events

    def _after_fill(self, track: Track) -> list[SimEvent]:
        """A complete fill: cancel OCA siblings still open, activate held children."""
        events = self._endings.cancel_oca_siblings(track.order)
        for child_id in self._endings.release_children(track.order.order_id):
            child = self._open.get(child_id)
            if child is None:
                continue
            child.order.status = "new"
            child.order.updated_at = self._time
            events.append(OrderActivated(snapshot(child.order)))
            events.extend(self._go_live(child))
        return events
