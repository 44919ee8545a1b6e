"""FaultPlan: due() consumes matching faults; TOML loading with clear ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.sim.faults import Fault, FaultPlan, load_fault_plan

KINDS = {"disconnect", "reject", "partial_fill"}


def test_due_fires_once_when_its_condition_holds() -> None:
    plan = FaultPlan([Fault("disconnect", at_bar=3, seconds=1.5), Fault("reject", after_orders=1)])
    assert plan.due("disconnect", bar_index=2) is None
    assert plan.due("reject", bar_index=5) is None  # no order index given: not an order check
    assert plan.due("reject", order_index=0) is None
    fault = plan.due("disconnect", bar_index=4)  # reached (a check may land past at_bar)
    assert fault is not None and (fault.kind, fault.seconds) == ("disconnect", 1.5)
    assert plan.due("disconnect", bar_index=5) is None  # consumed
    assert plan.due("reject", order_index=1) is not None
    assert len(plan) == 0


def test_count_unconditional_and_combined_faults() -> None:
    plan = FaultPlan(
        [Fault("reject", count=2, params={"reason": "margin"}), Fault("partial_fill", at_bar=1, after_orders=2)]
    )
    first, second = plan.due("reject"), plan.due("reject")
    assert first is second and first is not None and first.params == {"reason": "margin"}
    assert plan.due("reject") is None  # count 2: both firings used
    assert plan.due("partial_fill", bar_index=1, order_index=1) is None
    assert plan.due("partial_fill", bar_index=0, order_index=2) is None
    assert plan.due("partial_fill", bar_index=1, order_index=2) is not None
    assert plan.pending == []
    with pytest.raises(ConfigError, match="count"):
        FaultPlan([Fault("reject", count=0)])


def test_load_toml(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        """
[[fault]]
kind = "disconnect"
at_bar = 5
seconds = 2

[[fault]]
kind = "reject"
after_orders = 1
count = 2
params = { reason = "insufficient margin" }
""",
        encoding="utf-8",
    )
    plan = load_fault_plan(path, valid_kinds=KINDS)
    assert plan.pending == [
        Fault("disconnect", at_bar=5, seconds=2.0),
        Fault("reject", after_orders=1, count=2, params={"reason": "insufficient margin"}),
    ]
    assert len(FaultPlan.load(path)) == 2  # without valid_kinds any kind is accepted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[fault]]\nkind = "explode"\n', "unknown kind 'explode'; valid kinds: disconnect, partial_fill, reject"),
        ("[[fault]]\nat_bar = 1\n", "'kind' is required; valid kinds"),
        ('[[fault]]\nkind = "reject"\nat_bar = -1\n', "'at_bar' must be an integer >= 0"),
        ('[[fault]]\nkind = "reject"\ncount = 0\n', "'count' must be an integer >= 1"),
        ('[[fault]]\nkind = "reject"\nseconds = "soon"\n', "'seconds' must be a number"),
        ('[[fault]]\nkind = "reject"\nwhen = 3\n', r"unknown key\(s\) \['when'\]"),
        ('[[fault]]\nkind = "reject"\nparams = 3\n', "'params' must be a table"),
        ('[faults]\nkind = "reject"\n', "unknown top-level key"),
        ('fault = "reject"\n', "array of tables"),
        ("[[fault]\n", "not valid TOML"),
    ],
)
def test_bad_plans_raise_config_error_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        FaultPlan.load(path, valid_kinds=KINDS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read fault plan"):
        load_fault_plan(tmp_path / "absent.toml")
