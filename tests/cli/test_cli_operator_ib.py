"""``ml4t-live status`` / ``orders`` / ``flatten`` / ``cancel-all`` against the simulated IB Gateway.

Runs go through the real ib_async client (tests/cli/conftest.py's fixtures); the operator
commands connect with their own client id while the strategy's journal says what it owns.
"""

from __future__ import annotations

import json
import os

import pytest

from ml4t_live.journal import Journal, journal_path, state_dir
from tests.cli.cli_support import TRADED_IB_ERRORS
from tests.support.cli_output import error_lines, json_output

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test

#: IB's "Order Canceled" confirmation: ib_async logs it at ERROR (cancel-all cancels on purpose);
#: ib_async's own lines when the unreachable-venue test connects to a closed port
IB_ERRORS_EXPECTED = TRADED_IB_ERRORS


def test_status_splits_the_strategys_positions_from_external_ones_and_lists_orders_fills_pnl(cli, traded_ib):
    result = cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper",
                 "--day", "2024-03-04", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    facts = json_output(result)
    assert facts["connection"]["connected"] and facts["connection"]["account"] == "DU1234567"
    assert facts["running_pid"] is None
    assert facts["trading_state"] == {"state": "ACTIVE", "reason": ""}
    assert [(p["asset"], p["strategy"], p["external"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 10.0, 7.0, 17.0), ("MSFT", 5.0, 0.0, 5.0)]
    owners = sorted((o["owner"], o["quantity"], o["limit"]) for o in facts["open_orders"])
    assert owners == [("external", 3.0, 1.0), ("strategy", 3.0, 1.0)]
    mine = next(o for o in facts["open_orders"] if o["owner"] == "strategy")
    assert mine["client_order_id"].startswith("keeper-")
    fills = facts["fills_today"]["fills"]
    assert sorted((f["asset"], f["quantity"]) for f in fills) == [("AAPL", 10.0), ("MSFT", 5.0)]
    pnl = {r["asset"]: r for r in facts["pnl"]["by_asset"]}
    aapl_fill = next(f for f in fills if f["asset"] == "AAPL")
    assert pnl["AAPL"]["avg_cost"] == pytest.approx(aapl_fill["price"])
    assert pnl["AAPL"]["unrealised"] == pytest.approx(10 * (pnl["AAPL"]["mark"] - aapl_fill["price"]))
    assert facts["pnl"]["realised"] == 0.0 and "max_orders_per_minute" in {x["limit"] for x in facts["limits"]}  # the defaults
    # the same as tables
    table = cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper")
    assert table.exit_code == 0, table.output
    assert "trading state: ACTIVE" in table.output and "max_orders_per_minute" in table.output  # the default limits
    assert "external" in table.output and "not running" in table.output
    assert not error_lines(table.output), table.output


def test_status_shows_a_halt_a_running_holder_and_the_limits_the_engine_reports(cli, traded_ib):
    assert cli("halt", "--strategy-id", "keeper", "--reason", "desk says stop").exit_code == 0
    path = journal_path(state_dir(), "ib", "DU1234567", "keeper")
    held = Journal.open(path)  # as a running strategy holds it
    try:
        held.set_meta("risk_usage", json.dumps([{"limit": "max_position_value", "value": 50000, "usage": 0.4},
                                                {"limit": "max_orders_per_minute", "value": 30, "usage": None}]))  # fmt: skip
        facts = json_output(cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json"))
        table = cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper")
    finally:
        held.close()
    assert facts["trading_state"] == {"state": "HALTED", "reason": "desk says stop"}
    assert facts["running_pid"] == os.getpid()
    assert [(x["limit"], x["usage"]) for x in facts["limits"]] == [("max_position_value", 0.4),
                                                                   ("max_orders_per_minute", None)]  # fmt: skip
    assert "trading state: HALTED (desk says stop)" in table.output
    assert f"running (pid {os.getpid()})" in table.output
    assert "max_position_value" in table.output and "no limits configured" not in table.output


def test_orders_lists_open_orders_with_their_owner(cli, traded_ib):
    result = cli("orders", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json")
    assert result.exit_code == 0, result.output
    rows = json_output(result)["open_orders"]
    assert sorted(r["owner"] for r in rows) == ["external", "strategy"]
    table = cli("orders", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper")
    assert "keeper-" in table.output and "external" in table.output


def test_status_of_an_unreachable_venue_shows_the_journal_and_exits_3(cli, traded_ib):
    traded_ib.close()
    result = cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json")
    assert result.exit_code == 3, result.output
    facts = json_output(result)
    assert not facts["connection"]["connected"] and facts["connection"]["error"]
    assert [(p["asset"], p["strategy"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 10.0, None), ("MSFT", 5.0, None)]
