"""``ml4t-live cancel-all`` / ``flatten`` against the simulated Alpaca (alpaca-py): only what the
strategy owns is acted on; another strategy's order on the account stays."""

from __future__ import annotations

import json
import textwrap

from tests.cli.cli_support import alpaca_venue
from tests.support.cli_output import json_output


def _open_owners(cli, sim) -> list[str]:
    facts = json_output(cli("status", *alpaca_venue(sim), "--strategy-id", "keeper", "--json"))
    return sorted(o["owner"] for o in facts["open_orders"] if "not open at the venue" not in o["status"])


def test_cancel_all_of_a_stopped_strategy_cancels_only_its_own_orders(cli, traded_alpaca):
    assert _open_owners(cli, traded_alpaca) == ["external", "strategy"]
    refused = cli("cancel-all", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper")
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    result = cli("cancel-all", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert [r["outcome"] for r in report["orders"]] == ["cancelled at the venue"]
    assert _open_owners(cli, traded_alpaca) == ["external"]
    facts = json_output(cli("status", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper", "--json"))
    assert facts["trading_state"]["state"] == "HALTED"


def test_flatten_closes_only_the_strategys_own_positions_at_its_next_bar(cli, traded_alpaca, tmp_path):
    result = cli("flatten", "--strategy-id", "keeper", "--broker", "alpaca", "--yes")
    assert result.exit_code == 0, result.output
    again = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", "qty=10", "--broker", "alpaca", "--host",
                traded_alpaca.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session", "--max-bars", 2,
                "--strategy-id", "keeper", "--open-orders-at-end", "keep")  # fmt: skip
    assert again.exit_code == 0, again.output
    facts = json_output(cli("status", *alpaca_venue(traded_alpaca), "--strategy-id", "keeper", "--json"))
    assert [(p["asset"], p["strategy"], p["external"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 0.0, 7.0, 7.0)]
    assert _open_owners(cli, traded_alpaca) == ["external"] and facts["trading_state"]["state"] == "HALTED"


LATE_BUYER = """
from ml4t.backtest import OrderType, Strategy

class LateBuyer(Strategy):
    \"\"\"At the end of its run: a limit buy of 3 AAPL 2% above the last price, left working (the
    run keeps its open orders): the next bar's open fills it.\"\"\"

    def on_data(self, timestamp, data, context, broker):
        pass

    def on_end(self, broker):
        broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT,
                            limit_price=round(broker.get_last_price("AAPL") * 1.02, 2))
"""


def test_cancel_all_reports_an_order_that_filled_before_its_cancel_took_effect_as_filled(cli, sim, tmp_path):
    """Alpaca answers the DELETE 204 and the order fills at the next bar's open while the cancel is
    pending (``lose_cancel`` with ``step``: the fill wins the race). The venue then no longer lists
    it: before, cancel-all reported "cancelled at the venue" for an order that had bought 3 AAPL."""
    (tmp_path / "late.py").write_text(textwrap.dedent(LATE_BUYER))
    run = cli("run", f"{tmp_path / 'late.py'}:LateBuyer", "--broker", "alpaca", "--host", sim.base_url,
              "--symbols", "AAPL", "--bar-size", "1min", "--no-session", "--max-bars", 2, "--strategy-id",
              "late", "--open-orders-at-end", "keep")  # fmt: skip
    assert run.exit_code == 0, run.output
    assert [o["status"] for o in sim.orders()] == ["new"]  # working at the venue
    sim.inject("lose_cancel", step=True)
    result = cli("cancel-all", *alpaca_venue(sim), "--strategy-id", "late", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    [outcome] = [r["outcome"] for r in report["orders"]]
    assert outcome.startswith("filled 3 at the venue before its cancel took effect"), outcome
    assert [o["status"] for o in sim.orders()] == ["filled"]
