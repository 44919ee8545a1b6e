"""Shared set-up for the engine's cancel-resend tests: the operator halts a strategy whose limit
orders never fill (``HaltedLimits``), the runtime cancels them on a venue of cancel_venues.py, and
``run`` / ``drive`` return the INFO+ log lines; ``journal_of`` and ``alert_lines`` read the outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loguru import logger
from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import read_only, set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_venues import TimedVenue
from tests.engine.fake_clock import Clock
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def drive(strategy, broker: VenueBroker, bars: int, end: str) -> list[str]:
    """Run ``strategy`` on ``broker`` for ``bars`` one-minute bars; the INFO+ log lines."""
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(bars)])
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.1, open_orders_at_end=end).run()
    finally:
        logger.remove(sink)
    return lines


def run(venue: TimedVenue, bars: int, tmp_path, n: int = 1, end: str = "cancel", timer=None, **resends):
    strategy = HaltedLimits(tmp_path / "fake-DU0001-cr.journal", venue.clock, n)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock, **({"timer": timer} if timer else {}), **resends)
    return strategy, broker, drive(strategy, broker, bars, end)


def journal_of(tmp_path):
    journal = read_only(tmp_path / "fake-DU0001-cr.journal")
    try:
        return journal.intents(), journal.positions(), journal.fill_count()
    finally:
        journal.close()


def alert_lines(lines: list[str], cid: str) -> list[str]:
    """The ERROR ``ALERT`` lines about ``cid`` among ``drive``'s log lines."""
    return [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]


class HaltedLimits(Strategy):
    """``n`` limit buys (never reached) on the first bar, then the operator halts the strategy;
    each bar moves the clock on 30 s."""

    def __init__(self, journal, clock: Clock, n: int) -> None:
        self.journal, self.clock, self.n = journal, clock, n
        self.orders = []

    def on_data(self, timestamp, data, context, broker):
        if not self.orders:
            self.orders = [broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0 - i)
                           for i in range(self.n)]  # fmt: skip
            set_trading_state(self.journal, "HALTED", "operator")
        self.clock.now += 30.0
