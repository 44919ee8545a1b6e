"""The two alpaca-py websockets, each on its own bridge loop thread.

alpaca-py's streams are built to own a loop (``run()`` calls ``asyncio.run``); here the bridge owns
every loop, so a session runs the stream's ``_run_forever()`` coroutine as a named task on its
:class:`~ml4t_live.bridge.LoopThread`. Rules this module applies (see the reference note §5, §6):

* subscribe **before** the stream runs: a ``StockDataStream`` that runs with nothing subscribed
  spins a core, and a ``subscribe_*`` call on a running stream blocks its own loop;
* ``start()`` returns once the first connection is authenticated (or raises ConnectionFailed);
* stop on the stream's own loop: ``stop_ws()`` then ``close()``, so stopping takes milliseconds
  instead of the ~5 s ``recv`` timeout of alpaca-py's ``stop()``;
* reconnects are alpaca-py's (re-auth, re-listen / re-subscribe the full set), with our backoff
  and jitter (:func:`backoff_delay`) in place of its defaults, so there is never a storm;
* every connection (trade stream: authenticated; data stream: subscription acknowledged) and
  every loss is observed (``_start_ws`` / ``_dispatch`` / ``close`` overrides) and reported on the session's queue, so the owner can backfill bars or re-sync orders.

The overrides touch four alpaca-py internals (``_run_forever``, ``_start_ws``,
``_dispatch``, ``_reconnect_delay``) on subclasses we own; alpaca-py is pinned to 0.44.x for that reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.stream import TradingStream
from loguru import logger

from ...bridge import LoopThread
from ...errors import ConnectionFailed
from .config import AlpacaConfig, RedactingLogger

_log = logger.bind(component="alpaca.session")


class _NormalClosureFilter(logging.Filter):
    """Drop alpaca-py's "websocket error, restarting connection" for a NORMAL closure (1000).

    We stop a stream by closing its socket on its own loop (fast); alpaca-py logs that clean
    close as an error before it sees it should stop. Real errors still pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("restarting" in message and "sent 1000 (OK)" in message)


for _name in ("alpaca.data.live.websocket", "alpaca.trading.stream"):
    logging.getLogger(_name).addFilter(_NormalClosureFilter())


def backoff_delay(config: AlpacaConfig, retries: int) -> float:
    """Exponential backoff (doubling from ``reconnect_initial_delay`` up to the cap), jittered down."""
    delay = min(
        config.reconnect_initial_delay * 2 ** max(0, retries - 1),
        config.reconnect_max_delay,
    )
    return delay * (1.0 - config.reconnect_jitter * random.random())


def websocket_params(config: AlpacaConfig) -> dict[str, Any]:
    """alpaca-py's own websocket defaults, plus a logger that scrubs the secret from frame logs."""
    return {
        "ping_interval": 10,
        "ping_timeout": 180,
        "max_queue": 1024,
        "logger": RedactingLogger("websockets.client", config.secrets()),
    }


class _Observed:
    """Mixin for an alpaca-py stream: report connections and losses to the owning session."""

    _ml4t_session: StreamSession

    def _reconnect_delay(self, retries: int) -> float:
        return backoff_delay(self._ml4t_session.config, retries)

    async def _start_ws(self) -> None:
        await super()._start_ws()  # type: ignore[misc]
        if not self._ml4t_session.ready_on_subscription:
            await self._ml4t_session._connected()

    async def close(self) -> None:
        was_open = getattr(self, "_ws", None) is not None
        await super().close()  # type: ignore[misc]
        if was_open:
            await self._ml4t_session._lost()


class _TradeStream(_Observed, TradingStream):
    pass


class _DataStream(_Observed, StockDataStream):
    async def _dispatch(self, msg: dict[str, Any]) -> None:
        await super()._dispatch(msg)
        if msg.get("T") == "subscription" and msg.get("bars"):
            await (
                self._ml4t_session._connected()
            )  # ready: the venue has our bar subscription


class StreamSession:
    """One alpaca-py stream on one loop thread; subclasses say what to subscribe and what to do."""

    role = "stream"
    ready_on_subscription = (
        False  # data: ready once the venue acknowledged the subscription
    )

    def __init__(self, config: AlpacaConfig) -> None:
        self.config = config
        self.thread = LoopThread("alpaca", self.role)
        self.connections = 0
        self.losses = 0
        self._stream: Any = None
        self._task: asyncio.Task[Any] | None = None
        self._first: asyncio.Event | None = None
        self._stopping = False

    # ------------------------------------------------------------------ engine thread
    def start(self) -> None:
        self.thread.start(self._setup, timeout=self.config.stream_start_timeout + 5.0)

    def call(self, target: Any, timeout: float | None = None) -> Any:
        return self.thread.call(
            target, self.config.request_timeout if timeout is None else timeout
        )

    def close(self) -> None:
        self.thread.close(self._shutdown, timeout=self.config.stream_stop_timeout)

    @property
    def events(self) -> Any:
        return self.thread.events

    # ------------------------------------------------------------------ loop thread
    def _make_stream(self) -> Any:
        raise NotImplementedError

    async def _setup(self) -> None:
        self._first = asyncio.Event()
        self._stream = self._make_stream()
        self._stream._ml4t_session = self
        self._task = self.thread.spawn(self._stream._run_forever(), "run")
        try:
            async with asyncio.timeout(self.config.stream_start_timeout):
                await self._first.wait()
        except TimeoutError:
            await self._stop_stream()
            raise ConnectionFailed(
                f"{self.thread.name}: no authenticated connection to "
                f"{self._endpoint()} within {self.config.stream_start_timeout:.1f}s "
                f"(check the endpoint, the key pair{self._hint()})"
            ) from None

    def _hint(self) -> str:
        return ""

    def _endpoint(self) -> str:
        return str(getattr(self._stream, "_endpoint", "?"))

    async def _connected(self) -> None:
        self.connections += 1
        _log.info("{} connected ({} connection(s))", self.thread.name, self.connections)
        if self._first is not None and not self._first.is_set():
            self._first.set()
            return
        self.thread.spawn(self._on_reconnected(), "resync")

    async def _lost(self) -> None:
        if self._stopping:
            return
        self.losses += 1
        _log.warning(
            "{} lost its connection; alpaca-py reconnects with backoff",
            self.thread.name,
        )
        await self._on_lost("websocket closed")

    async def _on_lost(self, reason: str) -> None:
        """Subclass hook (loop thread): report the loss."""

    async def _on_reconnected(self) -> None:
        """Subclass hook (loop thread): report, then backfill / re-sync what was missed."""

    async def force_reconnect(self) -> None:
        """Close the current socket (a silent one); alpaca-py then reconnects with backoff."""
        if self._stream is not None:
            await self._stream.close()

    async def _stop_stream(self) -> None:
        self._stopping = True
        if self._stream is None:
            return
        await self._stream.stop_ws()
        await self._stream.close()
        if self._task is not None and not self._task.done():
            try:
                async with asyncio.timeout(self.config.stream_stop_timeout):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                _log.warning(
                    "{}: stream task did not stop in time; cancelled", self.thread.name
                )

    async def _shutdown(self) -> None:
        await self._stop_stream()


class TradeUpdatesSession(StreamSession):
    """``trade_updates`` -> ``on_update(update)`` (a coroutine run on this loop)."""

    role = "trade-stream"

    def __init__(
        self,
        config: AlpacaConfig,
        on_update: Callable[[Any], Awaitable[None]],
        on_lost: Callable[[str], Awaitable[None]],
        on_reconnected: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(config)
        self._handler = on_update
        self._lost_cb = on_lost
        self._reconnected_cb = on_reconnected

    def _make_stream(self) -> Any:
        stream = _TradeStream(
            self.config.key_id,
            self.config.secret_key,
            paper=self.config.paper,
            url_override=self.config.trade_stream_url,
            websocket_params=websocket_params(self.config),
        )
        stream.subscribe_trade_updates(self._handler)  # not running yet: only registers
        return stream

    async def _on_lost(self, reason: str) -> None:
        await self._lost_cb(reason)

    async def _on_reconnected(self) -> None:
        await self._reconnected_cb()


class MarketDataSession(StreamSession):
    """Minute bars for ``symbols`` -> ``on_bar(bar)`` (a coroutine run on this loop)."""

    role = "data-stream"
    ready_on_subscription = True

    def _hint(self) -> str:
        return (
            f", and that your market-data plan includes the {self.config.feed!r} feed"
        )

    def __init__(
        self,
        config: AlpacaConfig,
        symbols: list[str],
        on_bar: Callable[[Any], Awaitable[None]],
        on_lost: Callable[[str], Awaitable[None]],
        on_reconnected: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(config)
        self.symbols = list(symbols)
        self._handler = on_bar
        self._lost_cb = on_lost
        self._reconnected_cb = on_reconnected

    def _make_stream(self) -> Any:
        stream = _DataStream(
            self.config.key_id,
            self.config.secret_key,
            feed=DataFeed(self.config.feed),
            url_override=self.config.data_stream_url,
            data_timeout=self.config.data_timeout,
            websocket_params=websocket_params(self.config),
        )
        stream.subscribe_bars(
            self._handler, *self.symbols
        )  # not running yet: only registers
        return stream

    async def _on_lost(self, reason: str) -> None:
        await self._lost_cb(reason)

    async def _on_reconnected(self) -> None:
        await self._reconnected_cb()
