"""The simulated venues a scenario runs against, and what the scoreboard reads back from them.

A :class:`World` starts one simulator in this process (its own ``ml4t-*-sim`` loop thread, port
0), hands out the ``ml4t-live run`` arguments that reach it, lets a scenario inject faults or
trade from a foreign client, and reads the venue's state as a :class:`VenueView`: every order
the venue holds keyed by its client order id (IB ``orderRef``, Alpaca ``client_order_id``),
every execution, and the account's positions.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from ml4t.backtest import BacktestConfig

IB_START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # Monday 09:30 New York
ALPACA_START = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # a regular NYSE session
SYMBOLS = ("AAPL", "MSFT")
KEY_ID = "PKQZXJWVKQZXJWVQKZXJ"
SECRET = "sEcReTqZxJwV" + "kQzX" * 7 + "jWvTail"


@dataclass(frozen=True)
class VOrder:
    cid: str
    venue_id: str
    status: str
    filled: float
    asset: str


@dataclass(frozen=True)
class VExec:
    exec_id: str
    cid: str
    asset: str
    quantity: float  # signed
    price: float


@dataclass
class VenueView:
    orders: list[VOrder] = field(default_factory=list)
    executions: list[VExec] = field(default_factory=list)
    positions: dict[str, float] = field(default_factory=dict)
    swallowed: list[str] = field(default_factory=list)  # IB black-holed orderRefs


def backtest_config(participation: float | None) -> tuple[BacktestConfig, Any]:
    """The simulators' matching config and execution limits: with ``participation``, an order
    fills at most that share of a bar's volume a bar (the bars' ~1000 shares: 0.003 is 3 a bar),
    in parts over bars; without, at once."""
    if participation is None:
        return BacktestConfig(), None
    from ml4t.backtest.execution.limits import VolumeParticipationLimit

    return BacktestConfig(partial_fills_allowed=True), VolumeParticipationLimit(max_participation=participation)


def make_bars(start: datetime, n: int, days: int = 1) -> pl.DataFrame:
    """``n`` one-minute bars per symbol from ``start`` (a zig-zag drift); with ``days=2`` the
    last half of them fall at the next session's open (DAY orders expire in between)."""
    rows = []
    stamps = [start + timedelta(minutes=i) for i in range(n)]
    if days == 2:
        half = n // 2
        close = start.replace(hour=20, minute=60 - half)
        stamps = [close + timedelta(minutes=i) for i in range(half)]
        stamps += [start + timedelta(days=1, minutes=i) for i in range(n - half)]
    for k, asset in enumerate(SYMBOLS):
        price = 100.0 * (k + 1)
        for i, ts in enumerate(stamps):
            close = round(price + (0.5 if i % 3 else -0.3), 2)
            rows.append({"timestamp": ts, "asset": asset, "open": price,
                         "high": round(max(price, close) + 0.25, 2),
                         "low": round(min(price, close) - 0.25, 2), "close": close,
                         "volume": 1000.0 + 10 * i})  # fmt: skip
            price = close
    return pl.DataFrame(rows)


class World:
    venue = ""

    def close(self) -> None:
        raise NotImplementedError

    def view(self) -> VenueView:
        raise NotImplementedError

    def advance(self) -> None:
        raise NotImplementedError


class IBWorld(World):
    venue = "ib"

    def __init__(self, bars: Path, *, speed: float | None = None, faults: list[dict] | None = None,
                 warmup: int = 0, participation: float | None = None) -> None:  # fmt: skip
        from ml4t_live.sim.ib import SimulatedIBGateway

        config, limits = backtest_config(participation)
        self.sim = SimulatedIBGateway(bars, speed=speed, config=config, faults=faults, warmup_bars=warmup,
                                      execution_limits=limits)  # fmt: skip
        self.port = self.sim.start()
        self._foreign = None

    def cli_args(self) -> list[str]:
        return ["--broker", "ib", "--port", str(self.port), "--bar-size", "1min"]

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def inject(self, kind: str, **params: Any) -> None:
        self.sim.inject(kind, **params)

    def view(self) -> VenueView:
        orders = [VOrder(o.order_ref, str(o.order_id), o.completed_status or o.status, o.filled,
                         o.info.symbol) for o in self.sim.orders]  # fmt: skip
        execs = [VExec(e.exec_id, e.order_ref, e.info.symbol,
                       e.shares if e.side == "BOT" else -e.shares, e.price)
                 for e in self.sim.fills]  # fmt: skip
        positions = {a: q for a, (q, _) in self.sim.account.positions.items() if abs(q) > 1e-9}
        return VenueView(orders, execs, positions, [ref for _, _, ref in self.sim.black_holed])

    def foreign_trade(self, asset: str, quantity: float) -> None:
        """Another client of the same account (client id 77, no orderRef) sends a market order."""
        from ib_async import MarketOrder, Stock

        async def place(ib) -> None:
            contract = Stock(asset, "SMART", "USD")
            await ib.qualifyContractsAsync(contract)
            ib.placeOrder(contract, MarketOrder("BUY" if quantity > 0 else "SELL", abs(quantity)))
            await ib.reqCurrentTimeAsync()

        self._as_client(77, place)

    def advance(self) -> None:
        """Time passes while no strategy runs: release the next bar (step mode waits for a
        ``reqCurrentTime``; a killed process never sends it)."""
        self._as_client(78, lambda ib: ib.reqCurrentTimeAsync())

    def _as_client(self, client_id: int, action: Any) -> None:
        from ib_async import IB

        from ml4t_live.bridge import LoopThread

        async def session() -> None:
            ib = IB()
            await ib.connectAsync("127.0.0.1", self.port, clientId=client_id, timeout=5)
            try:
                await action(ib)
            finally:
                ib.disconnect()

        loop = LoopThread("faults", "client")
        loop.start()
        try:
            loop.call(session(), timeout=15)
        finally:
            loop.close()

    def close(self) -> None:
        self.sim.close()


class AlpacaWorld(World):
    venue = "alpaca"

    def __init__(self, bars: pl.DataFrame, *, speed: float | None = None, faults: list[dict] | None = None,
                 rate_limit: int | None = None, participation: float | None = None) -> None:  # fmt: skip
        from ml4t_live.sim.alpaca import SimulatedAlpaca

        config, limits = backtest_config(participation)
        self.sim = SimulatedAlpaca(bars, config=config, key_id=KEY_ID, secret_key=SECRET, speed=speed,
                                   rate_limit_per_minute=rate_limit, faults=faults,
                                   execution_limits=limits)  # fmt: skip
        self.sim.start()

    def cli_args(self) -> list[str]:
        return ["--broker", "alpaca", "--host", self.sim.base_url]

    def env(self) -> dict[str, str]:
        from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV

        return {**os.environ, KEY_ENV: KEY_ID, SECRET_ENV: SECRET}

    def inject(self, kind: str, **params: Any) -> None:
        self.sim.inject(kind, **params)

    def view(self) -> VenueView:
        raw = self.sim.orders()
        cids = {o["client_order_id"]: o["client_order_id"] for o in raw}
        # the legs of a bracket / oco get venue-made client order ids: name them after their
        # parent (same symbol, class and creation time), "<parent>#leg-<venue id>"
        parents = {(o["symbol"], o["order_class"], o["created_at"]): o["client_order_id"] for o in raw
                   if o["order_class"] in ("bracket", "oco", "oto") and not _is_uuid(o["client_order_id"])}
        for o in raw:
            parent = parents.get((o["symbol"], o["order_class"], o["created_at"]))
            if parent and _is_uuid(o["client_order_id"]):
                cids[o["client_order_id"]] = f"{parent}#leg-{o['id'][:8]}"
        orders = [VOrder(cids[o["client_order_id"]], o["id"], o["status"], float(o["filled_qty"] or 0),
                         o["symbol"]) for o in raw]  # fmt: skip
        execs = [VExec(f.execution_id, cids.get(f.client_order_id, f.client_order_id), f.symbol,
                       f.qty if f.side == "buy" else -f.qty, f.price) for f in self.sim.fills()]  # fmt: skip
        positions = {a: q for a, (q, _) in self.sim.account()["positions"].items() if abs(q) > 1e-9}
        return VenueView(orders, execs, positions)

    def advance(self) -> None:
        """Time passes while no strategy runs: release the next bar (step mode)."""
        self.sim.advance()

    def foreign_trade(self, asset: str, quantity: float) -> None:
        """A manual order from the same account (alpaca-py, client order id ``manual-...``)."""
        from alpaca.trading.client import TradingClient
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        client = TradingClient(KEY_ID, SECRET, paper=True, url_override=self.sim.base_url)
        client.submit_order(MarketOrderRequest(
            symbol=asset, qty=abs(quantity), side=OrderSide.BUY if quantity > 0 else OrderSide.SELL,
            time_in_force=TimeInForce.DAY, client_order_id=f"manual-{asset}-{abs(quantity):g}",
        ))  # fmt: skip

    def close(self) -> None:
        self.sim.close()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
