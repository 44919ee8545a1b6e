"""The synchronous protocols the engine sees: feeds, brokers, and the venue gateways behind them.

Nothing here is async. A venue's asyncio code lives in its session on a bridge loop thread; what
the engine thread touches is one of these facades.

* :class:`Feed` delivers :mod:`ml4t_live.events` feed events (``BarClosed`` ...).
* :class:`LiveBroker` is what :class:`~ml4t_live.engine.LiveEngine` drives around each bar; its
  ``strategy_broker`` is the object the strategy's hooks receive, which offers the ml4t.backtest
  ``Broker`` surface described by :class:`StrategyBroker`.
* :class:`VenueGateway` is what a venue adapter (IB, Alpaca) provides to the generic
  :class:`~ml4t_live.venue_broker.VenueBroker`: place / modify / cancel / snapshot, and a queue
  of order events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ml4t.backtest import BacktestConfig, Order, OrderSide, OrderType, Position
from ml4t.backtest.config import ShareType

from .events import BarClosed, FeedEvent, OrderFilled, OrderPartiallyFilled, VenueEvent


# --------------------------------------------------------------------------------------- feeds
@runtime_checkable
class Feed(Protocol):
    """A source of bars. ``next_event`` blocks at most ``timeout`` seconds; None means nothing yet."""

    name: str

    def start(self) -> None: ...

    def next_event(self, timeout: float) -> FeedEvent | None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------- brokers
class StrategyBroker(Protocol):
    """The ml4t.backtest ``Broker`` surface a strategy may touch (tier 1 of the design).

    Tier 1 is everything ``TargetWeightExecutor`` and the four shipped templates use.
    """

    share_type: ShareType

    def submit_order(
        self,
        asset: str,
        quantity: float,
        side: OrderSide | None = None,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_amount: float | None = None,
        _options: Any = None,
    ) -> Order | None: ...

    def close_position(
        self, asset: str, order_type: OrderType = OrderType.MARKET, _options: Any = None
    ) -> Order | None: ...

    def cancel_order(self, order_id: str) -> bool: ...

    def get_position(self, asset: str) -> Position | None: ...

    def get_positions(self) -> dict[str, Position]: ...

    @property
    def positions(self) -> dict[str, Position]: ...

    def get_pending_orders(self, asset: str | None = None) -> list[Order]: ...

    @property
    def pending_orders(self) -> list[Order]: ...

    def get_account_value(self) -> float: ...

    def equity(self) -> float: ...

    def get_cash(self) -> float: ...

    def get_multiplier(self, asset: str) -> float: ...

    def get_price_for_source(self, source: Any, asset: str, **kwargs: Any) -> float | None: ...

    def get_last_price(self, asset: str) -> float | None: ...

    def _next_rebalance_id(self) -> str: ...

    def _process_orders(self, *args: Any, **kwargs: Any) -> Any: ...

    def _register_completion_validator(self, owner: object, fn: Callable[[int], None]) -> None: ...


@runtime_checkable
class LiveBroker(Protocol):
    """What the engine drives, in this order, around each bar.

    ``connect(config)`` once -> per bar: ``settle(timeout)`` (the fill barrier) ->
    ``begin_bar(bar)`` (prices, position rules, and for the shadow broker the fills at the open)
    -> strategy ``on_data`` via ``invoke`` -> ``end_bar(bar)`` (MOC, water marks) ->
    ``mark(timestamp)`` (equity for the curve) ... -> ``close()``.
    """

    mode: str  # "shadow" | "paper" | "live"

    @property
    def strategy_broker(self) -> Any: ...

    def connect(self, config: BacktestConfig) -> None: ...

    def invoke(self, phase: str, hook: Callable[..., Any], *args: Any) -> Any: ...

    def settle(self, timeout: float) -> int: ...

    def begin_bar(self, bar: BarClosed) -> None: ...

    def end_bar(self, bar: BarClosed) -> None: ...

    def mark(self, timestamp: Any) -> float: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------- venues
@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as the engine asks a venue to place (or modify) it.

    ``quantity`` is the order's total, fills included. ``filled_quantity`` is what the runtime's
    book says the order has filled so far (journal-backed, so it survives a restart; 0 for a
    placement): a venue whose replace is a new order for what is left (Alpaca) takes it as the
    floor of the fills it subtracts."""

    client_order_id: str
    asset: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None
    time_in_force: str = "gtc"
    oca_group: str | None = None
    parent_client_order_id: str | None = None
    filled_quantity: float = 0.0


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it when we (re)synchronise."""

    client_order_id: str
    venue_order_id: str
    asset: str
    side: OrderSide
    quantity: float
    filled_quantity: float
    order_type: OrderType
    # "open" | "filled" | "cancelled" | "rejected" | "unknown" (not working, its end unknown: the
    # venue shows it by its executions alone, filled_quantity their sum; IB's look-up by orderRef)
    status: str
    limit_price: float | None = None
    stop_price: float | None = None


@dataclass(frozen=True, slots=True)
class VenuePosition:
    asset: str
    quantity: float
    avg_cost: float


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The venue's view of the account, taken on connect and after every reconnect."""

    account_id: str
    is_paper: bool
    cash: float
    equity: float
    positions: dict[str, VenuePosition] = field(default_factory=dict)
    open_orders: list[VenueOrder] = field(default_factory=list)
    executions: list[OrderFilled | OrderPartiallyFilled] = field(default_factory=list)


@runtime_checkable
class VenueGateway(Protocol):
    """A venue adapter's sync facade (every method is one call through the bridge).

    ``events`` is the sync side of the session loop's janus queue carrying
    :data:`~ml4t_live.events.VenueEvent` records keyed by ``client_order_id``.
    ``place`` never resubmits blindly: after an ambiguous outcome it looks the order up by its
    client order id and reports what the venue has.

    Optional: a gateway whose cancel waits for the venue's answer (IB) may also offer
    :meth:`CancelsMany.cancel_many`; the broker uses it for the runtime's many cancels at once (a
    halt, cancel-all, the end of the run) and otherwise calls ``cancel`` once per order. A gateway
    whose snapshot carries no executions (Alpaca) may offer ``executions_since(client_order_id,
    filled, avg_price)``: the executions of an order the last snapshot listed working beyond
    ``filled`` (the book's), which a warm restart applies as made while away (a VenueError when
    they cannot be read: asked again at each reconciliation, bounded), with
    ``forget_away(client_order_id)``, told when the broker gives up such a read; and
    ``holds(client_order_id, filled, avg_price)``, told before a restart's ``lookup`` what the
    book holds of each order, so that look-up reports only the executions beyond it.

    Optional too: ``lookup(client_order_ids) -> dict[str, VenueOrder]``, where the venue has these
    client order ids (what it found is reported as events too). An id the venue does not know is
    absent; an id it could not read is never absent: the look-up raises instead, a VenueError
    (``ConnectionFailed``) when it read none, :class:`~ml4t_live.errors.LookupIncomplete` (a
    ConnectionFailed) when it read some and not others, carrying ``found`` (the answer for those
    read) and ``unread`` (each id not read, with why). A caller taking any VenueError as "nothing
    read" stays safe; the runtime's callers use ``found`` for the others' answers. IB
    answers all ids in one round or none (ConnectionFailed); Alpaca asks each on its own, so one
    order that cannot be read (refused, or its report raising) leaves the others read.
    """

    venue: str

    @property
    def events(self) -> Any: ...

    def connect(self) -> AccountSnapshot: ...

    def snapshot(self) -> AccountSnapshot: ...

    def place(self, request: OrderRequest) -> None: ...

    def modify(self, request: OrderRequest) -> None: ...

    def cancel(self, client_order_id: str) -> None: ...

    def end_of_bar(self, timestamp: Any) -> None:
        """The engine finished this bar (its orders are placed).

        A simulated venue in step mode takes this as the client's "caught up" signal and advances
        to the next bar; it must travel on the connection that carries the orders, after them
        (IB: ``reqCurrentTime``; Alpaca: ``GET /v2/clock``). Harmless on a real venue.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class CancelsMany(Protocol):
    """The optional part of a :class:`VenueGateway` that cancels many orders at once."""

    def cancel_many(self, client_order_ids: list[str]) -> dict[str, Exception | None]:
        """Cancel these orders together (the waits for the venue's answers overlap). Per client
        order id: None when the venue took the cancel (as ``cancel`` returning), else the
        exception ``cancel`` would have raised for it (CancelRefused, VenueError, BridgeError
        ...); a batch that fails as a whole gives every order its error. It should not raise
        those; a raise counts as every order failed (may still work)."""
        ...


__all__ = [
    "AccountSnapshot",
    "CancelsMany",
    "Feed",
    "LiveBroker",
    "OrderRequest",
    "StrategyBroker",
    "VenueEvent",
    "VenueGateway",
    "VenueOrder",
    "VenuePosition",
]
