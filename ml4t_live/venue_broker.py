"""VenueBroker: the strategy-facing broker for a real (or simulated) venue.

It offers the ml4t.backtest ``Broker`` surface (tier 1: everything ``TargetWeightExecutor`` and the
shipped templates use, plus order queries) on the engine thread, keeps the strategy's ``Order``
objects in a local :class:`~ml4t_live.book.Book`, and talks to the venue only through a
:class:`~ml4t_live.protocols.VenueGateway` (IB, Alpaca, or an in-memory fake in tests).

What the strategy owns is its journal's (:mod:`ml4t_live.journal`, one SQLite file per venue,
account and strategy id, locked against a second process): every order intent is committed
before it is sent, every venue answer and every bar is appended. A restart replays the journal
through the unchanged strategy (orders answered from the journal, never sent twice); venue
positions nobody journaled are *external* and never traded (``adopt_positions=True`` is the
explicit opt-in to take them over); an order placed on a catch-up bar does not leave.

Divergences from the backtest, by necessity:
* a hook that raises is not rolled back (the backtest undoes its orders, changes and fills): what
  it sent, changed or cancelled stands at the venue, and stays in the book, the journal and the
  rails. What can raise inside one call (a bracket's prices) raises before its first order leaves;
* orders go out at once; the fill barrier (``settle``) waits a bounded time for the orders of the
  previous bar before ``on_data``, so the strategy sees what the backtest would have shown it;
* INTEGER share quantities are truncated when the order is placed (a venue takes whole shares);
  an order that truncates to zero is REJECTED at once instead of at the next bar;
* ``cancel_order`` marks the order CANCELLED at once (as the backtest does) once the venue took
  the request, False when it refused (already filled); a fill that races the cancel still wins,
  and the session files record what the venue decided;
* ``Position.current_price`` during ``on_data`` is the last close, not the bar's open;
* position rules (``set_position_rules``) are evaluated on each closed bar before ``on_data``;
  an exit is a MARKET order filled by the venue after the bar, not at the stop level inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loguru import logger
from ml4t.backtest import BacktestConfig, Fill, Order, OrderSide, OrderType
from ml4t.backtest.config import ShareType
from ml4t.backtest.core import SubmitOrderOptions, reason_to_exit_reason
from ml4t.specs import LifecyclePhase

from .account_views import AccountViews
from .book import Book
from .broker_connect import connect_broker
from .broker_steps import BarSteps
from .cancel_checks import CancelResending
from .cancel_resends import CancelResends
from .errors import ConfigError, SendFailed
from .events import BarClosed
from .fill_barrier import FillBarrier
from .journal.link import JournalLink
from .latency import LatencyLog
from .lost_orders import LostOrders
from .order_commands import JournaledOrders
from .order_entry import MIN_QUANTITY, check_order, warn_inverted_bracket
from .order_ids import ClientOrderIds
from .owed_executions import OwedExecutions
from .ownership import Ownership
from .position_rules import PositionRules
from .protocols import AccountSnapshot, VenueGateway
from .rails import JournaledRails
from .restart_reads import AwayReads, RestartLookUps
from .unknown_orders import UnknownLookups, UnknownOrders
from .venue_rails import RailSteps

_log = logger.bind(component="venue-broker")



class VenueBroker(JournaledOrders, FillBarrier, BarSteps, RailSteps, AccountViews, UnknownLookups,
                  CancelResending, LostOrders):
    """A :class:`~ml4t_live.protocols.LiveBroker` whose orders go to a venue gateway."""

    def __init__(
        self,
        gateway: VenueGateway,
        *,
        mode: str = "paper",
        strategy_id: str | None = None,
        state_dir: Any = None,
        adopt_positions: bool = False,
        external: str = "warn",
        catch_up: str = "reject",
        on_divergence: str = "fail",
        reconcile_every: float = 300.0,
        reconnect_timeout: float = 600.0,
        risk: Any = None,
    ) -> None:
        if mode not in ("paper", "live"):
            raise ValueError("VenueBroker mode is 'paper' or 'live'; use ShadowBroker for shadow")
        self.gateway = gateway
        self.mode = mode
        self.venue = getattr(gateway, "venue", "venue")
        self.strategy_id = strategy_id
        self.configure(state_dir=state_dir, adopt_positions=adopt_positions, external=external,
                       catch_up=catch_up, on_divergence=on_divergence, reconcile_every=reconcile_every,
                       risk=risk)  # fmt: skip
        self.reconnect_timeout = reconnect_timeout
        self._disconnected: str | None = None  # the reason, while the venue connection is down
        self.config = BacktestConfig()
        self.share_type = ShareType.INTEGER
        self.book = Book()
        self.ids = ClientOrderIds(strategy_id or "ml4t", "new")
        self._in_flight: dict[str, Order] = {}
        self._oca_groups: dict[str, str] = {}
        self._bar_time: Any = None
        self._catch_up = False
        self._bar_received: float | None = None  # when the gate's current bar arrived (``BarClosed.arrived_at``)
        self._cancel_failed: set[str] = set()  # orders whose cancel failed (warned once)
        self._runtime_exit = False  # the operator's flatten is placing its orders
        self._bracket_entry = False  # submit_bracket is placing its entry (the rails judge the bracket whole)
        self.away_reads = AwayReads(gateway, self.book, self._apply_live,  # a restart's reads of fills while away
                                    journal=self._open_journal)
        self.restart_lookups = RestartLookUps(gateway, self.book, drain=self._drain, unlisted=self._unlisted,
                                              take_venue_end=self._take_venue_end)  # a restart's look-ups by id
        self.owed = OwedExecutions(self.book)  # orders found filled whose executions have not come
        self.cancel_resends = CancelResends()  # unanswered cancels, sent again (aged, spaced, bounded)
        self.unknown = UnknownOrders()  # orders of unknown outcome in this session, looked up (bounded)
        self._rebalance_counter = 0
        self._validators: dict[int, Callable[[int], None]] = {}
        self.foreign_orders: list[Any] = []
        self.starting_equity: float | None = None
        self.snapshot: AccountSnapshot | None = None
        self.rules = PositionRules()
        self.left_at_venue: list[Order] = []
        self.latency = LatencyLog()  # bar -> order -> fill times: the session's latency table

    def configure(self, *, state_dir: Any = None, adopt_positions: bool = False, external: str = "warn",
                  catch_up: str = "reject", on_divergence: str = "fail",
                  reconcile_every: float = 300.0, risk: Any = None) -> None:  # fmt: skip
        """The journal, ownership and risk settings (before ``connect``); see the class
        docstring. ``risk``: the ``[risk]`` table (or a RiskConfig); None = the safe defaults."""
        if catch_up not in ("reject", "trade"):
            raise ConfigError(f"catch_up must be 'reject' or 'trade' (got {catch_up!r})")
        if on_divergence not in ("fail", "continue"):
            raise ConfigError(f"on_divergence must be 'fail' or 'continue' (got {on_divergence!r})")
        self.catch_up_policy = catch_up
        self.on_divergence = on_divergence
        self.own = Ownership(state_dir=state_dir, adopt_positions=bool(adopt_positions),
                             external=external, reconcile_every=reconcile_every)  # fmt: skip
        self.risk_table = risk
        self.rails: JournaledRails | None = None

    def _open_journal(self) -> Any:
        """The journal while it is open, else None (a restart's reads of fills while away read it)."""
        link = self.own.link
        return None if link is None or link.journal.closed else link.journal

    @property
    def link(self) -> JournalLink:
        if self.own.link is None:
            raise RuntimeError("VenueBroker.connect() has not been called")
        return self.own.link

    # ================================================================== engine side
    @property
    def strategy_broker(self) -> VenueBroker:
        return self

    def connect(self, config: BacktestConfig) -> None:
        """Connect, check the account kind, and start from the venue's state (fail closed):
        :func:`~ml4t_live.broker_connect.connect_broker`."""
        connect_broker(self, config)

    def invoke(self, phase: Any, hook: Callable[..., Any], *args: Any) -> Any:
        if phase is LifecyclePhase.RUN_END and self.rails is not None:
            self.gate.clock_from(self._bar_received)  # on_end's orders: the prices' age up to now
        return hook(*args)

    def begin_bar(self, bar: BarClosed) -> None:
        self.gate.open_bar(bar.timestamp, bar.data)
        self._bar_received = bar.arrived_at  # the gate's bar's (the end of the run's clock counts from it)
        if self.link.replaying:
            self.replay_runtime_orders()
        else:
            self.check_trading_state()
        self._bar_time = bar.timestamp
        self.ids.new_bar(bar.timestamp)
        prices = {}
        for asset, row in bar.data.items():
            price = row.get("price", row.get("close"))
            if price is not None:
                prices[asset] = price
        self.book.mark(prices)
        for asset, quantity, reason in self.rules.exits(self.book.positions, bar.data, bar.timestamp):
            if any(o.asset == asset for o in self._in_flight.values()):
                continue  # an exit (or another order) for this asset is already on its way
            why = SubmitOrderOptions(exit_reason=reason_to_exit_reason(reason), risk_exit_reason=reason)
            order = self.submit_order(asset, quantity, _options=why)
            if order is not None:
                _log.info("position rule {} exits {} {} ({})", reason, quantity, asset, order.order_id)
        if not self.link.replaying:
            self.link.journal.commit()  # the bar and its events, before on_data runs

    def end_bar(self, bar: BarClosed) -> None:
        self.rules.update_water_marks(self.book.positions, bar.data)
        if not self.link.replaying:  # a step-mode venue advances on this; a replay is not news
            self.link.journal.commit()  # the bar's rows, before the venue moves on
            self.gateway.end_of_bar(bar.timestamp)

    def mark(self, timestamp: Any, observation: int) -> float:
        equity = self.book.equity()
        if self.rails is not None and not self.link.replaying:
            self.rails.moved(self.gate.observe_equity(equity))
            self.rails.save(open_orders=self._working_orders())
        return equity

    def validate_completed_run(self, market_events: int) -> None:
        for validator in tuple(self._validators.values()):
            validator(market_events)

    def take_new_records(self) -> tuple[list[Order], list[Fill]]:
        return self.book.take_new_records()

    def take_latency(self) -> list[dict[str, Any]]:
        """Latency rows (one per fill) since the last call: the session's ``latency`` table."""
        return self.latency.take()

    def forget_records(self, keep_fills: int) -> None:
        self.book.forget(keep_fills)

    def rejected_orders(self) -> list[Order]:
        return self.book.rejected()

    def close(self) -> None:
        try:
            self.gateway.close()
        finally:
            self.own.close()

    # ================================================================== strategy surface
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
    ) -> Order | None:
        """Place an order (same rules as ml4t.backtest's ``Broker.submit_order``)."""
        return self._submit(
            asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options
        )

    def _submit(
        self,
        asset: str,
        quantity: float,
        side: OrderSide | None,
        order_type: OrderType,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_amount: float | None = None,
        _options: Any = None,
        *,
        oca_group: str | None = None,
        parent_id: str | None = None,
    ) -> Order | None:
        checked = check_order(quantity, side, order_type, limit_price, stop_price, trail_amount)
        if checked is None:
            return None
        side, quantity = checked
        order = Order(
            asset=asset,
            side=side,
            quantity=quantity,
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_amount=trail_amount,
            rebalance_id=getattr(_options, "rebalance_id", None),
            _exit_reason=getattr(_options, "exit_reason", None),  # a position rule's exit: its fills say why
            _risk_exit_reason=getattr(_options, "risk_exit_reason", None),
            order_id=self.ids.runtime(asset, side, self.link.next_runtime_key()) if self._runtime_exit
            else self.ids.next(asset, side),
            created_at=self._bar_time,
            parent_id=parent_id,
        )
        self.book.add(order)
        if self.share_type is ShareType.INTEGER:
            whole = float(int(quantity))
            if whole <= 0:
                order.reject(f"quantity {quantity} rounds to zero whole shares", "quantity_rounds_to_zero")
                self.book.close(order)
                return order
            order.quantity = whole
        self._send(order, oca_group=oca_group)
        return order

    def submit_bracket(
        self,
        asset: str,
        quantity: float,
        take_profit: float,
        stop_loss: float,
        entry_type: OrderType = OrderType.MARKET,
        entry_limit: float | None = None,
        validate_prices: bool = True,
    ) -> tuple[Order, Order, Order] | None:
        """Entry plus a take-profit LIMIT and a stop-loss STOP, one-cancels-other.

        As in the backtest the two exits are live at once (not held until the entry fills) and
        carry ``parent_id = entry.order_id``; at the venue they share an OCA group, so the fill of
        one cancels the other there too.

        Whatever raises (a bad exit price; the price warnings, when warnings are errors) raises
        before the entry leaves: the backtest rolls back the hook that raised, entry included,
        and a venue cannot take an order back.
        """
        checked = check_order(quantity, None, entry_type, entry_limit, None, None)
        if checked is None:
            return None
        check_order(quantity, None, OrderType.LIMIT, take_profit, None, None)
        check_order(quantity, None, OrderType.STOP, None, stop_loss, None)
        if validate_prices:
            reference = entry_limit if entry_limit is not None else self.book.last_prices.get(asset)
            warn_inverted_bracket(asset, checked[0], reference, take_profit, stop_loss)
        self._bracket_entry = True
        try:
            entry = self.submit_order(asset, quantity, order_type=entry_type, limit_price=entry_limit)
        finally:
            self._bracket_entry = False
        if entry is None:
            return None
        exit_side = OrderSide.SELL if entry.side is OrderSide.BUY else OrderSide.BUY
        group = f"oca-{entry.order_id}"
        def stop() -> Order | None:
            return self._submit(asset, entry.quantity, exit_side, OrderType.STOP, stop_price=stop_loss,
                                oca_group=group, parent_id=entry.order_id)  # fmt: skip

        try:
            tp = self._submit(asset, entry.quantity, exit_side, OrderType.LIMIT, limit_price=take_profit,
                              oca_group=group, parent_id=entry.order_id)  # fmt: skip
        except SendFailed:  # the take-profit's fate is unknown: the stop-loss still protects the entry
            stop()
            raise
        sl = stop()
        if tp is None or sl is None:
            return None
        return entry, tp, sl

    def close_position(
        self, asset: str, order_type: OrderType = OrderType.MARKET, _options: Any = None
    ) -> Order | None:
        position = self.book.positions.get(asset)
        if position is None or abs(position.quantity) <= MIN_QUANTITY:
            return None
        side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
        return self.submit_order(asset, abs(position.quantity), side, order_type, _options=_options)

    def flatten_all_positions(self, reason: str = "flatten", order_type: OrderType = OrderType.MARKET) -> list[Order]:
        for order in list(self.book.open.values()):
            self.cancel_order(order.order_id)
        orders = [self.close_position(asset, order_type) for asset in list(self.book.positions)]
        return [o for o in orders if o is not None]

    def set_position_rules(self, rules: Any, asset: str | None = None) -> None:
        """Rules evaluated on each bar before ``on_data``; exits go out as MARKET orders."""
        self.rules.set(rules, asset)

    def clear_position_rules(self, asset: str | None = None) -> None:
        self.rules.set(None, asset)

    def update_position_context(self, asset: str, context: dict) -> None:
        position = self.book.positions.get(asset)
        if position is not None:
            position.context.update(context)

    # ---- private hooks ml4t.backtest's TargetWeightExecutor calls
    def _next_rebalance_id(self) -> str:
        self._rebalance_counter += 1
        return f"rebalance-{self._rebalance_counter}"

    def _process_orders(self, *args: Any, **kwargs: Any) -> None:
        """No-op live: orders are processed by the venue."""

    def _register_completion_validator(self, owner: object, validator: Callable[[int], None]) -> None:
        self._validators.setdefault(id(owner), validator)
