"""Review regression: the journal's write lock is not held while the fill barrier waits (it used to
stay open from the bar's row through settle(), and an operator's halt failed after 5 s)."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig

from ml4t_live.events import BarClosed
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, bar


def test_halt_during_the_fill_barrier(tmp_path):
    venue = FakeVenue(fill_on_wait=False)  # the market order is never acknowledged
    broker = VenueBroker(venue, strategy_id="lk", state_dir=tmp_path)
    broker.connect(BacktestConfig())
    b = bar(datetime(2024, 1, 2, 14, 30, tzinfo=UTC), {"AAA": 100.0})
    broker.open_bar(BarClosed(b.timestamp, b.data, b.context, False))
    broker.begin_bar(b)
    broker.submit_order("AAA", 10)
    broker.end_bar(b)
    b2 = bar(datetime(2024, 1, 2, 14, 31, tzinfo=UTC), {"AAA": 100.0})
    broker.open_bar(BarClosed(b2.timestamp, b2.data, b2.context, False))  # BEGIN; INSERT bar 2
    outcome = {}

    def operator():
        t = time.monotonic()
        try:
            set_trading_state(broker.link.journal.path, "HALTED", "operator")
            outcome["ok"] = time.monotonic() - t
        except sqlite3.OperationalError as exc:
            outcome["error"] = f"{exc} after {time.monotonic() - t:.1f}s"

    th = threading.Thread(target=operator, name="operator")
    th.start()
    broker.settle(3.0)  # the fill barrier waits for the unacknowledged market order
    th.join(10)
    broker.close()
    assert "ok" in outcome, outcome
    assert outcome["ok"] < 1.0, outcome  # it did not wait for the barrier to end
