"""What operator tools read from a journal: P&L by average cost, the day's fills, the limits."""

from __future__ import annotations

import json
from datetime import date

import pytest

from ml4t_live.journal import Journal
from ml4t_live.journal.views import fills_on, holder_pid, profit_and_loss, risk_usage


def _fill(asset, qty, price, ts="2024-03-04 14:31:00+00:00", commission=0.5):
    return {"asset": asset, "quantity": qty, "price": price, "commission": commission, "ts": ts}


def test_realised_and_unrealised_pnl_by_average_cost_through_a_flip():
    fills = [_fill("AAPL", 10, 100.0), _fill("AAPL", 10, 110.0),   # long 20 @ 105
             _fill("AAPL", -25, 120.0),                              # sell 20 (+300), short 5 @ 120
             _fill("MSFT", -3, 50.0)]  # fmt: skip
    pnl = profit_and_loss(fills, {"AAPL": 118.0})
    rows = {r["asset"]: r for r in pnl["by_asset"]}
    assert rows["AAPL"]["realised"] == pytest.approx(300.0)
    assert (rows["AAPL"]["quantity"], rows["AAPL"]["avg_cost"]) == (-5.0, 120.0)
    assert rows["AAPL"]["unrealised"] == pytest.approx(-5 * (118.0 - 120.0))
    assert pnl["unpriced"] == ["MSFT"] and pnl["commission"] == pytest.approx(2.0)


def test_an_unmarked_position_has_no_unrealised_pnl_rather_than_zero():
    pnl = profit_and_loss([_fill("MSFT", -3, 50.0), _fill("AAPL", 2, 10.0), _fill("AAPL", -2, 12.0)], {})
    rows = {r["asset"]: r for r in pnl["by_asset"]}
    assert rows["MSFT"]["unrealised"] is None  # unknown, not 0: no mark (a replay's journal keeps none)
    assert rows["AAPL"]["unrealised"] == 0.0  # flat: nothing open
    assert pnl["unrealised"] == 0.0 and pnl["unpriced"] == ["MSFT"]  # the total of the marked ones, said so


def test_adopted_positions_are_the_starting_book():
    pnl = profit_and_loss([_fill("SPY", -4, 410.0)], {"SPY": 405.0}, adopted=[("SPY", 10.0, 400.0)])
    row = pnl["by_asset"][0]
    assert (row["realised"], row["quantity"], row["unrealised"]) == (pytest.approx(40.0), 6.0, pytest.approx(30.0))


def test_fills_of_one_day_and_the_limits_the_engine_wrote(tmp_path):
    fills = [_fill("A", 1, 1.0, "2024-03-04 20:59:00+00:00"), _fill("A", -1, 1.0, "2024-03-05 14:30:00+00:00")]
    assert fills_on(fills, date(2024, 3, 5)) == fills[1:]
    path = tmp_path / "x.journal"
    journal = Journal.open(path)
    try:
        assert risk_usage(journal) is None
        assert holder_pid(path) is not None  # this process holds it
        journal.set_meta("risk_usage", json.dumps([{"limit": "max_drawdown", "value": "5%", "usage": None}]))
        assert risk_usage(journal) == [{"limit": "max_drawdown", "value": "5%", "usage": None}]
        journal.set_meta("risk_usage", json.dumps({"not": "a list"}))
        with pytest.raises(ValueError, match="not a list"):
            risk_usage(journal)
    finally:
        journal.close()
    assert holder_pid(path) is None
