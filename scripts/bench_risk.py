"""Benchmark: what the risk rails cost a replay (LiveEngine + ReplayFeed + ShadowBroker).

Three runs of the same replay, timed end to end as a user times it (engine construction and
``run()``; the data is made outside the clock): ``off`` (``risk=False``, no rails at all),
``defaults`` (no ``[risk]`` table: the safe defaults, i.e. the order rate and the error count)
and ``all`` (every limit configured, loose enough that none refuses). Each is run ``--repeat``
times, interleaved, and the fastest is kept. The clock is the process's CPU time
(``time.process_time``; the replay does no I/O, so it is its wall time on an idle machine), which
other processes on a busy machine disturb far less than the wall clock (the load average is
printed at the start and the end: on a shared machine a cell moves by a few per cent from run to
run). Prints µs/bar and the ratio
``all / off`` (target: within 5 %, i.e. <= 1.05) and ``defaults / off``; it also checks that the
three runs filled the same orders (the loose limits refused nothing).

    .venv/bin/python scripts/bench_risk.py                         # 1, 10, 100 assets x 10,000 bars
    .venv/bin/python scripts/bench_risk.py --sizes 10x2000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import time

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
MODES = {"off": False, "defaults": None, "all": ALL_LIMITS}


def time_run(prices, strategy_cls, risk) -> tuple[float, int, int]:
    t0 = time.process_time()
    engine = LiveEngine(strategy_cls(), ShadowBroker(config(), risk=risk), ReplayFeed(prices), session_dir=False)
    result = engine.run()
    return time.process_time() - t0, len(result.fills), result.metrics.get("num_risk_refusals", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1x10000,10x10000,100x10000", help="assets x bars, comma separated")
    parser.add_argument("--strategies", default="noop,trade")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs per mode (the fastest counts)")
    args = parser.parse_args()
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"{'size':>10} {'strategy':>8} {'off µs/bar':>11} {'defaults':>9} {'all':>9} "
          f"{'defaults/off':>12} {'all/off':>8}  fills")  # fmt: skip
    for size in args.sizes.split(","):
        assets, bars = (int(x) for x in size.split("x"))
        prices = make_prices(assets, bars)
        for name in args.strategies.split(","):
            best = {mode: float("inf") for mode in MODES}
            fills = {}
            for _ in range(args.repeat):
                for mode, risk in MODES.items():
                    seconds, filled, refused = time_run(prices, STRATEGIES[name], risk)
                    best[mode] = min(best[mode], seconds)
                    fills[mode] = (filled, refused)
            us = {mode: best[mode] / bars * 1e6 for mode in MODES}
            same = len({f for f, _ in fills.values()}) == 1 and all(r == 0 for _, r in fills.values())
            print(f"{size:>10} {name:>8} {us['off']:>11.1f} {us['defaults']:>9.1f} {us['all']:>9.1f} "
                  f"{us['defaults'] / us['off']:>12.3f} {us['all'] / us['off']:>8.3f}  "
                  f"{fills['off'][0]}{'' if same else ' DIFFERENT: ' + str(fills)}", flush=True)  # fmt: skip
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
