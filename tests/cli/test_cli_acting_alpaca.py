"""``ml4t-live cancel-all`` / ``flatten`` against the simulated Alpaca (alpaca-py): only what the
strategy owns is acted on; another strategy's order on the account stays."""

from __future__ import annotations

import json

from test_cli_alpaca import cli, keys, restore_loguru, sim  # noqa: F401
from test_cli_operator_alpaca import _json, _venue, traded  # noqa: F401


def _open_owners(cli, sim) -> list[str]:  # noqa: F811
    facts = _json(cli("status", *_venue(sim), "--strategy-id", "keeper", "--json"))
    return sorted(o["owner"] for o in facts["open_orders"] if "not open at the venue" not in o["status"])


def test_cancel_all_of_a_stopped_strategy_cancels_only_its_own_orders(cli, traded):  # noqa: F811
    assert _open_owners(cli, traded) == ["external", "strategy"]
    refused = cli("cancel-all", *_venue(traded), "--strategy-id", "keeper")
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    result = cli("cancel-all", *_venue(traded), "--strategy-id", "keeper", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert [r["outcome"] for r in report["orders"]] == ["cancelled at the venue"]
    assert _open_owners(cli, traded) == ["external"]
    facts = _json(cli("status", *_venue(traded), "--strategy-id", "keeper", "--json"))
    assert facts["trading_state"]["state"] == "HALTED"


def test_flatten_closes_only_the_strategys_own_positions_at_its_next_bar(cli, traded, tmp_path):  # noqa: F811
    result = cli("flatten", "--strategy-id", "keeper", "--broker", "alpaca", "--yes")
    assert result.exit_code == 0, result.output
    again = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", "qty=10", "--broker", "alpaca", "--host",
                traded.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session", "--max-bars", 2,
                "--strategy-id", "keeper", "--open-orders-at-end", "keep")  # fmt: skip
    assert again.exit_code == 0, again.output
    facts = _json(cli("status", *_venue(traded), "--strategy-id", "keeper", "--json"))
    assert [(p["asset"], p["strategy"], p["external"], p["venue"]) for p in facts["positions"]] == [
        ("AAPL", 0.0, 7.0, 7.0)]
    assert _open_owners(cli, traded) == ["external"] and facts["trading_state"]["state"] == "HALTED"
