"""The order-rate window in the journal: each counted command keeps the time the limit recorded,
a refused one keeps none, and a restart's rails start from the last minute of them (the whole
path through the CLI and the venues: tests/cli/test_cli_rate_restart.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.events import BarClosed
from ml4t_live.journal import Journal
from ml4t_live.journal.link import JournalLink
from ml4t_live.rails import JournaledRails
from ml4t_live.risk import RiskConfig
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar


def _sends(journal: Journal, stamps: list[float | None]) -> None:
    for seq, at in enumerate(stamps, 1):
        journal.append_command(1, seq, "submit", f"c{seq}", {}, {"status": "sent"}, at)
    journal.commit()


def test_recent_sends_are_the_last_minute_before_the_latest_send(tmp_path):
    journal = Journal.open(tmp_path / "j.journal")
    _sends(journal, [5.0, 10.0, 20.0, None, 75.0, 79.0, 79.0, None, None])
    assert journal.recent_sends(60.0) == [20.0, 75.0, 79.0, 79.0]  # (19, 79]: 10 is out, 20 in
    journal.close()


def test_a_restart_starts_the_rate_limit_from_the_journaled_sends(tmp_path):
    journal = Journal.open(tmp_path / "j.journal")
    _sends(journal, [100.0, 101.5, 103.0])
    rails = JournaledRails.open(RiskConfig(max_orders_per_minute=3), journal)
    rate = rails.gate.limits.rate
    assert rate.in_last_minute(110.0) == 3
    assert rate.refusal(159.0).startswith("max_orders_per_minute: 3 orders in the last 60 s")
    assert rate.refusal(160.0) is None  # the send at 100 left the window: (100, 160]
    journal.close()


def test_a_command_the_rails_refused_keeps_no_send_time(tmp_path):
    journal = Journal.open(tmp_path / "j.journal")
    link = JournalLink(journal)
    link.start_bar(1, {}, {}, False)
    order = {"asset": "A", "side": "BUY", "quantity": 1.0, "order_type": "MARKET"}
    assert link.command("submit", "sent", order, lambda: {"status": "sent"}, 50.0) == {"status": "sent"}

    def refuse():
        link.not_sent()
        return {"status": "rejected", "code": "max_orders_per_minute", "reason": "too fast"}

    link.command("submit", "refused", order, refuse, 51.0)
    link.command("cancel", "sent", {}, lambda: True)  # a cancel is not counted
    assert journal.recent_sends(60.0) == [50.0]
    journal.close()


def test_a_journal_from_before_send_times_opens_and_counts_nothing(tmp_path):
    path = tmp_path / "old.journal"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE commands (n INTEGER NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, cid TEXT NOT NULL,
                               args BLOB NOT NULL, result BLOB NOT NULL, PRIMARY KEY (n, seq));
        INSERT INTO commands VALUES (1, 1, 'submit', 'c1', x'00', x'00');
    """)  # fmt: skip
    db.close()
    journal = Journal.open(path)
    assert journal.recent_sends(60.0) == []
    journal.append_command(2, 1, "submit", "c2", {}, {"status": "sent"}, 7.0)  # the column was added
    journal.commit()
    assert journal.recent_sends(60.0) == [7.0]
    journal.close()


class ChangeOnCatchUpBars(Strategy):
    """Bar 1: a resting limit buy; then, on catch-up bars, a change of it each bar."""

    def __init__(self) -> None:
        self.n, self.limit, self.changed = 0, None, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        else:
            self.changed.append(broker.update_order(self.limit.order_id, quantity=5 + self.n))


def test_a_change_on_a_catch_up_bar_is_counted_and_journaled_with_its_send_time(tmp_path):
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    bars = [bar(start + timedelta(seconds=5 * i), {"AAA": 100.0}) for i in range(3)]
    feed = [bars[0]] + [BarClosed(b.timestamp, b.data, b.context, True) for b in bars[1:]]  # catch-up bars
    strategy = ChangeOnCatchUpBars()
    broker = VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="cu", state_dir=tmp_path,
                         risk={"max_orders_per_minute": 60})  # fmt: skip
    LiveEngine(strategy, broker, ListFeed(feed), session_dir=False, settle_timeout=0.5,
               open_orders_at_end="keep").run()  # fmt: skip
    assert strategy.changed == [True, True]  # a change is judged (and counted) on a catch-up bar
    [path] = tmp_path.glob("*.journal")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT kind, sent_at FROM commands ORDER BY rowid").fetchall()
    assert [kind for kind, _ in rows] == ["submit", "update", "update"]
    assert all(at is not None for _, at in rows), rows  # so a restart's rate window holds all three
