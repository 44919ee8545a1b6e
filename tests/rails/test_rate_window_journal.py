"""The order-rate window in the journal: each counted command keeps the time the limit recorded,
a refused one keeps none, and a restart's rails start from the last minute of them (the whole
path through the CLI and the venues: tests/cli/test_cli_rate_restart.py)."""

from __future__ import annotations

import sqlite3

from ml4t_live.journal import Journal
from ml4t_live.journal.link import JournalLink
from ml4t_live.rails import JournaledRails
from ml4t_live.risk import RiskConfig


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
