"""The journal store on its own: round trips, the lock (also across processes), identities."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from ml4t.backtest import OrderSide

from ml4t_live.errors import ConfigError, JournalLocked
from ml4t_live.events import OrderAccepted, OrderCancelled, OrderFilled, OrderPartiallyFilled
from ml4t_live.journal import Journal, check_strategy_id, default_strategy_id, journal_path
from tests.support.strategies import Momentum


def test_bars_events_and_commands_round_trip_with_their_types(tmp_path):
    journal = Journal.open(tmp_path / "j.journal")
    ny = pd.Timestamp("2024-01-02 09:30", tz="America/New_York")
    utc = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
    data = {"AAA": {"price": np.float64(1.5), "volume": np.int64(7), "signals": {"z": 0.25}}}
    assert journal.append_bar(ny, data, {"vix": 12.0}, arrived=0.0) == 1
    assert journal.append_bar(utc, {"BBB": {"price": 2.0}}, {}, arrived=0.0) == 2
    fill = OrderFilled("c1", "E1", "AAA", OrderSide.BUY, 10.0, 1.5, utc, 0.5, 10.0)
    journal.append_event(2, OrderAccepted("c1", "V1"))
    journal.append_event(2, fill)
    journal.append_command(1, 1, "submit", "c1", {"asset": "AAA", "quantity": 10.0}, {"status": "sent"})
    journal.close()

    again = Journal.open(tmp_path / "j.journal")
    assert again.bars == 2
    rows = list(again.iter_bars())
    assert rows[0][1] == ny and isinstance(rows[0][1], pd.Timestamp) and str(rows[0][1].tz) == "America/New_York"
    assert rows[0][2] == {"AAA": {"price": 1.5, "volume": 7, "signals": {"z": 0.25}}} and rows[0][3] == {"vix": 12.0}
    assert rows[1][1] == utc and type(rows[1][1]) is datetime and rows[1][1].tzinfo is UTC
    assert again.events_by_bar() == {2: [OrderAccepted("c1", "V1"), fill]}
    assert again.commands() == {(1, 1): ("submit", "c1", {"asset": "AAA", "quantity": 10.0}, {"status": "sent"})}
    again.close()


def test_fill_events_are_the_journaled_executions_of_the_orders_asked_for_in_order(tmp_path):
    # reconcile read every event (events_by_bar: 1.47 s on a 300k-event journal) to find a few
    when = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    part = OrderPartiallyFilled("c1", "E1", "AAA", OrderSide.BUY, 4.0, 1.5, when, 0.5, 4.0)
    other = OrderFilled("c2", "E2", "AAA", OrderSide.BUY, 1.0, 1.5, when, 0.5, 1.0)
    rest = OrderFilled("c1", "E3", "AAA", OrderSide.BUY, 6.0, 1.5, when, 0.5, 10.0)
    journal = Journal.open(tmp_path / "j.journal")
    for n, event in enumerate([OrderAccepted("c1", "V1"), part, other, OrderCancelled("c3", "x"), rest]):
        journal.append_event(n, event)
    assert journal.fill_events(["c1"]) == [part, rest]  # not its acceptance, not c2's
    assert journal.fill_events({"c1", "c2", "c3"}) == [part, other, rest] and journal.fill_events([]) == []
    journal.close()


def test_fills_are_kept_once_per_execution_and_sum_to_the_position(tmp_path):
    journal = Journal.open(tmp_path / "j.journal")
    journal.append_fill(1, "E1", "c1", "AAA", 10.0, 1.0, 0.0, "t")
    journal.append_fill(1, "E1", "c1", "AAA", 10.0, 1.0, 0.0, "t")  # a replayed execution
    journal.append_fill(2, "E2", "c2", "AAA", -4.0, 1.0, 0.0, "t")
    assert journal.positions() == {"AAA": 6.0} and journal.exec_ids() == {"E1", "E2"}
    journal.close()


def test_a_second_opener_is_refused_in_this_process_and_in_another(tmp_path):
    path = tmp_path / "j.journal"
    journal = Journal.open(path)
    with pytest.raises(JournalLocked, match=r"another process \(pid \d+\) is running this strategy"):
        Journal.open(path)
    code = (
        "import sys\nfrom ml4t_live.journal import Journal\nfrom ml4t_live.errors import JournalLocked\n"
        f"try:\n    Journal.open({str(path)!r})\nexcept JournalLocked as e:\n    print(e); sys.exit(7)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other.returncode == 7, other.stderr
    assert "is locked" in other.stdout
    journal.close()
    Journal.open(path).close()  # free again once the holder closed it


def test_strategy_ids_differ_by_class_and_parameters_and_are_checked():
    class A(Momentum):
        def __init__(self, lookback: int = 10) -> None:
            self.lookback = lookback

    class B(A):
        pass

    assert default_strategy_id(A()) == default_strategy_id(A())  # stable: a restart finds its journal
    assert default_strategy_id(A()) != default_strategy_id(A(lookback=20))
    assert default_strategy_id(A()) != default_strategy_id(B())
    assert default_strategy_id(A()).startswith("A_")
    assert check_strategy_id("mom_1.v2") == "mom_1.v2"
    for bad in ("", "has-dash", "x" * 21, "sp ace"):
        with pytest.raises(ConfigError, match="strategy id"):
            check_strategy_id(bad)


def test_the_journal_path_names_venue_account_and_strategy(tmp_path, monkeypatch):
    assert journal_path(tmp_path, "ib", "DU1", "s1") == tmp_path / "ib-DU1-s1.journal"
    monkeypatch.delenv("ML4T_LIVE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert journal_path(None, "alpaca", "PA/9", "s") == tmp_path / "xdg" / "ml4t-live" / "alpaca-PA_9-s.journal"


def test_a_file_that_is_not_a_journal_is_a_clear_error(tmp_path):
    path = tmp_path / "j.journal"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable journal"):
        Journal.open(path)


def test_the_codec_keeps_what_strategies_put_in_bars():
    from datetime import date, timedelta
    from decimal import Decimal

    from ml4t_live.journal.codec import pack, unpack

    values = {"nat": pd.NaT, "dec": Decimal("1.10"), "f32": np.float32(1.5), "arr": np.array([1.0, 2.0]),
              "day": date(2024, 1, 2), "td": pd.Timedelta("1min"), "std": timedelta(seconds=3),
              "dt64": np.datetime64("2024-01-02T10:00"), "i64": np.int64(7)}  # fmt: skip
    back = unpack(pack(values))
    assert back["nat"] is pd.NaT and back["dec"] == Decimal("1.10") and back["f32"] == 1.5
    assert back["arr"].tolist() == [1.0, 2.0] and back["day"] == date(2024, 1, 2)
    assert back["td"] == pd.Timedelta("1min") and isinstance(back["td"], pd.Timedelta)
    assert back["std"] == timedelta(seconds=3) and not isinstance(back["std"], pd.Timedelta)
    assert back["dt64"] == pd.Timestamp("2024-01-02T10:00") and back["i64"] == 7
