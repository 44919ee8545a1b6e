"""Review regression: the journal's write lock is not held while the fill barrier waits (it used to
stay open from the bar's row through settle(), and an operator's halt failed after 5 s)."""
from __future__ import annotations

import queue
import sqlite3
import threading
from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig

from ml4t_live.errors import ConfigError
from ml4t_live.events import BarClosed
from ml4t_live.journal.operator_access import read_only, set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, bar


class BlockingEvents:
    """A venue's event queue whose blocking ``get`` waits (up to its timeout) for an event, as a
    remote venue's does; ``waiting`` is set once a ``get`` found nothing and waits."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()
        self.waiting = threading.Event()

    def put(self, item) -> None:
        self.items.put(item)

    def get_nowait(self):
        return self.items.get_nowait()

    def get(self, timeout: float | None = None):
        if self.items.empty():
            self.waiting.set()
        return self.items.get(timeout=timeout)


def test_halt_during_the_fill_barrier(tmp_path):
    """The operator halts once the barrier waits for an unacknowledged market order; the venue
    fills the order only after the halt returned. Proved in the order of events, not on a clock:
    the barrier can end (by the fill) only after the halt, so a halt that succeeds did not wait
    for the barrier to end. With the write lock held through the barrier the halt fails at
    SQLite's busy timeout (5 s), and only then does the fill end the barrier."""
    venue = FakeVenue(fill_on_wait=False)  # the market order is never acknowledged by itself
    venue.events = BlockingEvents()
    broker = VenueBroker(venue, strategy_id="lk", state_dir=tmp_path)
    broker.connect(BacktestConfig())
    b = bar(datetime(2024, 1, 2, 14, 30, tzinfo=UTC), {"AAA": 100.0})
    broker.open_bar(BarClosed(b.timestamp, b.data, b.context, False))
    broker.begin_bar(b)
    broker.submit_order("AAA", 10)
    broker.end_bar(b)
    (placed,) = venue.placed
    b2 = bar(datetime(2024, 1, 2, 14, 31, tzinfo=UTC), {"AAA": 100.0})
    broker.open_bar(BarClosed(b2.timestamp, b2.data, b2.context, False))  # BEGIN; INSERT bar 2
    settled = threading.Event()
    outcome = {}

    def operator():
        try:
            if not venue.events.waiting.wait(30):
                outcome["error"] = "the barrier never waited"
                return
            set_trading_state(broker.link.journal.path, "HALTED", "operator")
            outcome["ok"] = not settled.is_set()  # the barrier was still waiting
        except (ConfigError, sqlite3.OperationalError) as exc:
            outcome["error"] = str(exc)
        finally:
            venue.fill(placed)  # the venue answers: the barrier can end

    th = threading.Thread(target=operator, name="operator")
    th.start()
    try:
        left = broker.settle(60.0)  # the fill barrier waits for the unacknowledged market order
    finally:
        settled.set()
        th.join(30)
    journal = read_only(broker.link.journal.path)
    try:
        state = journal.meta("trading_state")
    finally:
        journal.close()
    broker.close()
    assert not th.is_alive()
    assert outcome == {"ok": True}, outcome  # halted while the barrier waited, not after it
    assert left == 0  # the barrier ended by the fill sent after the halt, not by its timeout
    assert state == "HALTED"
