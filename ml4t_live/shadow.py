"""ShadowBroker: simulated fills on live bars, from ml4t.backtest's own Broker.

The strategy is handed a real ``ml4t.backtest.Broker`` built by ``Broker.from_config`` exactly as
``ml4t.backtest.Engine`` builds it, and the bar steps below call the same Broker methods in the
same order as ``Engine._run_once``. Nothing here re-implements a fill rule, so a replay through
``LiveEngine`` with a ``ShadowBroker`` fills exactly where the backtest fills.

With ``journal=True`` (the CLI's default) a :class:`~ml4t_live.shadow_journal.ShadowJournal`
keeps what the run consumed and decided in the state directory: a killed rehearsal restarts
warm, and ``ml4t-live halt`` / ``resume`` reach it from another terminal.

Thread rule: everything runs on the engine thread (the backtest Broker is not thread-safe).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from copy import deepcopy
from typing import Any

from loguru import logger
from ml4t.backtest import (
    BacktestConfig,
    Broker,
    Fill,
    LifecycleDispatcher,
    Order,
    OrderStatus,
)
from ml4t.backtest.types import ExecutionMode, OrderType
from ml4t.specs import LIFECYCLE_V1, LifecyclePhase

from .errors import ConfigError
from .events import BarClosed
from .risk import RiskConfig, RiskGate
from .shadow_journal import ShadowJournal
from .shadow_rails import ShadowRails

_log = logger.bind(component="shadow")


class ShadowBroker:
    """A :class:`~ml4t_live.protocols.LiveBroker` whose orders go nowhere and fill by the backtest's rules."""

    mode = "shadow"
    venue = "shadow"

    def __init__(self, config: BacktestConfig | None = None, *, risk: Any = None, journal: bool | None = None,
                 state_dir: Any = None, on_divergence: str = "fail", **broker_kwargs: Any) -> None:  # fmt: skip
        """``risk``: the ``[risk]`` table (or a RiskConfig): the same rails a venue run has, in
        front of the backtest broker (None = the safe defaults; ``False`` = no rails at all).
        ``journal``: keep a journal in ``state_dir`` (default: journal when a ``state_dir`` is
        given; the state directory's own default when it is not); ``on_divergence``: ``fail``
        or ``continue`` when a warm restart finds the strategy deciding differently."""
        if on_divergence not in ("fail", "continue"):
            raise ConfigError(f"on_divergence must be 'fail' or 'continue' (got {on_divergence!r})")
        self.config = config if config is not None else BacktestConfig()
        self.risk_table = risk
        self.rails: ShadowRails | None = None
        self._bar_received: float | None = None  # when the gate's current bar arrived (``BarClosed.arrived_at``)
        self.journaling = state_dir is not None if journal is None else journal
        self.state_dir = state_dir
        self.on_divergence = on_divergence
        self.strategy_id: str | None = None  # the engine's (its strategy_id)
        self._feed: Any = None  # the engine's (use_feed)
        self.journal: ShadowJournal | None = None
        self._broker_kwargs = broker_kwargs
        self._broker: Broker | None = None
        self._dispatcher: LifecycleDispatcher | None = None
        self._next_bar = True
        self._fills_seen = 0
        self._orders_seen = 0
        self._open: dict[str, Order] = {}
        self._replaying = False
        self._journaled = 0  # the backtest broker's fills the journal holds (an index into them)
        self._erring = False  # the rails count strategy errors now (an ok on_data must reach them)
        #: the rails' gate (None without rails), and their refused orders (the rails' own lists,
        #: which stay the same objects; empty without rails): read at every bar
        self._gate: RiskGate | None = None
        self._refused: list[Order] = []
        self._new_refused: list[Order] = []

    # ------------------------------------------------------------------ engine side
    @property
    def strategy_broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("ShadowBroker.connect() has not been called")
        return self._broker

    def connect(self, config: BacktestConfig) -> None:
        """Build the backtest Broker from the engine's (feed-merged) config."""
        self.config = config
        self._broker = Broker.from_config(deepcopy(config), **self._broker_kwargs)
        # the backtest applies its own short-selling rule: the rails add one only when asked
        risk = None if self.risk_table is False else RiskConfig.from_table(self.risk_table, allow_short_default=True)
        gate = RiskGate(risk) if risk is not None else None
        if self.journaling:
            name, source = getattr(self._feed, "name", "feed"), getattr(self._feed, "source_id", None)
            if source is not None:  # one journal per recorded source: two replays of one strategy may run at once
                name = f"{name}.{hashlib.sha256(source.encode()).hexdigest()[:8]}"
            self.journal = ShadowJournal.open(self.state_dir, name, self.strategy_id or "shadow", source=source,
                                              cash=config.initial_cash, risk=risk, on_divergence=self.on_divergence)  # fmt: skip
            gate = self.journal.gate
            if gate is None:
                _log.warning("no rails (risk=False): ml4t-live halt / resume cannot reach this run")
        if gate is not None:
            gate.equity = config.initial_cash
            self.rails = ShadowRails(gate, self._broker)
            self._gate = gate
            self._refused, self._new_refused = self.rails.refused, self.rails.new_refused
            self._erring = True  # until the first outcome says how many errors the gate counts
        if self.journal is not None:
            self.journal.wrap(self._broker)
            self.journal.halt, self.journal.flatten = self._cancel_working, self._flatten
            self.journal.follow = self._follow_positions
        self._next_bar = config.execution_mode == ExecutionMode.NEXT_BAR
        self._dispatcher = LifecycleDispatcher(None, LIFECYCLE_V1)
        _log.info(
            "shadow broker ready: {} execution, initial cash {:,.2f}",
            config.execution_mode.value,
            config.initial_cash,
        )

    def invoke(self, phase: LifecyclePhase, hook: Callable[..., Any], *args: Any) -> Any:
        """Call a strategy hook as the backtest does: a hook that raises leaves no order behind."""
        if self._dispatcher is None:
            raise RuntimeError("ShadowBroker.connect() has not been called")
        if phase is LifecyclePhase.RUN_END and self.journal is not None:
            self.journal.closing(self._new_fills())  # also when the run failed
        if phase is LifecyclePhase.RUN_END and self.rails is not None:
            self.rails.gate.clock_from(self._bar_received)  # on_end's orders: the prices' age up to now
        return self._dispatcher.dispatch_registered(phase, hook, self._broker, *args)

    # ------------------------------------------------------------------ the journal's steps
    def use_feed(self, feed: Any) -> None:
        """The engine's feed: the journal is named after it, and a recorded source's bars are
        journaled by reference (a restart reads them from the source again)."""
        self._feed = feed

    def open_bar(self, bar: BarClosed, replay_n: int | None = None) -> None:
        if self.journal is not None:
            self.journal.start_bar(bar, replay_n)

    def begin_warm_restart(self) -> bool:
        self._replaying = self.journal is not None and self.journal.begin_replay()
        return self._replaying

    def replay_bars(self):
        return self.journal.replay_bars(self._feed)

    def end_warm_restart(self) -> None:
        self.take_new_records()  # what the replay simulated again is in the earlier runs' files
        if self._gate is not None:
            self._gate.refused.clear()  # ... its refusals too: the summary counts this run's
        self._journaled = len(self._broker.fills)
        self._replaying = False
        self.journal.end_replay(self._broker.fills)

    def settle_last_bar(self, timeout: float) -> None:
        """An orderly end: nothing is in flight in shadow mode; on_end's commands come next."""
        if self.journal is not None:
            self.journal.closing(self._new_fills())

    def session_closed(self, finished: bool = False) -> None:
        if self.journal is not None:
            broker = self._broker
            self.journal.close(finished, len(broker.pending_orders) if broker is not None else 0,
                               self._new_fills() if broker is not None else [])  # fmt: skip

    def _new_fills(self) -> list[Fill]:
        """The fills the journal does not hold yet (never the replayed ones)."""
        fills = self._broker.fills
        if self._replaying or len(fills) == self._journaled:
            return []
        new = fills[self._journaled :]
        self._journaled = len(fills)
        return new

    def _cancel_working(self) -> None:
        """HALTED: nothing stays working (as at a venue)."""
        for order in list(self._broker.pending_orders):
            self._broker.cancel_order(order.order_id)

    def _follow_positions(self) -> None:
        """REDUCING set by the operator: the gate (which followed no positions, no limit
        reading them) needs them to tell a reducing order: read now, followed from now on."""
        rails = self.rails
        if rails is None or rails.gate.follows_positions:
            return
        rails.gate.follows_positions = True
        for asset in list(self._broker.positions):
            rails._position(asset)
        for order in self._broker.pending_orders:
            rails.gate.track(order)

    def _flatten(self) -> None:
        """``ml4t-live halt --flatten``: working orders cancelled, every position closed by a
        MARKET order that no rail refuses (the backtest's own submit, as a venue's flatten is
        the runtime's own order)."""
        self._cancel_working()
        broker, rails = self._broker, self.rails
        for asset, position in list(broker.positions.items()):
            if abs(position.quantity) > 1e-12:
                order = Broker.submit_order(broker, asset, -position.quantity)
                if rails is not None:  # the rails follow it: its fill moves the position they judge on
                    rails.follow_own(order)
        _log.warning("flatten: closing orders placed for {}", sorted(broker.positions))

    def settle(self, timeout: float) -> int:
        """Fill barrier: nothing is ever in flight here (fills happen in ``begin_bar``)."""
        return 0

    def begin_bar(self, bar: BarClosed) -> None:
        """Engine steps before ``on_data``: prices, pending exits, position rules, fills at the open."""
        broker = self._broker  # per-bar path: connect() has run
        timestamp, data = bar.timestamp, bar.data
        broker._update_time(timestamp, *_bar_caches(data))
        pending_exits = broker._process_pending_exits()
        if pending_exits:
            broker._process_orders(
                use_open=True, order_ids={order.order_id for order in pending_exits}
            )
        broker.evaluate_position_rules()
        if self._next_bar:
            broker._process_orders(use_open=True)
        else:
            broker._process_orders()
        gate = self._gate
        if gate is not None:
            gate.open_bar(timestamp, data)
            self._bar_received = bar.arrived_at  # the gate's bar's (the end of the run's clock counts from it)

    def end_bar(self, bar: BarClosed) -> None:
        """Engine steps after ``on_data``: MOC fills at this bar's close, then water marks."""
        broker = self._broker  # per-bar path: connect() has run
        if self._next_bar:
            broker._process_orders(order_types={OrderType.MOC}, include_orders_this_bar=True)
        else:
            broker._process_orders()
        broker._update_water_marks()
        journal = self.journal
        if journal is not None:
            if self._replaying:  # the run marked each bar: its loss limits live it again
                self.mark(bar.timestamp, 0)
            else:
                journal.end_bar(len(broker.pending_orders), self._new_fills())

    def mark(self, timestamp: Any, observation: int) -> float:
        state, _ = self._broker._observe_portfolio(  # type: ignore[union-attr]
            timestamp, observation, include_holdings=False
        )
        equity = float(state[0])
        gate = self._gate
        if gate is not None:
            if gate.band_floor < equity <= gate.band_ceiling:  # (the usual bar) in the band: no limit can move
                gate.equity = gate.state.last_equity = equity
                return equity
            moved = gate.observe_equity(equity)
            if moved is not None and self.journal is not None:
                self.journal.moved(moved)
        return equity

    def strategy_outcome(self, ok: bool) -> None:
        if ok and not self._erring:
            return  # the usual bar: no error now, none being counted
        rails = self.rails
        if rails is not None:
            if not ok:  # the backtest undid the hook's orders: the rails follow
                rails.rolled_back()
            moved = rails.gate.strategy_outcome(ok)
            self._erring = rails.gate.state.consecutive_errors > 0
            if moved is not None and self.journal is not None:
                self.journal.moved(moved)
            if moved is not None and moved.new == "HALTED":  # as at the venue: nothing stays working
                self._cancel_working()

    def risk_summary(self) -> dict[str, Any]:
        return self.rails.gate.summary() if self.rails is not None else {}

    def validate_completed_run(self, market_events: int) -> None:
        self.strategy_broker._validate_completed_run(market_events)

    # ------------------------------------------------------------------ records
    @property
    def orders(self) -> list[Order]:
        refused = self._refused
        return self.strategy_broker.orders + refused if refused else self.strategy_broker.orders

    @property
    def fills(self) -> list[Fill]:
        return self.strategy_broker.fills

    def rejected_orders(self) -> list[Order]:
        return self.strategy_broker.get_rejected_orders() + self._refused

    def take_new_records(self) -> tuple[list[Order], list[Fill]]:
        """Orders that finished and fills that happened since the last call (no history scans)."""
        broker = self._broker  # per-bar path: connect() has run
        orders = broker.orders
        refused = self._take_refused()
        if not self._open and len(orders) == self._orders_seen and len(broker.fills) == self._fills_seen:
            return refused, []  # nothing happened (most bars): skip the copies
        for order in orders[self._orders_seen :]:
            self._open[order.order_id] = order
        self._orders_seen = len(orders)
        finished = [o for o in self._open.values() if o.status is not OrderStatus.PENDING]
        for order in finished:
            del self._open[order.order_id]
        finished += refused
        fills = broker.fills[self._fills_seen :]
        self._fills_seen = len(broker.fills)
        return finished, fills

    def _take_refused(self) -> list[Order]:
        new = self._new_refused
        if not new:
            return []
        taken = new[:]
        new.clear()
        return taken

    def forget_records(self, keep_fills: int) -> None:
        """Drop finished orders and all but the last ``keep_fills`` fills from memory.

        Called by the engine between bars, after those records were written to the session
        files, so long sessions do not grow without bound. ``get_order`` no longer finds a
        forgotten order.
        """
        broker = self.strategy_broker
        orders = broker.orders
        kept = [o for o in orders if o.status is OrderStatus.PENDING]
        del orders[:]
        orders.extend(kept)
        self._orders_seen = len(orders)
        fills = broker.fills
        drop = max(0, len(fills) - keep_fills)
        if drop:
            del fills[:drop]
            self._fills_seen = len(fills)
            self._journaled = max(0, self._journaled - drop)
        if self.rails is not None:
            self.rails.refused.clear()
        trades = broker.trades
        if len(trades) > keep_fills:
            del trades[: len(trades) - keep_fills]

    def close(self) -> None:
        """Shadow orders never left the process: only the journal (if any) to close."""
        if self.journal is not None:
            self.journal.close(False)


def _bar_caches(data: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The per-bar dicts ``Broker._update_time`` takes, as ``Engine._run_once`` builds them."""
    try:  # an ml4t.backtest DataFeed payload: use its pre-extracted views
        return (
            data._prices, data._opens, data._highs, data._lows, data._closes, data._volumes,
            data._vwaps, data._bids, data._asks, data._mids, data._bid_sizes, data._ask_sizes,
            data._signals,
        )  # type: ignore[attr-defined]  # fmt: skip
    except AttributeError:
        pass
    prices, opens, highs, lows, closes, volumes = {}, {}, {}, {}, {}, {}
    vwaps, bids, asks, mids, bid_sizes, ask_sizes, signals = {}, {}, {}, {}, {}, {}, {}
    for asset, row in data.items():
        price = row.get("price", row.get("close"))
        if price is not None:
            prices[asset] = price
        close = row.get("close", row.get("price"))
        if close is not None:
            closes[asset] = close
        base = row.get("close") if row.get("close") is not None else row.get("price")
        opens[asset] = row.get("open") if row.get("open") is not None else base
        highs[asset] = row.get("high") if row.get("high") is not None else base
        lows[asset] = row.get("low") if row.get("low") is not None else base
        volumes[asset] = row.get("volume", 0)
        for key, target in (
            ("vwap", vwaps), ("bid", bids), ("ask", asks), ("mid", mids),
            ("bid_size", bid_sizes), ("ask_size", ask_sizes),
        ):  # fmt: skip
            if row.get(key) is not None:
                target[asset] = row[key]
        signals[asset] = row.get("signals", {})
    return (
        prices, opens, highs, lows, closes, volumes, vwaps,
        bids, asks, mids, bid_sizes, ask_sizes, signals,
    )  # fmt: skip
