"""SimulatedIBGateway: the public facade of the simulated IB Gateway.

Threading rule: the gateway's server, venue and replay live on ONE :class:`LoopThread`
(``ml4t-ib-sim``); every public method here is called from another thread (a test, the CLI)
and crosses the bridge with a timeout. Nothing here may be called from the gateway's own loop.

Usage::

    gw = SimulatedIBGateway("bars.parquet")          # step mode; speed=60 for 60x real time
    port = gw.start()                                  # 127.0.0.1:<free port>
    ... ib_async.IB().connectAsync("127.0.0.1", port, clientId=1) ...
    gw.inject("reject_next", reason="no shortable shares")
    gw.wait_finished(timeout=30)
    gw.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from ml4t.backtest import BacktestConfig

from ...bridge import LoopThread
from ...errors import BridgeTimeout, ConfigError
from ..bars import bar_groups, load_bars
from ..history import history_count
from ..market_hours import is_open
from ..matching import SimExchange
from .commissions import commission_model
from .contracts import ContractBook, SymbolInfo
from .encoders import ExecView, OrderView
from .fault_actions import fire
from .faults import ScriptedFault, load_faults, make_fault
from .framing import MIN_SERVER_VERSION, SERVER_VERSION
from .handlers import Dispatcher
from .margin import AccountModel
from .replay import Replay, infer_bar_seconds
from .server import IBServer
from .venue import IBVenue, OrderReceived

_log = logger.bind(component="sim.ib.gateway")
CALL_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class AccountView:
    account: str
    cash: float
    equity: float
    positions: dict[str, tuple[float, float]]


def _regular_hours_only(groups: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, dict[str, Any]]]:
    """Intraday bars outside NYSE regular sessions (pre/post market, holidays) are not replayed."""
    if infer_bar_seconds([ts for ts, _ in groups]) >= 86400:
        return groups  # daily bars are labelled by date, not by a time inside the session
    kept = [(ts, bars) for ts, bars in groups if is_open(ts)]
    if not kept:
        raise ConfigError(
            "none of the intraday bars falls inside NYSE regular hours; pass market_hours=False "
            "to replay them anyway"
        )
    if len(kept) < len(groups):
        _log.warning("{} bar timestamps outside NYSE regular hours are not replayed", len(groups) - len(kept))
    return kept


class _Sink:
    """Venue -> server routing (set up once both exist)."""

    def __init__(self, server: IBServer) -> None:
        self.server = server
        self.dispatcher: Dispatcher | None = None

    def send(self, client_id: int, frames: list[bytes], delay: float = 0.0) -> None:
        self.server.send(client_id, frames, delay)

    def positions_changed(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.push_account()

    def later(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        self.server.later(delay, fn, *args)


class SimulatedIBGateway:
    """A TWS-API gateway on 127.0.0.1 replaying recorded bars and filling like ml4t.backtest."""

    def __init__(
        self,
        bars: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        config: BacktestConfig | None = None,
        account: str = "DU1234567",
        faults: str | Path | list[dict[str, Any]] | None = None,
        symbols_info: Mapping[str, SymbolInfo | Mapping[str, object]] | None = None,
        warmup_bars: int = 0,
        market_hours: bool = True,
        history: int | str | None = None,
        commission: str = "none",
        max_version: int = SERVER_VERSION,
        account_type: str = "margin",
        step_lead: float = 0.0,
        execution_limits: Any = None,
    ) -> None:
        """``history``: the first N bar timestamps (an int) or a duration (``"90min"``, ``"2d"``;
        see ``sim/history.py``)
        are served as history before the replay starts (sets ``warmup_bars``). ``commission``:
        ``none`` (the config's own commission settings), ``ib-fixed`` or ``ib-tiered`` (see
        ``commissions.py``). ``max_version``: the highest server version to negotiate
        (157..178), to rehearse against an older TWS. ``account_type``: ``margin`` (Reg T, IB's
        usual account; a paper account copies its live account's type) or ``cash``: what IB's
        pre-trade margin check at submission and the margin numbers follow (see ``margin.py``).
        ``step_lead`` (step mode only): send each bar's 5-second bars but the last, wait this many
        seconds, then the last one, as a live gateway spreads them over the bar (0, the default:
        all of them at once). ``execution_limits``: an ml4t.backtest ``ExecutionLimits`` for the
        matching core (with ``BacktestConfig(partial_fills_allowed=True)``), e.g.
        ``VolumeParticipationLimit``: an order fills a share of each bar's volume, working partly
        filled over several bars (Python only)."""
        if speed is not None and speed <= 0:
            raise ConfigError(f"speed must be positive (or None for step mode), got {speed}")
        if step_lead < 0 or (step_lead and speed is not None):
            raise ConfigError(f"step_lead is for step mode only and must be >= 0, got {step_lead}")
        self._groups = bar_groups(load_bars(bars))
        if not self._groups:
            raise ConfigError("the bars source holds no bars; nothing to replay")
        if market_hours:
            self._groups = _regular_hours_only(self._groups)
        if history is not None:
            warmup_bars = history_count([ts for ts, _ in self._groups], history)
        if not MIN_SERVER_VERSION <= max_version <= SERVER_VERSION:
            raise ConfigError(
                f"max_version={max_version} is outside the server versions this gateway speaks "
                f"({MIN_SERVER_VERSION}..{SERVER_VERSION})"
            )
        self._commission = commission_model(commission)
        self._account_model = AccountModel.for_account(account_type, config)
        self._max_version = max_version
        if warmup_bars >= len(self._groups):
            raise ConfigError(f"warmup_bars={warmup_bars} leaves none of the {len(self._groups)} bars to replay")
        self._host, self._port, self._speed, self._step_lead = host, port, speed, step_lead
        self._execution_limits = execution_limits
        self._config, self._account = config, account
        self._faults: list[ScriptedFault] = load_faults(faults)
        self._symbols_info = symbols_info
        self._warmup = warmup_bars
        self._loop: LoopThread | None = None
        self._server: IBServer | None = None
        self._venue: IBVenue | None = None
        self._replay: Replay | None = None
        self._dispatcher: Dispatcher | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> int:
        """Start serving on the gateway's own loop thread; returns the bound port."""
        if self._loop is not None:
            raise ConfigError("SimulatedIBGateway.start() was already called (single use)")
        self._loop = LoopThread("ib", "sim")
        self._loop.start(self._setup)
        return self.port

    async def _setup(self) -> None:
        symbols = sorted({a for _, bars in self._groups for a in bars})
        book = ContractBook(symbols, self._symbols_info)
        server = IBServer(self._host, self._port, self._account, self._max_version)
        sink = _Sink(server)
        exchange = SimExchange(self._config, known_assets=set(symbols), commission_model=self._commission,
                               execution_limits=self._execution_limits)  # fmt: skip
        venue = IBVenue(exchange, book, self._account, sink, lambda: replay.current)
        replay = Replay(self._groups, speed=self._speed, warmup_bars=self._warmup, venue=venue, server=server,
                        step_lead=self._step_lead)  # fmt: skip
        venue.reference_price = replay.last_close
        venue.account_model = self._account_model
        dispatcher = Dispatcher(server, venue, replay)
        sink.dispatcher = dispatcher
        replay.on_bar = self._fire_scheduled
        self._server, self._venue, self._replay, self._dispatcher = server, venue, replay, dispatcher
        await server.start()
        for fault in [f for f in self._faults if f.at_bar is None]:
            self._fire(fault)
        assert self._loop is not None
        self._loop.spawn(replay.run(), "replay")

    def close(self) -> None:
        """Drop every client, stop listening, join the thread (idempotent)."""
        if self._loop is None:
            return
        server = self._server

        async def shutdown() -> None:
            if server is not None:
                await server.stop()

        self._loop.close(shutdown)

    @property
    def port(self) -> int:
        if self._server is None:
            raise ConfigError("the gateway is not started")
        return self._server.port

    @property
    def host(self) -> str:
        return self._host

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, **params: Any) -> None:
        """Schedule a fault (see ``faults.py`` for kinds, ``fault_actions.py`` for what each does);
        ``at_bar=N`` defers it to bar N."""
        fault = make_fault(kind, params)
        if fault.at_bar is not None:
            self._call(lambda: self._faults.append(fault))
        else:
            self._call(lambda: self._fire(fault))

    def _fire_scheduled(self, index: int) -> None:
        for fault in [f for f in self._faults if f.at_bar == index]:
            self._fire(fault)

    def _fire(self, fault: ScriptedFault) -> None:
        assert self._server and self._venue and self._replay and self._dispatcher
        _log.info("fault {} {}", fault.kind, fault.params)
        fire(fault, self._server, self._venue, self._replay, self._dispatcher)

    def venue_cancels(self, order_ref: str) -> None:
        """IB cancels the working order with this ``orderRef`` now, as when it acts on a cancel
        whose client has gone (the confirmation reaches nobody); an order whose late cancel IB
        holds (``PendingCancel``) has it confirmed now. No scripted ``cancel_reply`` applies
        (those answer a client's cancel). Raises ValueError when no working order has that
        ``orderRef``."""

        def act() -> None:
            venue = self._require(self._venue)
            ibo = next((o for o in venue.orders.values() if o.view.order_ref == order_ref and not o.done), None)
            if ibo is None:
                raise ValueError(f"no working order with orderRef {order_ref!r}")
            venue.acts_on_cancel(ibo)

        self._call(act)

    def new_day(self) -> None:
        """A new trading date: reqExecutions and reqCompletedOrders report only what follows."""
        self._call(lambda: self._require(self._venue).new_day())

    # ------------------------------------------------------------------ waits and views
    def wait_finished(self, timeout: float) -> bool:
        """True once every bar was replayed (False on timeout)."""
        replay = self._require(self._replay)

        async def wait() -> None:
            await replay.finished.wait()

        try:
            self._require(self._loop).call(wait(), timeout)
        except BridgeTimeout:
            return False
        return True

    @property
    def orders_received(self) -> list[OrderReceived]:
        """Every placeOrder as it arrived (client, id, orderRef, fields, bar, perf_counter_ns)."""
        return self._call(lambda: list(self._require(self._venue).received))

    @property
    def fills(self) -> list[ExecView]:
        return self._call(lambda: list(self._require(self._venue).executions))

    @property
    def black_holed(self) -> list[tuple[int, int, str]]:
        """(client id, order id, orderRef) of every placeOrder a ``black_hole_next`` swallowed."""
        return self._call(lambda: list(self._require(self._venue).request_faults.swallowed))

    @property
    def completed_orders(self) -> list[OrderView]:
        return self._call(lambda: list(self._require(self._venue).completed))

    @property
    def orders(self) -> list[OrderView]:
        """Every order the book took (open, done, rejected; not black-holed or refused ones), as
        it stands now: for scoring what the venue holds per orderRef."""
        return self._call(lambda: [o.view for o in self._require(self._venue).orders.values()])

    @property
    def account(self) -> AccountView:
        def snap() -> AccountView:
            ex = self._require(self._venue).exchange
            return AccountView(self._account, ex.cash, ex.equity, dict(ex.positions))

        return self._call(snap)

    def requests_received(self, kind: str) -> list[float]:
        """Arrival times (``time.monotonic()``) of the requests of ``kind`` received so far (the
        newest 4096): ``"ReqHistoricalData"``, ``"currentTime"`` ... (see ``request_log.py``)."""
        return self._call(lambda: self._require(self._dispatcher).requests.arrivals(kind))

    def request_count(self, kind: str) -> int:
        """How many requests of ``kind`` arrived in all (what :meth:`wait_requests` counts)."""
        return self._call(lambda: self._require(self._dispatcher).requests.counts[kind])

    def wait_requests(self, kind: str, count: int, timeout: float) -> bool:
        """True once ``count`` requests of ``kind`` arrived in all (False after ``timeout``)."""
        log = self._require(self._dispatcher).requests
        try:
            self._require(self._loop).call(log.wait_for(kind, count), timeout)
        except BridgeTimeout:
            return False
        return True

    @property
    def bars_replayed(self) -> int:
        return self._call(lambda: self._require(self._replay).bars_replayed)

    @property
    def bar_sent_ns(self) -> dict[Any, int]:
        """Latency hook: bar label -> time.perf_counter_ns() when its last 5-second bar went out."""
        return self._call(lambda: dict(self._require(self._replay).bar_sent_ns))

    @property
    def connected_clients(self) -> list[int]:
        return self._call(lambda: sorted(self._require(self._server).by_client))

    @property
    def refusals(self) -> list[str]:
        return self._call(lambda: list(self._require(self._server).refusals))

    @property
    def listening(self) -> bool:
        return self._call(lambda: self._require(self._server).listening)

    def wait_listening(self, timeout: float = CALL_TIMEOUT) -> bool:
        """Block until the gateway accepts new connections again (after a ``refuse_connections``
        fault); False if it does not within ``timeout`` seconds."""
        server = self._require(self._server)
        return self._require(self._loop).call(server.wait_listening(timeout), timeout + CALL_TIMEOUT)

    def _call(self, fn: Any) -> Any:
        return self._require(self._loop).call(fn, CALL_TIMEOUT)

    @staticmethod
    def _require(obj: Any) -> Any:
        if obj is None:
            raise ConfigError("the gateway is not started")
        return obj
