"""Selecting scenarios, running them, and printing the scoreboard (text table or JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from .cases_halt import HALT_CASES
from .cases_replace import REPLACE_CASES
from .cases_runtime import RUNTIME_CASES
from .cases_venue import ALPACA_CASES, IB_CASES
from .runner import Result, Scenario, execute
from .score import INVARIANTS

ALL: list[Scenario] = [*IB_CASES, *ALPACA_CASES, *RUNTIME_CASES, *HALT_CASES, *REPLACE_CASES]


def select(venue: str = "all", only: str | None = None, fast: bool = False) -> list[Scenario]:
    names = {s.name for s in ALL}
    if len(names) != len(ALL):
        raise ValueError("two scenarios share a name")
    chosen = [s for s in ALL if venue in ("all", s.venue) and (not fast or s.fast)]
    if only:
        chosen = [s for s in chosen if only in s.name]
    return chosen


def run_all(scenarios: Iterable[Scenario], progress: Callable[[Result], None] | None = None,
            keep: Path | None = None) -> list[Result]:  # fmt: skip
    results = []
    for s in scenarios:
        result = execute(s, keep)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def row(result: Result) -> str:
    cells = []
    for name in INVARIANTS:
        check = result.checks.get(name)
        cells.append("ERROR" if check is None else ("PASS" if check.ok else "FAIL"))
    return f"{result.scenario.name:<34} {result.scenario.venue:<6} " + " ".join(f"{c:<8}" for c in cells) + \
        f" {result.seconds:6.1f}s"


def table(results: list[Result]) -> str:
    head = f"{'scenario':<34} {'venue':<6} " + " ".join(f"{n:<8}" for n in INVARIANTS) + "    time"
    lines = [head, "-" * len(head)] + [row(r) for r in results]
    failed = [r for r in results if not r.ok]
    lines.append("-" * len(head))
    per = {n: sum(1 for r in results if r.checks.get(n) and r.checks[n].ok) for n in INVARIANTS}
    lines.append(f"{'PASS per invariant':<41} " + " ".join(f"{per[n]:>2}/{len(results):<5}" for n in INVARIANTS))
    lines.append(f"{len(results) - len(failed)} of {len(results)} scenarios pass every invariant")
    if failed:
        lines += ["", "Numbers behind every FAIL / ERROR:"]
        for r in failed:
            if r.error:
                lines.append(f"  {r.scenario.name}: ERROR {r.error}")
            for name, check in r.checks.items():
                if not check.ok:
                    lines.append(f"  {r.scenario.name} {name}: {check.detail}")
    lines += ["", "Numbers of every scenario:"]
    for r in results:
        lines.append(f"  {r.scenario.name} ({r.scenario.ref}): {r.scenario.what}")
        for name, check in r.checks.items():
            lines.append(f"      {name:<9} {'PASS' if check.ok else 'FAIL'}  {check.detail}")
        for run in r.runs:
            code = "killed by the suite" if run.exit_code is None else f"exit {run.exit_code}"
            lines.append(f"      run {run.label}: {code}, {run.seconds:.1f}s (budget {run.budget:.0f}s)")
    return "\n".join(lines)


def as_json(results: list[Result]) -> str:
    return json.dumps([{
        "scenario": r.scenario.name, "venue": r.scenario.venue, "ref": r.scenario.ref, "what": r.scenario.what,
        "ok": r.ok, "error": r.error, "seconds": round(r.seconds, 2),
        "checks": {n: {"ok": c.ok, "detail": c.detail} for n, c in r.checks.items()},
        "runs": [{"label": x.label, "exit_code": x.exit_code, "seconds": round(x.seconds, 2)} for x in r.runs],
    } for r in results], indent=2)  # fmt: skip
