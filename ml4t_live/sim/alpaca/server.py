"""``SimulatedAlpaca``: the public facade of the simulated Alpaca venue.

Threading rule: the venue (aiohttp server, websockets, matching core, bar replay) lives on ONE
:class:`~ml4t_live.bridge.LoopThread` named ``ml4t-alpaca-sim``. Every public method here is
called from another thread and reaches the venue through that bridge.

One port on 127.0.0.1 serves what alpaca-py's clients expect under Alpaca's own paths::

    TradingClient(key, secret, url_override=sim.base_url)                  # REST /v2/...
    StockHistoricalDataClient(key, secret, url_override=sim.base_url)      # /v2/stocks/...
    TradingStream(key, secret, url_override=sim.trade_stream_url)          # ws .../stream (and /stream/)
    StockDataStream(key, secret, url_override=sim.data_stream_url)         # ws .../v2/iex

Step mode (``speed=None``, the default) replays the next bar only when the client has caught up
(``GET /v2/clock`` after the current bar was sent, or :meth:`advance`); ``speed=N`` replays at N x
real time from the moment the simulator starts. ``history=N`` (bars or a duration) serves the first
N bars from the bars endpoints before the replay begins. Which endpoints answer, with what, is
tabled in ``docs/simulators.md``.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from loguru import logger
from ml4t.backtest import BacktestConfig

from ...bridge import LoopThread
from ...errors import ConfigError
from ..bars import SimBar, bar_groups, load_bars
from ..faults import FaultPlan
from ..history import parse_history
from . import payloads
from .core import Core
from .faults import KINDS, check_fault
from .market_data import MarketDataApi
from .records import FillRecord
from .trading_api import TradingApi

_log = logger.bind(component="sim.alpaca")
_CALL_TIMEOUT = 10.0
FEEDS = "iex|sip|delayed_sip|boats|overnight|otc|test"


def generate_keys() -> tuple[str, str]:
    """A paper-style key pair: ``PK`` + 18 characters, and a 40-character secret."""
    alphabet = string.ascii_uppercase + string.digits
    key_id = "PK" + "".join(secrets.choice(alphabet) for _ in range(18))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    return key_id, secret


def load_fault_plan(faults: Any) -> FaultPlan:
    """A :class:`~ml4t_live.sim.faults.FaultPlan` from a TOML path, a plan, or a list of faults.

    TOML (the shared scenario format): ``[[fault]]`` tables with ``kind`` (one of :data:`KINDS`),
    ``at_bar`` and/or ``after_orders`` (when it is due), ``count`` (how many firings), ``seconds``
    and ``params`` (the kind's parameters, e.g. ``params = { count = 5 }`` for a 429 storm).
    A list may hold :class:`Fault` objects or dicts of the same keys.
    """
    if faults is None:
        return FaultPlan()
    if isinstance(faults, FaultPlan):
        plan = faults
    elif isinstance(faults, (str, Path)):
        plan = FaultPlan.load(faults, valid_kinds=KINDS)
    else:
        items = list(faults)
        if all(isinstance(f, dict) for f in items):
            plan = FaultPlan.from_dict({"fault": items}, valid_kinds=KINDS)
        else:
            plan = FaultPlan(items)
    for fault in plan.pending:
        try:
            check_fault(fault.kind, fault.params)
        except ValueError as exc:
            raise ConfigError(f"fault scenario: {exc}") from exc
    return plan


def _check_account_state(state: dict[str, Any] | None) -> dict[str, Any]:
    fields = payloads.ACCOUNT_STATE_FIELDS
    for name, value in (state or {}).items():
        if name not in fields:
            raise ConfigError(f"account_state: unknown field {name!r}; known: {', '.join(fields)}")
        if type(value) is not fields[name]:
            raise ConfigError(f"account_state: {name} must be a {fields[name].__name__}, got {value!r}")
    return dict(state or {})


class SimulatedAlpaca:
    """A simulated Alpaca on 127.0.0.1 (see the module docstring)."""

    def __init__(self, bars: Any, *, host: str = "127.0.0.1", port: int = 0, speed: float | None = None,
                 config: BacktestConfig | None = None, key_id: str | None = None, secret_key: str | None = None,
                 faults: Any = None, rate_limit_per_minute: int | None = 200, feed: str = "iex",
                 replay_from: datetime | None = None, account_state: dict[str, Any] | None = None,
                 history: int | str | timedelta | None = None, pre_open: float = 0.0,
                 execution_limits: Any = None) -> None:
        """``replay_from``: bars before it are history only (served by ``/v2/stocks/bars`` from the
        start, for warm-up), the rest are replayed live. ``history``: the same by count or
        duration (``390``, ``"90min"``, ``"2d"``: see :mod:`ml4t_live.sim.history`), counted over
        the bars inside regular hours (the only ones the venue serves). ``rate_limit_per_minute=None`` disables it.
        ``account_state``: how GET /v2/account describes the account's standing, e.g.
        ``{"trading_blocked": True}`` (fields: ``payloads.ACCOUNT_STATE_FIELDS``; default an
        active, unblocked account). The venue only reports it: orders are still accepted.
        ``pre_open``: the venue starts that many wall seconds before its first bar's minute (its
        clock says closed until then; see :mod:`.core`). ``execution_limits``: an ml4t.backtest
        ``ExecutionLimits`` (e.g. ``VolumeParticipationLimit``) for the matching core, as
        ``Broker.from_config(execution_limits=...)`` takes it: orders fill in parts over bars."""
        if speed is not None and speed <= 0:
            raise ConfigError(f"speed must be > 0 (or None for step mode), got {speed}")
        if pre_open < 0:
            raise ConfigError(f"pre_open must be >= 0 seconds, got {pre_open}")
        if (key_id is None) != (secret_key is None):
            raise ConfigError("give both key_id and secret_key, or neither (a pair is generated)")
        self._account_state = _check_account_state(account_state)
        if isinstance(bars, list) and (not bars or isinstance(bars[0], tuple)):
            self._groups: list[tuple[datetime, dict[str, SimBar]]] = bars
        else:
            self._groups = bar_groups(load_bars(bars))
        if key_id is None:
            key_id, secret_key = generate_keys()
        self._key_id, self._secret = key_id, secret_key
        self._host, self._port = host, port
        self._speed, self._config, self._feed = speed, config, feed
        self._rate = rate_limit_per_minute
        self._plan = load_fault_plan(faults)
        self._replay_from = replay_from
        self._history = parse_history(history)  # a bad value fails here, in the caller's thread
        self._pre_open = pre_open
        self._execution_limits = execution_limits
        self._thread: LoopThread | None = None
        self._core: Core | None = None
        self._runner: web.AppRunner | None = None
        self._bound = 0

    def __repr__(self) -> str:
        return f"SimulatedAlpaca(base_url={self.base_url!r}, key_id={self._key_id!r}, speed={self._speed})"

    # ------------------------------------------------------------------ life cycle
    def start(self) -> int:
        """Start the venue on its loop thread; returns the bound port."""
        if self._thread is not None:
            raise ConfigError("SimulatedAlpaca.start() was already called (create a new one)")
        self._thread = LoopThread("alpaca", "sim")
        self._thread.start(self._setup)
        _log.info("simulated Alpaca on {} (key id {}, {} bars, {})", self.base_url, self._key_id,
                  len(self._groups), "step mode" if self._speed is None else f"{self._speed}x")
        return self._bound

    async def _setup(self) -> None:
        thread = self._thread
        assert thread is not None
        core = Core(self._groups, config=self._config, key_id=self._key_id, secret_key=self._secret,
                    speed=self._speed, rate_limit_per_minute=self._rate, feed=self._feed,
                    plan=self._plan, spawn=lambda coro, name: thread.spawn(coro, name),
                    replay_from=self._replay_from, account_state=self._account_state,
                    history_bars=self._history, pre_open=self._pre_open,
                    execution_limits=self._execution_limits)
        app = web.Application()
        TradingApi(core).routes(app)
        MarketDataApi(core).routes(app)
        app.router.add_get("/stream", core.trade_hub.handle)
        app.router.add_get("/stream/", core.trade_hub.handle)  # alpaca-trade-api 3.2 connects here
        app.router.add_get("/v2/{feed:" + FEEDS + "}", core.data_hub.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"the simulated Alpaca cannot listen on {self._host}:{self._port} ({exc}); "
                              "choose another port (0 picks a free one)") from exc
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self._bound = sockets[0].getsockname()[1] if sockets else self._port
        self._core, self._runner = core, runner
        core.trade_hub.start()
        thread.spawn(core.replay(), "bar-replay")

    def close(self) -> None:
        """Stop serving and join the loop thread; idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.close(self._shutdown, timeout=5.0)
        _log.info("simulated Alpaca stopped")

    async def _shutdown(self) -> None:
        core, runner = self._core, self._runner
        if core is not None:
            await core.trade_hub.drop()
            await core.data_hub.drop()
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ addresses and keys
    @property
    def port(self) -> int:
        return self._bound

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._bound}"

    @property
    def trade_stream_url(self) -> str:
        return f"ws://{self._host}:{self._bound}/stream"

    @property
    def data_stream_url(self) -> str:
        return f"ws://{self._host}:{self._bound}/v2/{self._feed}"

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def secret_key(self) -> str:
        return self._secret

    # ------------------------------------------------------------------ control
    def _call(self, fn: Any, timeout: float = _CALL_TIMEOUT) -> Any:
        if self._thread is None or self._core is None:
            raise ConfigError("the simulated Alpaca is not running; call start() first")
        return self._thread.call(fn, timeout)

    def inject(self, kind: str, **params: Any) -> None:
        """Apply a scripted fault now (see :mod:`.faults` for the kinds); thread-safe."""
        if kind not in KINDS:
            check_fault(kind, params)
        core = self._core
        self._call(core.inject(kind, params))  # type: ignore[union-attr]
        if kind == "wash_trade_check":
            on = bool(params.get("on", True))
            self._call(lambda: setattr(core.venue, "wash_trade_check", on))  # type: ignore[union-attr]

    def advance(self) -> None:
        """Step mode: release the next bar without a GET /v2/clock."""
        self._call(lambda: self._core.advance())  # type: ignore[union-attr]

    def wait_finished(self, timeout: float) -> bool:
        """Block until every bar was replayed (True) or ``timeout`` seconds passed (False)."""
        core = self._core
        if core is None or self._thread is None:
            return False
        future = self._thread.submit(core.finished.wait())
        try:
            future.result(timeout)
            return True
        except TimeoutError:
            future.cancel()
            return False

    # ------------------------------------------------------------------ read-only views (tests)
    def wait_until(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """Block until ``predicate(state)`` holds (re-checked whenever the venue changes); returns
        the state. Raises ``TimeoutError`` after ``timeout`` seconds. See :meth:`state`."""
        core = self._core
        if core is None or self._thread is None:
            raise ConfigError("the simulated Alpaca is not running; call start() first")

        async def wait() -> dict[str, Any]:
            await core.wait_until(lambda: bool(predicate(self._read_state())), timeout)
            return self._read_state()

        return self._thread.call(wait(), timeout + 1.0)

    def state(self) -> dict[str, Any]:
        """Counters for synchronising tests: listeners, subscribers, bars sent, clock calls, REST
        requests (``rest_requests``: each one the rate limit counted; a ``rate_limit_storm`` 429 is not)."""
        return self._call(self._read_state)

    def _read_state(self) -> dict[str, Any]:
        core = self._core
        assert core is not None
        return {
            "trade_listeners": len(core.trade_hub.listeners),
            "trade_connections": core.trade_hub.connections,
            "trade_updates_sent": core.trade_hub.sent,
            "trade_updates_published": core.trade_hub.published,
            "data_clients": len(core.data_hub.clients),
            "muted_sockets": sum(c.muted for c in (*core.data_hub.clients, *core.trade_hub.listeners)),
            "data_connections": core.data_hub.connections,
            "bar_subscribers": core.data_hub.subscribed("bars"),
            "data_subscribers": {c: core.data_hub.subscribed(c) for c in ("quotes", "trades", "updatedBars", "dailyBars")},
            "bars_sent": core.data_hub.bars_sent,
            "bar_index": core.bar_index,
            "clock_calls": core.clock_calls,
            "rest_requests": core.bucket.taken,
            "now": core.now(),
            "finished": core.finished.is_set(),
            "skipped_outside_hours": core.skipped_outside_hours,
            "faults_applied": list(core.faults.applied),
            "submit_faults_left": len(core.faults.submit_faults),  # armed, no POST /v2/orders yet
        }

    def orders_received(self) -> list[dict[str, Any]]:
        """Every order the venue accepted, in arrival order: its JSON, perf_counter_ns, bar."""
        def read() -> list[dict[str, Any]]:
            core = self._core
            assert core is not None
            return [{"order": payloads.order_json(core.venue.orders[oid]), "received_ns": ns, "bar": bar}
                    for oid, ns, bar in core.received]
        return self._call(read)

    def orders(self) -> list[dict[str, Any]]:
        """All orders (legs and replaced ones included) as Alpaca JSON, in creation order."""
        return self._call(lambda: [payloads.order_json(o) for o in self._core.venue.orders.values()])  # type: ignore[union-attr]

    def replaces_received(self) -> list[tuple[str, Any]]:
        """Every PATCH /v2/orders/{id} body that reached the order's checks (refused there too:
        unknown, not open, partly filled), in arrival order: (the order id, its ``ReplaceForm``:
        ``qty``, prices, ``client_order_id``). A body refused as a form (``parse_replace``) is not
        listed."""
        return self._call(lambda: list(self._core.venue.replaces_received))  # type: ignore[union-attr]

    def fills(self) -> list[FillRecord]:
        return self._call(lambda: list(self._core.venue.fills))  # type: ignore[union-attr]

    def fail_activities(self, count: int, status: int = 503) -> None:
        """The next ``count`` GET /v2/account/activities[/...] are answered ``status`` with Alpaca's
        JSON error body: a venue that cannot list executions right now."""
        self._call(lambda: self._core.venue.activity_errors.extend([status] * count))  # type: ignore[union-attr]

    def account(self) -> dict[str, Any]:
        """Cash, equity and positions ``{symbol: (qty, avg_cost)}`` straight from the matching core."""
        def read() -> dict[str, Any]:
            ex = self._core.venue.exchange  # type: ignore[union-attr]
            return {"cash": ex.cash, "equity": ex.equity, "positions": dict(ex.positions)}
        return self._call(read)

    def latency(self) -> list[dict[str, Any]]:
        """Per bar: perf_counter_ns of "bar sent" and of the first order received while it was current."""
        return self._call(lambda: self._core.latency())  # type: ignore[union-attr]


__all__ = ["SimulatedAlpaca", "generate_keys", "load_fault_plan"]
