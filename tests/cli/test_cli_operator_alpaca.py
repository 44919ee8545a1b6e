"""``ml4t-live status`` / ``orders`` / ``flatten`` / ``cancel-all`` against the simulated Alpaca.

Runs and operator commands go through the real alpaca-py clients (tests/cli/test_cli_alpaca.py's
fixtures: a step-mode simulator, keys in the environment).
"""

from __future__ import annotations

import json
import textwrap

import pytest
from test_cli_alpaca import MONDAY_OPEN, cli, keys, sim  # noqa: F401

KEEPER = """
from ml4t.backtest import OrderType, Strategy

class Keeper(Strategy):
    \"\"\"Bar 1: buy QTY AAPL and 5 MSFT, and a far AAPL limit (it stays working).\"\"\"

    def __init__(self, qty=10):
        self.qty = qty
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            broker.submit_order("AAPL", self.qty)
            if self.qty == 10:
                broker.submit_order("MSFT", 5)
            broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=1.0)
"""


@pytest.fixture
def traded(cli, sim, tmp_path):  # noqa: F811
    """Strategy 'keeper' owns 10 AAPL + 5 MSFT and a working limit; 'other' owns 7 AAPL and
    its own limit (external to 'keeper')."""
    (tmp_path / "keeper.py").write_text(textwrap.dedent(KEEPER))
    for sid, qty in (("keeper", 10), ("other", 7)):
        run = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", f"qty={qty}", "--broker", "alpaca",
                  "--host", sim.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session",
                  "--max-bars", 2, "--strategy-id", sid, "--open-orders-at-end", "keep")  # fmt: skip
        assert run.exit_code == 0, run.output
    return sim


def _json(result) -> dict:
    return json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])


def _venue(sim) -> tuple[str, ...]:
    return ("--broker", "alpaca", "--host", sim.base_url)


def test_status_splits_the_strategys_positions_from_external_ones(cli, traded):  # noqa: F811
    day = MONDAY_OPEN.date().isoformat()
    result = cli("status", *_venue(traded), "--strategy-id", "keeper", "--day", day, "--json")
    assert result.exit_code == 0, result.output
    facts = _json(result)
    assert facts["connection"]["connected"] and facts["trading_state"]["state"] == "ACTIVE"
    assert [(p["asset"], p["strategy"], p["external"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 10.0, 7.0, 17.0), ("MSFT", 5.0, 0.0, 5.0)]
    assert sorted((o["owner"], o["quantity"]) for o in facts["open_orders"]) == [
        ("external", 3.0), ("strategy", 3.0)]
    assert sorted((f["asset"], f["quantity"]) for f in facts["fills_today"]["fills"]) == [
        ("AAPL", 10.0), ("MSFT", 5.0)]
    table = cli("status", *_venue(traded), "--strategy-id", "keeper")
    assert table.exit_code == 0, table.output
    assert "max_orders_per_minute" in table.output and "external" in table.output  # the default limits


def test_orders_lists_open_orders_with_their_owner(cli, traded):  # noqa: F811
    result = cli("orders", *_venue(traded), "--strategy-id", "keeper", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(r["owner"] for r in _json(result)["open_orders"]) == ["external", "strategy"]
