"""Help texts a newcomer relies on: --param's metavar, every preset, sim --speed's real default,
--host per venue, the fault kinds (sim --list-faults), and every [venue] key in the docs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ml4t_live.cli.options import build_config
from ml4t_live.cli.runner import _FAULT_EXAMPLES
from ml4t_live.sim.alpaca.faults import KINDS as ALPACA_KINDS
from ml4t_live.sim.alpaca.server import load_fault_plan
from ml4t_live.sim.ib.faults import KINDS as IB_KINDS
from ml4t_live.sim.ib.faults import load_faults
from ml4t_live.venues.alpaca.entry import VENUE_KEYS as ALPACA_KEYS
from ml4t_live.venues.ib.entry import VENUE_KEYS as IB_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _help(cli, *command: str) -> str:
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # click re-wraps the lines


def test_param_shows_name_equals_value(cli):
    text = _help(cli, "run")
    assert "-p, --param NAME=VALUE" in text
    assert "list[str]" not in text


def test_the_preset_help_lists_every_preset_and_each_one_works(cli):
    text = _help(cli, "run")
    listed = re.search(r"fill timing\): (.*?) \[default: default\]", text).group(1).split(", ")
    assert {"default", "realistic", "ibkr_us_stocks_fixed", "zipline_strict", "vectorbt"} <= set(listed)
    for name in listed:
        build_config(name, None, None)  # a ConfigError would fail the test


def test_sim_speed_says_the_default_is_step_mode_and_host_says_url_for_alpaca(cli):
    assert "(default: step mode: the next bar as soon as the connected client has caught up" in _help(cli, "sim")
    run = _help(cli, "run")
    assert "ib: the host of TWS / IB Gateway (default 127.0.0.1" in run
    assert "alpaca: the endpoint URL (e.g. http://127.0.0.1:8765" in run
    assert "client_id = 7, warmup_bars = 30" in run and 'docs/operations.md, "The [venue] table"' in run


@pytest.mark.parametrize(("venue", "kinds", "load"), [("ib", IB_KINDS, load_faults),
                                                      ("alpaca", ALPACA_KINDS, load_fault_plan)])  # fmt: skip
def test_list_faults_prints_every_kind_and_an_example_that_loads(cli, tmp_path, venue, kinds, load):
    result = cli("sim", venue, "--list-faults")
    assert result.exit_code == 0, result.output
    for kind in kinds:
        assert re.search(rf"^{kind} +\S", result.output, re.M), kind
    example = result.output.split("every other parameter goes in params:")[1]
    assert example.strip() == _FAULT_EXAMPLES[venue]
    path = tmp_path / "scenario.toml"
    path.write_text(example)
    tomllib.loads(example)
    assert load(str(path))  # the venue's own loader accepts it (it raises ConfigError otherwise)


def test_every_venue_key_is_in_the_docs_table():
    table = DOCS.read_text().split("## The `[venue]` table")[1].split("\n## ")[0]
    documented = set(re.findall(r"`(\w+)`", "\n".join(l.split("|")[1] for l in table.splitlines() if l.startswith("| `"))))
    assert set(IB_KEYS) | set(ALPACA_KEYS) <= documented
