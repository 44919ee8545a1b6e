"""Benchmark: what the risk rails cost a replay (LiveEngine + ReplayFeed + ShadowBroker).

Three runs of the same replay, timed end to end as a user times it (engine construction and
``run()``; the data is made outside the clock): ``off`` (``risk=False``, no rails at all),
``defaults`` (no ``[risk]`` table: the safe defaults, i.e. the order rate and the error count)
and ``all`` (every limit configured, loose enough that none refuses). Each is run ``--repeat``
times, interleaved, and the fastest is kept. The clock is the process's CPU time
(``time.process_time``; the replay does no I/O, so it is its wall time on an idle machine), which
other processes on a busy machine disturb far less than the wall clock (the load average is
printed at the start and the end).

Each timed run is a **fresh process** by default, as a user runs a replay: runs made one after
another in one process disturb each other (the heap and the allocator's state one run leaves
to the next): three runs of the *same* mode in one process differed by up to 5 % by their
place in the sequence, against about 1 % in fresh processes (docs/performance.md, "The risk
rails"). ``--in-process`` times them all in this process (the earlier method); ``--control``
adds a second ``off`` run per round (``off2``), whose ratio to ``off`` shows the noise floor.
``--floor`` adds ``floor``: every limit configured, with the per-order check emptied in that
child process (``PreTradeRisk.admit`` passes every order, records no send; ``RiskGate.now``
reads no clock): what the rails' wrapper around the backtest broker, their bookkeeping of
working orders and positions and their per-bar steps (the loss limits' equity band included)
cost with no per-order check (a measurement of the rails' shape, not a run anyone makes; fresh
processes only; the child fails when a trading run never called the stand-in).

``--default-path`` times the runs as the CLI makes them and as the spine's ratio benchmark
(``scripts/bench_engine.py``) times LiveEngine: the shadow journal kept in a fresh state
directory and the session recorded to a fresh folder (both removed after, off the clock). Without
it the replay keeps neither (the rails' share of the bare engine, the harshest reading).

``--paired N`` measures only ``all / off`` (``--baseline defaults``: ``all / defaults``, the run
a user gets with no ``[risk]`` key), as N pairs of fresh-process runs (the pair's order
alternating), and prints the median of the N paired ratios with a 95 % bootstrap interval (2,000
resamples, fixed seed): best-of-N compares two minima, each the luckiest of its runs; a pair's
two runs share the machine's state of that moment, and the interval says whether 1.05 is inside.

Prints µs/bar and the ratios ``all / off`` (target: within 5 %, i.e. <= 1.05), ``defaults / off``
and ``all / defaults`` (``defaults`` is the run a user gets with no ``[risk]`` key: "no key = no
limit, except the safe defaults"; ``off`` has no rails at all, which only a benchmark can ask
for); it also checks that the runs filled the same orders (the loose limits refused nothing).

    .venv/bin/python scripts/bench_risk.py                         # 1, 10, 100 assets x 10,000 bars
    .venv/bin/python scripts/bench_risk.py --default-path          # as the CLI runs a replay
    .venv/bin/python scripts/bench_risk.py --sizes 10x2000 --repeat 3 --control
    .venv/bin/python scripts/bench_risk.py --sizes 100x10000 --strategies trade --default-path --paired 10
    .venv/bin/python scripts/bench_risk.py --sizes 10x10000 --strategies trade --default-path --paired 12 --baseline defaults
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_engine import STRATEGIES, config, make_prices

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker

#: every limit configured, none of them binding for the benchmark's strategies
ALL_LIMITS = {
    "max_order_notional": 1e12,
    "max_order_quantity": 1e9,
    "max_position_notional": 1e12,
    "max_gross_exposure": 1e3,
    "max_open_orders": 100_000,
    "max_orders_per_minute": 1_000_000,
    "price_collar": 0.5,
    "max_daily_loss": 1e12,
    "max_drawdown": 0.99,
    "max_data_age": "1d",
    "max_strategy_errors": 5,
    "allow_short": True,
}
MODES = {"off": False, "defaults": None, "all": ALL_LIMITS, "off2": False, "floor": ALL_LIMITS}


def empty_checks() -> itertools.count:
    """``floor``: the per-order check emptied, in this (child) process only; returns the count
    of the stand-in's calls (a renamed method would leave the real one in place unnoticed)."""
    from ml4t_live.risk.gate import RiskGate
    from ml4t_live.risk.limits import PreTradeRisk

    if "admit" not in vars(PreTradeRisk) or "now" not in vars(RiskGate):
        raise SystemExit("--floor: PreTradeRisk.admit / RiskGate.now are gone: update empty_checks")
    calls = itertools.count()
    PreTradeRisk.admit = lambda self, *args: next(calls) >= 0  # type: ignore[method-assign]
    RiskGate.now = lambda self: 0.0  # type: ignore[method-assign]
    return calls


def time_run(prices, strategy_cls, risk, default_path: bool = False) -> tuple[float, int, int]:
    state = tempfile.mkdtemp(prefix="bench-state-") if default_path else None
    folder = tempfile.mkdtemp(prefix="bench-session-") if default_path else False
    t0 = time.process_time()
    engine = LiveEngine(strategy_cls(), ShadowBroker(config(), risk=risk, state_dir=state), ReplayFeed(prices),
                        session_dir=folder)  # fmt: skip
    result = engine.run()
    seconds = time.process_time() - t0
    for made in (state, folder):
        if made:
            shutil.rmtree(made)
    return seconds, len(result.fills), result.metrics.get("num_risk_refusals", 0)


def time_in_child(size: str, strategy: str, mode: str, default_path: bool) -> tuple[float, int, int]:
    """``time_run`` in a fresh interpreter (the data made there too, outside the clock)."""
    out = subprocess.run([sys.executable, __file__, "--child", size, strategy, mode,
                          *(["--default-path"] if default_path else [])], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    seconds, filled, refused = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, filled, refused


def child(size: str, strategy: str, mode: str, default_path: bool) -> None:
    assets, bars = (int(x) for x in size.split("x"))
    calls = empty_checks() if mode == "floor" else None
    timed = time_run(make_prices(assets, bars), STRATEGIES[strategy], MODES[mode], default_path)
    if calls is not None and timed[1] and next(calls) == 0:
        raise SystemExit("--floor: the run filled orders but never called the emptied check")
    print(json.dumps(timed))


def paired(size: str, strategy: str, pairs: int, default_path: bool, baseline: str = "off") -> None:
    """``--paired``: ``pairs`` pairs of fresh-process runs, ``baseline`` and ``all`` (order alternating)."""
    ratios, fills = [], set()
    for i in range(pairs):
        modes = (baseline, "all") if i % 2 == 0 else ("all", baseline)
        timed = {mode: time_in_child(size, strategy, mode, default_path) for mode in modes}
        ratios.append(timed["all"][0] / timed[baseline][0])
        fills |= {(filled, refused) for _, filled, refused in timed.values()}
        print(f"  pair {i + 1}: {baseline} {timed[baseline][0]:.3f} s, all {timed['all'][0]:.3f} s, "
              f"all/{baseline} {ratios[-1]:.3f}", flush=True)  # fmt: skip
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
    same = "" if len(fills) == 1 and next(iter(fills))[1] == 0 else f"  DIFFERENT fills/refusals: {sorted(fills)}"
    print(f"{size:>10} {strategy:>8} all/{baseline} median of {pairs} paired ratios {statistics.median(ratios):.3f} "
          f"(95 % bootstrap interval {medians[50]:.3f}-{medians[1949]:.3f}; mean {statistics.mean(ratios):.3f})"
          f"{same}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1x10000,10x10000,100x10000", help="assets x bars, comma separated")
    parser.add_argument("--strategies", default="noop,trade")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs per mode (the fastest counts)")
    parser.add_argument("--in-process", action="store_true", help="time every run in this process")
    parser.add_argument("--control", action="store_true", help="a second `off` run per round (the noise floor)")
    parser.add_argument("--floor", action="store_true",
                        help="a run with every limit and the per-order check emptied (the rails' shape alone)")
    parser.add_argument("--default-path", action="store_true",
                        help="keep the shadow journal and record the session, as the CLI does")
    parser.add_argument("--paired", type=int, metavar="N",
                        help="only all/baseline: N pairs of fresh-process runs, the median paired ratio and its interval")
    parser.add_argument("--baseline", choices=("off", "defaults"), default="off",
                        help="--paired: the run `all` is divided by (off: no rails; defaults: no [risk] key)")
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "STRATEGY", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.default_path)
        return
    if args.floor and args.in_process:
        parser.error("--floor empties the checks of the process it runs in: not with --in-process")
    if args.paired:
        if args.in_process or args.floor or args.control:
            parser.error("--paired times off and all in fresh processes only (no --in-process, --floor, --control)")
        print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        for size in args.sizes.split(","):
            for name in args.strategies.split(","):
                paired(size, name, args.paired, args.default_path, args.baseline)
        print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        return
    modes = [m for m in MODES if (m != "off2" or args.control) and (m != "floor" or args.floor)]
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"each run in {'this process' if args.in_process else 'a fresh process'}, best of {args.repeat}, "
          f"{'journal and session recording on (the default path)' if args.default_path else 'no journal, no recording'}")  # fmt: skip
    control = (f" {'off2/off':>8}" if args.control else "") + (f" {'floor/off':>9}" if args.floor else "")
    print(f"{'size':>10} {'strategy':>8} {'off µs/bar':>11} {'defaults':>9} {'all':>9} "
          f"{'defaults/off':>12} {'all/off':>8} {'all/defaults':>12}{control}  fills")  # fmt: skip
    for size in args.sizes.split(","):
        assets, bars = (int(x) for x in size.split("x"))
        prices = make_prices(assets, bars) if args.in_process else None
        for name in args.strategies.split(","):
            best = {mode: float("inf") for mode in modes}
            fills = {}
            for _ in range(args.repeat):
                for mode in modes:
                    if args.in_process:
                        seconds, filled, refused = time_run(prices, STRATEGIES[name], MODES[mode], args.default_path)
                    else:
                        seconds, filled, refused = time_in_child(size, name, mode, args.default_path)
                    best[mode] = min(best[mode], seconds)
                    fills[mode] = (filled, refused)
            us = {mode: best[mode] / bars * 1e6 for mode in modes}
            same = len({f for f, _ in fills.values()}) == 1 and all(r == 0 for _, r in fills.values())
            noise = (f" {us['off2'] / us['off']:>8.3f}" if args.control else "") + \
                (f" {us['floor'] / us['off']:>9.3f}" if args.floor else "")  # fmt: skip
            print(f"{size:>10} {name:>8} {us['off']:>11.1f} {us['defaults']:>9.1f} {us['all']:>9.1f} "
                  f"{us['defaults'] / us['off']:>12.3f} {us['all'] / us['off']:>8.3f} {us['all'] / us['defaults']:>12.3f}"
                  f"{noise}  "
                  f"{fills['off'][0]}{'' if same else ' DIFFERENT: ' + str(fills)}", flush=True)  # fmt: skip
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
