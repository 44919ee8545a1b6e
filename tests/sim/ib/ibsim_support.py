"""Helpers for the simulated IB Gateway tests: recorded-style bars, a real ib_async client on
its own LoopThread, and a backtest of the same orders for parity checks."""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from ib_async import IB
from ml4t.backtest import BacktestConfig, DataFeed, Engine, OrderSide, OrderType, Strategy

from ml4t_live.bridge import LoopThread

START = datetime(2024, 1, 3, 14, 30, tzinfo=UTC)  # a Wednesday, 09:30 New York
# (open, high, low, close) per minute; MSFT is AAPL shifted by +200
AAPL = [
    (100.0, 101.0, 99.0, 100.5),
    (100.5, 101.5, 100.0, 101.0),
    (101.0, 103.0, 100.5, 102.5),
    (102.5, 103.0, 98.0, 99.0),
    (99.0, 100.0, 97.0, 98.0),
    (98.0, 99.5, 97.5, 99.0),
    (99.0, 102.0, 98.5, 101.5),
    (101.5, 104.0, 101.0, 103.5),
    (103.5, 105.0, 103.0, 104.5),
    (104.5, 105.0, 102.0, 102.5),
]
SLOTS = 12  # 5-second bars per 1-minute bar
_ids = itertools.count(1)
#: per client loop: set each time ib_async has handled incoming data (its IB.updateEvent)
_DATA_HANDLED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)


def make_bars(n: int = len(AAPL), symbols: tuple[str, ...] = ("AAPL", "MSFT")) -> pl.DataFrame:
    rows = []
    for i, (o, h, lo, c) in enumerate(AAPL[:n]):
        for k, sym in enumerate(symbols):
            shift = 200.0 * k
            rows.append({
                "timestamp": START + timedelta(minutes=i), "symbol": sym, "open": o + shift,
                "high": h + shift, "low": lo + shift, "close": c + shift,
                "volume": float(1000 + 37 * i + k),
            })  # fmt: skip
    return pl.DataFrame(rows)


class IBClient:
    """One real ``ib_async.IB`` on its own loop thread; every use runs on that loop."""

    def __init__(self, port: int, client_id: int = 1) -> None:
        self.port, self.client_id = port, client_id
        self.thread = LoopThread("ibtest", f"client{client_id}-{next(_ids)}").start()
        self.ib: IB | None = None

    def connect(self, timeout: float = 5.0, **kwargs: Any) -> IB:
        async def go() -> IB:
            self.ib = watched(IB())
            await self.ib.connectAsync("127.0.0.1", self.port, clientId=self.client_id,
                                       timeout=timeout, **kwargs)  # fmt: skip
            return self.ib

        return self.thread.call(go(), timeout + 10)

    def run(self, fn: Callable[[IB], Awaitable[Any]], timeout: float = 15.0) -> Any:
        async def go() -> Any:
            assert self.ib is not None
            return await fn(self.ib)

        return self.thread.call(go(), timeout)

    def close(self) -> None:
        async def go() -> None:
            if self.ib is not None and self.ib.isConnected():
                self.ib.disconnect()

        try:
            self.thread.call(go(), 5)
        finally:
            self.thread.close()


def watched(ib: IB) -> IB:
    """Make :func:`until` on this loop re-check its condition whenever ``ib`` has handled
    incoming data or lost its connection. Call on the client's loop, for every ``IB`` made."""
    handled = _DATA_HANDLED.setdefault(asyncio.get_running_loop(), asyncio.Event())
    ib.updateEvent += handled.set
    ib.disconnectedEvent += handled.set
    return ib


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait (bounded) for a condition that ib_async's own handlers make true: checked again each
    time a :func:`watched` client on this loop has handled incoming data (``IB.updateEvent``) or
    disconnected, not by polling. Everything here runs on the loop's one thread, so no update is
    missed between the check and the wait."""
    handled = _DATA_HANDLED[asyncio.get_running_loop()]
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                handled.clear()
                await handled.wait()
    except TimeoutError:
        raise AssertionError(f"{what}: not true after {timeout:g}s") from None


async def advance(ib: IB, rt: list, slots: int = SLOTS) -> None:
    """Step mode: say "caught up" and wait until the next bar's 5-second bars arrived."""
    n = len(rt)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
    await until(lambda: len(rt) >= n + slots, what=f"{slots} more real-time bars")


async def stock(ib: IB, symbol: str):
    from ib_async import Stock

    [contract] = await asyncio.wait_for(ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD")), 5)
    return contract


# ----------------------------------------------------------------------------- backtest parity
@dataclass(frozen=True)
class Planned:
    """An order placed while bar ``bar`` is current (in on_data(bar) of the backtest)."""

    bar: int
    asset: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None


class _Script(Strategy):
    def __init__(self, plan: list[Planned]) -> None:
        self.plan, self.bar = plan, -1

    def on_data(self, timestamp, data, context, broker) -> None:
        self.bar += 1
        for p in self.plan:
            if p.bar == self.bar:
                broker.submit_order(p.asset, p.quantity, p.side, p.order_type, p.limit_price,
                                    p.stop_price, p.trail_amount)  # fmt: skip


def _backtest(bars: pl.DataFrame, plan: list[Planned], config: BacktestConfig | None):
    from ml4t_live.sim.bars import load_bars

    cfg = config or BacktestConfig(calendar=None)
    return Engine(DataFeed(prices_df=load_bars(bars)), _Script(plan), cfg).run()


def backtest_commission(bars: pl.DataFrame, plan: list[Planned], config: BacktestConfig | None = None) -> float:
    return float(sum(f.commission for f in _backtest(bars, plan, config).fills))


def backtest_fills(bars: pl.DataFrame, plan: list[Planned], config: BacktestConfig | None = None):
    """``[(timestamp, asset, side, quantity, price)]`` of ml4t.backtest on the same bars."""
    result = _backtest(bars, plan, config)
    return sorted(
        (f.timestamp, f.asset, "BOT" if f.side is OrderSide.BUY else "SLD", float(f.quantity),
         round(float(f.price), 6))
        for f in result.fills
    )  # fmt: skip
