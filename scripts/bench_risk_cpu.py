"""Count the machine instructions the risk rails add to a replay, per bar (valgrind).

``bench_risk.py`` times the rails, and on a shared machine its ratios move by 2-5 % from run to
run; ``bench_risk_steps.py`` counts Python bytecodes, which leave out the work done in C. This
counts what the CPU executes: the same replay as ``bench_risk.py --default-path`` (LiveEngine +
ReplayFeed + ShadowBroker, journal and session recording on), each run in a fresh process under
valgrind's callgrind, counting the instructions of the engine thread (the process's main thread:
the strategy, the backtest broker, the rails, the journal and the recorder run there; the feed's
thread does the same work in every mode, and how often its loop wakes depends on timing). Two
lengths per mode, the same data made for both (the longer run's bars; the shorter replays its
first bars), so start-up and data making cancel: (long - short) / extra bars is the count per
bar. The hash seed is fixed, polars runs one thread and the shadow journal's time-based commits
are off, so a count does not depend on the machine's load or speed (two runs of the same replay
differed by 0.01 %).

``--branches`` also runs callgrind's branch predictor model and prints the mispredicted branches
per bar (conditional and indirect; a model of a simple predictor, not this CPU's: it shows where
the interpreter's jumps become hard to predict, which the time pays for and the instruction count
does not show).

Needs ``valgrind`` on the PATH. A run is about 100x slower than native:

    .venv/bin/python scripts/bench_risk_cpu.py                           # 10 assets, trading
    .venv/bin/python scripts/bench_risk_cpu.py --assets 100 --bars 100,300 --branches
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODES = ("off", "defaults", "all")


def child(assets: int, bars: int, data_bars: int, strategy: str, mode: str) -> None:
    """One replay of the first ``bars`` of ``data_bars`` made (run under valgrind by ``measure``)."""
    from bench_engine import STRATEGIES, make_prices
    from bench_risk import MODES as RISK
    from bench_risk import time_run

    from ml4t_live import shadow_journal

    shadow_journal.COMMIT_SECONDS = float("inf")
    prices = make_prices(assets, data_bars).head(assets * bars)
    time_run(prices, STRATEGIES[strategy], RISK[mode], default_path=True)


def measure(assets: int, bars: int, data_bars: int, strategy: str, mode: str, branches: bool) -> dict[str, int]:
    """Instructions (and mispredicted branches) of one child process's engine thread (its main
    thread, where the strategy, the broker and the rails run), from callgrind's per-thread totals."""
    with tempfile.TemporaryDirectory(prefix="bench-risk-cpu-") as folder:
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                   f"--branch-sim={'yes' if branches else 'no'}", f"--callgrind-out-file={folder}/out",
                   sys.executable, __file__, "--child", str(assets), str(bars), str(data_bars), strategy, mode]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0", "POLARS_MAX_THREADS": "1"}
        out = subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                             cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"the replay under valgrind failed ({mode}, {bars} bars):\n{out.stderr[-2000:]}")
        text = Path(folder, "out-01").read_text()  # thread 1: the main thread
    events = re.search(r"^events:\s*(.+)$", text, re.MULTILINE).group(1).split()
    totals = dict(zip(events, (int(n) for n in re.search(r"^(?:summary|totals):\s*(.+)$", text, re.MULTILINE).group(1).split())))
    counts = {"I": totals["Ir"]}
    if branches:  # conditional and indirect branches mispredicted
        counts["mispredicts"] = totals["Bcm"] + totals["Bim"]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--bars", default="300,1300", help="the two run lengths")
    parser.add_argument("--strategies", default="trade")
    parser.add_argument("--branches", action="store_true", help="also count mispredicted branches (slower)")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind runs at once")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        assets, bars, data_bars, strategy, mode = args.child
        child(int(assets), int(bars), int(data_bars), strategy, mode)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on the PATH (e.g. apt install valgrind)")
    short, long = (int(n) for n in args.bars.split(","))
    for strategy in args.strategies.split(","):
        runs = [(mode, bars) for mode in MODES for bars in (short, long)]
        with ThreadPoolExecutor(args.jobs) as pool:
            done = [pool.submit(measure, args.assets, bars, long, strategy, mode, args.branches) for mode, bars in runs]
            counts = {run: future.result() for run, future in zip(runs, done, strict=True)}
        per_bar = {mode: {k: (counts[mode, long][k] - counts[mode, short][k]) / (long - short)
                          for k in counts[mode, long]} for mode in MODES}  # fmt: skip
        off = per_bar["off"]
        for mode in MODES:
            row = per_bar[mode]
            text = f"{args.assets}x {strategy:6} {mode:9} {row['I']:>12,.0f} instructions/bar"
            if mode != "off":
                text += f" ({row['I'] / off['I']:.4f} x off)"
            if "mispredicts" in row:
                text += f", {row['mispredicts']:>10,.0f} mispredicted branches/bar"
                if mode != "off":
                    text += f" ({row['mispredicts'] / off['mispredicts']:.4f} x off)"
            print(text, flush=True)


if __name__ == "__main__":
    main()
