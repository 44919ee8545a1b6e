"""Shared set-up for the Alpaca tests that run the runtime over a simulated Alpaca (and restart it
warm): a venue that fills an order a few shares a bar, the runtime run to a given minute with its
log kept, the strategies those tests trade, and another client of the venue (what happens while
no runtime runs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderType, Strategy
from ml4t.backtest.execution.limits import VolumeParticipationLimit

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

#: run 2's first live bar in the restarts that end run 1 at 14:33 (the replay repeats the bars up
#: to 14:32; the venue moved on meanwhile)
REPRICE_AGAIN = SESSION_OPEN + timedelta(minutes=5)


def filling_sim(n_bars: int, participation: float = 0.003) -> SimulatedAlpaca:
    """A started simulated Alpaca over ``n_bars`` AAPL minute bars (near 100), with no rate limit,
    that fills ``participation`` of a bar's ~1000 shares an order a bar (0.003: 3 a bar)."""
    sim = SimulatedAlpaca(minute_bars(n_bars, {"AAPL": 100.0}), config=BacktestConfig(partial_fills_allowed=True),
                          rate_limit_per_minute=None,
                          execution_limits=VolumeParticipationLimit(max_participation=participation))  # fmt: skip
    sim.start()
    return sim


@contextmanager
def log_lines(lines: list[str]) -> Iterator[list[str]]:
    """Appends every line logged at INFO or above to ``lines`` (as ``"<LEVEL> <message>"``) meanwhile."""
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)


def reported_external(lines: list[str]) -> list[str]:
    """The lines (of ``log_lines``) that report a position as external. A first look of the periodic
    reconciliation may catch a live fill at the venue before its trade update reaches the book
    ("AAPL looks external (journal 6, venue 9); looking again in 5s", INFO: seen under load with
    four workers beside two CPU burners); it is reported only when confirmed, or at the end of the
    run, at WARNING."""
    return [line for line in lines if line.startswith(("WARNING", "ERROR")) and "external" in line]


def run_runtime(
    sim: SimulatedAlpaca, state_dir, minutes: int, lines: list[str], strategy: Strategy, *, strategy_id: str, **kw
) -> AlpacaBroker:
    """One run of the runtime: ``strategy`` over AAPL until ``minutes`` after the session open, open
    orders kept at the end, journaled in ``state_dir``; its log in ``lines``; ``kw`` is
    :class:`AlpacaConfig`'s. Returns the run's broker."""
    with log_lines(lines):
        cfg = config_for(sim, **kw)
        broker = AlpacaBroker(cfg, strategy_id=strategy_id, state_dir=state_dir)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=minutes))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False,
                   settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    return broker


def trading_client(sim: SimulatedAlpaca) -> TradingClient:
    """Another client of ``sim`` (real alpaca-py): its ``get_clock()`` moves the step-mode replay on
    one bar."""
    return TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)


def repriced_then_away(sim: SimulatedAlpaca, state_dir, strategy: BuyThenReprice, bars_away: int = 1) -> str:
    """Run 1 of the restart tests (``strategy`` until 14:33 as ``awayr``: its limit order of 20
    filled 3 and was re-priced, r1 filled 3), then ``bars_away`` bars while no runtime runs.
    Returns our id of the order."""
    run_runtime(sim, state_dir, 3, [], strategy, strategy_id="awayr")
    (cid,) = [o["client_order_id"] for o in sim.orders() if ".r" not in o["client_order_id"]]
    raw = trading_client(sim)
    for _ in range(bars_away):
        raw.get_clock()
    return cid


class BuyOnce(Strategy):
    """``quantity`` AAPL at market on the session's second bar (a warm restart's replay repeats it)."""

    def __init__(self, quantity: float) -> None:
        self.quantity = quantity

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            broker.submit_order("AAPL", self.quantity)


class BuyThenReprice(Strategy):
    """20 AAPL limit 150 (the market is near 100) on the session's second bar; once it has filled
    part, re-priced to 149; at ``reprice_again_at`` (if given) to 148, noting what it had filled
    then in ``filled_at_second`` (a warm restart's replay repeats what came before it)."""

    def __init__(self, reprice_again_at: datetime | None = None) -> None:
        self.reprice_again_at = reprice_again_at
        self.order = None
        self.repriced = False
        self.filled_at_second = None

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.LIMIT, limit_price=150.0)
        elif self.order is not None and self.order.filled_quantity > 0 and not self.repriced:
            self.repriced = broker.update_order(self.order.order_id, limit_price=149.0)
        elif self.reprice_again_at is not None and timestamp == self.reprice_again_at:
            self.filled_at_second = self.order.filled_quantity
            broker.update_order(self.order.order_id, limit_price=148.0)
