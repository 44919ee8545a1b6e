"""Shared set-up for the shadow-journal tests (engine and CLI): the shadow config, a strategy with
internal state (``EveryThird``), one the operator halts from another process (``Halted``), the bars a
live feed delivers, and a shadow run on them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from ml4t.backtest import BacktestConfig, OrderType, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def config() -> BacktestConfig:
    return BacktestConfig(initial_cash=100_000.0, calendar=None)


class EveryThird(Strategy):
    """Buys each asset on every third bar and closes it on the next; a counter of bars seen is
    its internal state (a warm restart must rebuild it). ``fail_at``: raise on that bar."""

    def __init__(self, size: float = 10, fail_at: int = 0) -> None:
        self.size = size
        self.fail_at = fail_at
        self.seen = 0

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("crash")
        for asset in sorted(data):
            if broker.get_position(asset) is not None:
                broker.close_position(asset)
            elif self.seen % 3 == 0:
                broker.submit_order(asset, self.size)


def live_bars(n: int, start: int = 0) -> list:
    """Bars as a live feed delivers them (no recorded source): journaled whole."""
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0 + (i % 7), "BBB": 50.0 - (i % 5)})
            for i in range(start, n)]  # fmt: skip


def run_live(strategy, events, state_dir, **kwargs):
    broker = ShadowBroker(config(), state_dir=state_dir, **kwargs)
    return LiveEngine(strategy, broker, ListFeed(events), session_dir=False, strategy_id="l1").run()


class Halted(Strategy):
    """A working limit order on bar 1, a market buy on every bar; the operator halts the strategy
    from another process during bar 2."""

    def __init__(self, state_dir, halt_on: int = 2) -> None:
        self.state_dir = str(state_dir)
        self.halt_on = halt_on
        self.n = 0
        self.orders = []
        self.limit = None
        self.halt = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == self.halt_on:
            self.halt = subprocess.run(
                [sys.executable, "-m", "ml4t_live", "halt", "--strategy-id", "h1", "--state-dir", self.state_dir,
                 "--reason", "fat finger"], check=False, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        self.orders.append(broker.submit_order("AAA", 1))


def flat_bars(n: int) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)]
