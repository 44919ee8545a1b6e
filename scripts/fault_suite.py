#!/usr/bin/env python
"""The crash-and-fault scoreboard (issue 9): every scenario through the real ib_async / alpaca-py
clients against the simulated venues, scored on the catalogue's seven invariants.

    .venv/bin/python scripts/fault_suite.py                 # every scenario, both venues
    .venv/bin/python scripts/fault_suite.py --venue ib      # ib | alpaca | all
    .venv/bin/python scripts/fault_suite.py --only kill     # names containing "kill"
    .venv/bin/python scripts/fault_suite.py --fast --json   # the test suite's subset, as JSON

Exit code 0 when every scenario passes every invariant, 1 otherwise (2: bad arguments).
What each scenario does and the invariants: docs/reliability.md, scripts/faults/*.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger

from scripts.faults.board import as_json, row, run_all, select, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue", choices=("ib", "alpaca", "all"), default="all")
    parser.add_argument("--only", help="run only scenarios whose name contains this text")
    parser.add_argument("--fast", action="store_true", help="only the subset the test suite runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", type=Path, help="copy each scenario's folder (outputs, journal) here")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    scenarios = select(args.venue, args.only, args.fast)
    if args.list:
        for s in scenarios:
            print(f"{s.name:<34} {s.venue:<6} {s.ref:<10} {s.what}")
        return 0
    if not scenarios:
        print("no scenario matches", file=sys.stderr)
        return 2
    logger.remove()  # the simulators log in this process; keep only their warnings on stderr
    logger.add(sys.stderr, level="WARNING", diagnose=False)
    logger.enable("ml4t_live")  # the library is silent by default; the suite reads the simulators' fault lines
    progress = None if args.json else (lambda r: print(row(r), file=sys.stderr, flush=True))
    results = run_all(scenarios, progress, args.keep)
    print(as_json(results) if args.json else table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
