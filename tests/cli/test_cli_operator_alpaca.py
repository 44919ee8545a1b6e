"""``ml4t-live status`` / ``orders`` / ``flatten`` / ``cancel-all`` against the simulated Alpaca.

Runs and operator commands go through the real alpaca-py clients (tests/cli/conftest.py's
fixtures: a step-mode simulator, keys in the environment).
"""

from __future__ import annotations

from tests.cli.cli_support import MONDAY_OPEN, alpaca_venue
from tests.support.cli_output import json_output


def test_status_splits_the_strategys_positions_from_external_ones(cli, traded_alpaca):
    day = MONDAY_OPEN.date().isoformat()
    result = cli("status", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper", "--day", day, "--json")
    assert result.exit_code == 0, result.output
    facts = json_output(result)
    assert facts["connection"]["connected"] and facts["trading_state"]["state"] == "ACTIVE"
    assert [(p["asset"], p["strategy"], p["external"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 10.0, 7.0, 17.0), ("MSFT", 5.0, 0.0, 5.0)]
    assert sorted((o["owner"], o["quantity"]) for o in facts["open_orders"]) == [
        ("external", 3.0), ("strategy", 3.0)]
    assert sorted((f["asset"], f["quantity"]) for f in facts["fills_today"]["fills"]) == [
        ("AAPL", 10.0), ("MSFT", 5.0)]
    table = cli("status", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper")
    assert table.exit_code == 0, table.output
    assert "max_orders_per_minute" in table.output and "external" in table.output  # the default limits


def test_orders_lists_open_orders_with_their_owner(cli, traded_alpaca):
    result = cli("orders", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(r["owner"] for r in json_output(result)["open_orders"]) == ["external", "strategy"]
