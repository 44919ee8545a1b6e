"""Every loguru sink the package adds turns loguru's variable dump off (``diagnose=False``).

With loguru's default (``diagnose=True``) a logged traceback prints the value of every variable in
every frame; in an alpaca-py frame that includes the request headers, API secret included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ml4t_live

PACKAGE = Path(ml4t_live.__file__).parent


def _sink_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "logger"):
                calls.append((str(path.relative_to(PACKAGE)), node.lineno, node))
    return calls


def test_every_loguru_sink_of_the_package_has_diagnose_off() -> None:
    calls = _sink_calls()
    assert calls, "the CLI adds its sinks with logger.add(...): the scan found none"
    unsafe = [
        f"{where}:{line}" for where, line, call in calls
        if not any(k.arg == "diagnose" and isinstance(k.value, ast.Constant) and k.value.value is False
                   for k in call.keywords)
    ]  # fmt: skip
    assert unsafe == []
