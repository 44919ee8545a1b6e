"""Shared set-up for the Alpaca modify tests: a limit order of 20 AAPL at 150 (``REQUEST``, the market
near 100) on a simulated Alpaca that fills 3 a bar, and a gateway connected to it with its log lines
(``rig``); each ``Rig.bar`` moves the replay on one bar (step mode). Real alpaca-py against
SimulatedAlpaca."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca_helpers import collect, config_for
from ml4t.backtest import OrderSide, OrderType
from runtime_support import filling_sim, log_lines, trading_client

from ml4t_live.events import OrderFilled, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

REQUEST = OrderRequest("t-p", "AAPL", OrderSide.BUY, 20, OrderType.LIMIT, limit_price=150.0)


@dataclass
class Rig:
    sim: SimulatedAlpaca
    gw: AlpacaGateway
    raw: TradingClient
    lines: list[str]

    def bar(self, filled_to: float | None = None) -> None:
        """One bar; ``filled_to``: wait until the gateway reported t-p filled that much."""
        self.raw.get_clock()
        if filled_to is not None:
            collect(self.gw.events, lambda seen: any(
                isinstance(e, OrderPartiallyFilled | OrderFilled) and e.cumulative_quantity >= filled_to
                for e in seen))  # fmt: skip

    def reprice_with_slow_replace(self, bars: int, *, filled_quantity: float = 3, quantity: float = 20,
                                  **fault: Any) -> None:  # fmt: skip
        """t-p (``quantity``, 20 by default) placed and filled 3 at the first bar, then re-priced
        to 149 while Alpaca leaves the replace pending ``bars`` bars (``slow_replace``; ``fault``:
        its other options, ``fail``, ``stale_old``); ``filled_quantity``: what the modify says t-p
        has filled."""
        request = replace(REQUEST, quantity=quantity)
        self.gw.place(request)
        self.bar(filled_to=3)
        self.sim.inject("slow_replace", bars=bars, **fault)
        self.gw.modify(replace(request, limit_price=149.0, filled_quantity=filled_quantity))

    def venue_id(self, cid: str) -> str:
        return str(self.raw.get_order_by_client_id(cid).id)

    def bought(self) -> float:
        return sum(f.qty for f in self.sim.fills())

    def orders(self) -> dict[str, tuple[str, str, str]]:
        return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in self.sim.orders()}

    def logged(self, level: str) -> list[str]:
        return [line for line in self.lines if line.startswith(level)]


@contextmanager
def rig(bars: int = 20, **config: Any) -> Iterator[Rig]:
    sim = filling_sim(bars)
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))
    lines: list[str] = []
    try:
        with log_lines(lines):
            gw.connect()
            yield Rig(sim, gw, trading_client(sim), lines)
    finally:
        gw.close()
        sim.close()
