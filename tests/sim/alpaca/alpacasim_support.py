"""Helpers for the simulated-Alpaca tests (imported by conftest.py and the test modules).

Streams: alpaca-py's ``run()`` blocks and makes its own loop, so each stream's ``_run_forever()``
coroutine runs on a project :class:`LoopThread` instead. Stopping: ``stop_ws()`` alone takes up to
5 s (the consume loop only checks the stop flag after a 5 s ``recv`` timeout); the quick path is
``stop_ws()`` then ``close()`` on the stream's own loop: the pending ``recv`` fails at once, the
error handler sees ``_should_run`` False and ``_run_forever`` returns (a few ms).
"""

from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

__all__ = [
    "DAY1", "DAY2", "TIMEOUT", "StockDataStream", "StockHistoricalDataClient", "StreamHarness", "TradingClient",
    "TradingStream", "make_bars", "price", "settle", "step",
]

from ml4t_live.bridge import LoopThread
from ml4t_live.sim.alpaca import SimulatedAlpaca

DAY1 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
DAY2 = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
TIMEOUT = 5.0


def price(symbol: str, i: int) -> dict[str, float]:
    """Bar ``i`` of a symbol: open = base + i, high = open + 1, low = open - 1, close = open + 0.5."""
    base = {"AAPL": 100.0, "MSFT": 400.0}[symbol]
    o = base + i
    return {"open": o, "high": o + 1.0, "low": o - 1.0, "close": o + 0.5}


def make_bars(minutes_day1: int = 10, minutes_day2: int = 3, *, pre_market: bool = True) -> pl.DataFrame:
    """AAPL and MSFT minute bars: ``minutes_day1`` from 09:30 on 2024-03-04, then ``minutes_day2``
    from 09:30 on 2024-03-05 (continuing the price index); one pre-market bar that is not replayed."""
    rows: list[dict[str, Any]] = []
    stamps = [DAY1 + timedelta(minutes=i) for i in range(minutes_day1)]
    stamps += [DAY2 + timedelta(minutes=i) for i in range(minutes_day2)]
    if pre_market:
        rows += [{"timestamp": DAY1 - timedelta(hours=1), "symbol": s, **price(s, 0), "volume": 10.0}
                 for s in ("AAPL", "MSFT")]
    for i, ts in enumerate(stamps):
        for symbol in ("AAPL", "MSFT"):
            rows.append({"timestamp": ts, "symbol": symbol, **price(symbol, i), "volume": 1000.0 + i})
    return pl.DataFrame(rows)


class StreamHarness:
    """Runs an alpaca-py stream's ``_run_forever()`` on a LoopThread; collects what its handler gets."""

    def __init__(self, stream: TradingStream | StockDataStream, role: str) -> None:
        self.stream = stream
        self.received: queue.Queue[Any] = queue.Queue()
        self._thread = LoopThread("alpacatest", role)
        self._future: Any = None

    async def handler(self, item: Any) -> None:
        self.received.put(item)

    def start(self) -> StreamHarness:
        self._thread.start()
        self._future = self._thread.submit(self.stream._run_forever())
        return self

    def get(self, timeout: float = TIMEOUT) -> Any:
        return self.received.get(timeout=timeout)

    def get_event(self, event: str, timeout: float = TIMEOUT) -> Any:
        """The next trade update whose event is ``event`` (earlier ones are skipped)."""
        while True:
            update = self.get(timeout)
            if str(getattr(update.event, "value", update.event)) == event:
                return update

    def stop(self) -> None:
        async def quick_stop() -> None:
            await self.stream.stop_ws()
            await self.stream.close()

        try:
            self._thread.call(quick_stop(), TIMEOUT)
            self._future.result(TIMEOUT)
        finally:
            self._thread.close(timeout=TIMEOUT)


def step(sim: SimulatedAlpaca, trading: TradingClient) -> dict[str, Any]:
    """Advance one bar the way the adapter does (GET /v2/clock) and wait until it was sent."""
    before = sim.state()["bar_index"]
    trading.get_clock()
    return sim.wait_until(lambda s: s["bar_index"] > before or s["finished"], TIMEOUT)


def settle(sim: SimulatedAlpaca) -> dict[str, Any]:
    """Wait until every trade update queued so far has been written to the sockets."""
    return sim.wait_until(lambda s: s["trade_updates_sent"] >= s["trade_updates_published"], TIMEOUT)
