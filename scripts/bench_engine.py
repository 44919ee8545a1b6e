"""Benchmark: the default LiveEngine path (ReplayFeed + ShadowBroker, session recording on)
against ml4t.backtest.Engine, same data, same process, timed as a user times them.

Default (end to end): each engine is timed from construction to the returned result, as in
``Engine(DataFeed(prices_df=df), strategy, config).run()`` and
``LiveEngine(strategy, ShadowBroker(config, state_dir=state), ReplayFeed(df), session_dir=folder).run()``:
the replay's bar checks, the risk rails (on by default), the session journal (on, as the CLI
runs shadow mode: a fresh temporary state directory per run) and the session recorder writing
its folder (a fresh temporary one per run; both removed after, off the clock) and their close
are all on the clock (``--no-journal``: no journal, as ``ShadowBroker(config)`` has none). Runs are
interleaved (backtest, live, backtest, live, ...) ``--repeat`` times and the best of each is
kept, for wall time (``time.perf_counter``) and for process CPU time (``time.process_time``,
all threads, polars' pool included); the ratio is backtest time / live time (target >= 0.95).
The load average is printed before and after: on a shared machine compare CPU ratios.

``--run-only`` gives the old figures: ``run()`` alone timed (construction outside the clock),
no session files unless ``--record``, and the µs/bar of the LiveEngine run's FIRST and LAST
1,000 bars from a progress callback (per-bar cost must not grow as orders accumulate).

Then, in child processes (one per engine, each fresh), a long single-asset replay: the
process's peak RSS (``ru_maxrss``: making the data, building the engine, the run, the
result), the peak of construction + run alone (VmHWM reset after making the data), and the
live/backtest ratio of both (target <= 1.2, the live run recording as by default: all fills
kept, ``retain=None``). ``--rss-retain N`` adds a live run with ``retain=N`` and its RSS growth
from bar 1,000 to the last bar (target <= 10 MB), and RSS at every 10% of the bars.

    .venv/bin/python scripts/bench_engine.py                  # everything (many minutes)
    .venv/bin/python scripts/bench_engine.py --quick          # 1x10k, both strategies, 100k-bar RSS runs
    .venv/bin/python scripts/bench_engine.py --sizes 10x10000 --strategies trade --no-rss
    .venv/bin/python scripts/bench_engine.py --run-only --record --no-rss   # the old figures
    .venv/bin/python scripts/bench_engine.py --no-timing --rss-retain 1000  # memory only

Both engines get the same ``BacktestConfig(initial_cash=1e9, calendar=None)``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from ml4t.backtest import BacktestConfig, DataFeed, Engine, Strategy

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker


def make_prices(n_assets: int, n_bars: int, seed: int = 1) -> pl.DataFrame:
    """Long-format minute bars: n_assets x n_bars rows, tz-aware UTC."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    stamps = pl.datetime_range(start, start + timedelta(minutes=n_bars - 1), "1m", eager=True,
                               time_unit="us", time_zone="UTC")  # fmt: skip
    frames = []
    for k in range(n_assets):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n_bars)))
        open_ = close * np.exp(rng.normal(0.0, 0.0003, n_bars))
        frames.append(
            pl.DataFrame({
                "timestamp": stamps, "asset": f"A{k:03d}", "open": open_,
                "high": np.maximum(open_, close) * 1.0005, "low": np.minimum(open_, close) * 0.9995,
                "close": close, "volume": np.full(n_bars, 1e6),
            })  # fmt: skip
        )
    return pl.concat(frames).sort("timestamp", "asset")


class NoOp(Strategy):
    def on_data(self, timestamp, data, context, broker):
        pass


class TradeEvery10(Strategy):
    """Every 10th bar: buy 10 of each asset when flat, close it when held."""

    def __init__(self) -> None:
        self.bar = 0

    def on_start(self, broker):
        self.bar = 0

    def on_data(self, timestamp, data, context, broker):
        self.bar += 1
        if self.bar % 10:
            return
        for asset in data:
            if broker.get_position(asset) is None:
                broker.submit_order(asset, 10)
            else:
                broker.close_position(asset)


STRATEGIES = {"noop": NoOp, "trade": TradeEvery10}


#: the live runs keep a session journal (``--no-journal`` turns it off)
JOURNAL = True


def shadow(state: str) -> ShadowBroker:
    return ShadowBroker(config(), state_dir=state) if JOURNAL else ShadowBroker(config())


def config() -> BacktestConfig:
    return BacktestConfig(initial_cash=1e9, calendar=None)


def time_backtest(prices: pl.DataFrame, strategy_cls) -> tuple[float, int]:
    engine = Engine(DataFeed(prices_df=prices), strategy_cls(), config())
    t0 = time.perf_counter()
    result = engine.run()
    return time.perf_counter() - t0, len(result.fills)


def time_live(prices: pl.DataFrame, strategy_cls, record: bool) -> tuple[float, int, list[float]]:
    stamps: list[float] = []
    clock = time.perf_counter
    session = tempfile.mkdtemp(prefix="bench-session-") if record else False
    engine = LiveEngine(strategy_cls(), ShadowBroker(config()), ReplayFeed(prices),
                        session_dir=session, progress=lambda p: stamps.append(clock()))  # fmt: skip
    t0 = clock()
    result = engine.run()
    seconds = clock() - t0
    if session:
        shutil.rmtree(session)
    return seconds, len(result.fills), [t0, *stamps]


def e2e_backtest(prices: pl.DataFrame, strategy_cls) -> tuple[float, float, int]:
    """(wall s, CPU s, fills): construction to result, as a user times it."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = Engine(DataFeed(prices_df=prices), strategy_cls(), config()).run()
    return time.perf_counter() - wall, time.process_time() - cpu, len(result.fills)


def e2e_live(prices: pl.DataFrame, strategy_cls, record: bool) -> tuple[float, float, int]:
    """(wall s, CPU s, fills): the default path from construction to result; the session
    folder is a fresh temporary one (removed after, off the clock)."""
    folder, state = tempfile.mkdtemp(prefix="bench-session-"), tempfile.mkdtemp(prefix="bench-state-")
    wall, cpu = time.perf_counter(), time.process_time()
    result = LiveEngine(strategy_cls(), shadow(state), ReplayFeed(prices),
                        session_dir=folder if record else False).run()  # fmt: skip
    seconds = time.perf_counter() - wall, time.process_time() - cpu
    shutil.rmtree(folder)
    shutil.rmtree(state)
    return *seconds, len(result.fills)


def us_per_bar(stamps: list[float], first: bool, n: int = 1000) -> tuple[float, float]:
    """Mean and median µs per bar over the first (or last) ``n`` bars. The mean includes any
    one-off pause (a full garbage collection costs tens of ms); the median is the typical bar."""
    window = stamps[: n + 1] if first else stamps[-(n + 1) :]
    steps = sorted(b - a for a, b in zip(window, window[1:], strict=False))
    return (window[-1] - window[0]) / len(steps) * 1e6, steps[len(steps) // 2] * 1e6


def bench_run_only(sizes: list[tuple[int, int]], strategies: list[str], record: bool) -> None:
    print(f"{'case':<18}{'backtest bars/s':>16}{'µs/bar':>9}{'live bars/s':>13}{'µs/bar':>9}"
          f"{'ratio':>7}{'first 1k':>10}{'last 1k':>9}{'median':>8}{'median':>8}{'fills':>8}")
    print(f"{'':<72}{'(mean)':>10}{'(mean)':>9}{'first':>8}{'last':>8}")  # fmt: skip
    for n_assets, n_bars in sizes:
        prices = make_prices(n_assets, n_bars)
        for name in strategies:
            cls = STRATEGIES[name]
            bt_seconds, bt_fills = time_backtest(prices, cls)
            live_seconds, live_fills, stamps = time_live(prices, cls, record)
            bt_rate, live_rate = n_bars / bt_seconds, n_bars / live_seconds
            flag = "" if bt_fills == live_fills else f"  FILL COUNT DIFFERS (backtest {bt_fills})"
            (first, first_median), (last, last_median) = us_per_bar(stamps, True), us_per_bar(stamps, False)
            print(f"{f'{n_assets}x{n_bars} {name}':<18}{bt_rate:>16,.0f}{1e6 / bt_rate:>9.1f}"
                  f"{live_rate:>13,.0f}{1e6 / live_rate:>9.1f}{live_rate / bt_rate:>7.2f}"
                  f"{first:>10.1f}{last:>9.1f}{first_median:>8.1f}{last_median:>8.1f}"
                  f"{live_fills:>8,}{flag}", flush=True)  # fmt: skip


def bench(sizes: list[tuple[int, int]], strategies: list[str], record: bool, repeat: int) -> None:
    """End to end, interleaved, best of ``repeat``: wall and CPU of both engines and their ratios."""
    print(f"{'case':<18}{'backtest wall s':>16}{'cpu s':>8}{'live wall s':>13}{'cpu s':>8}"
          f"{'ratio wall':>11}{'ratio cpu':>10}{'fills':>9}")  # fmt: skip
    for n_assets, n_bars in sizes:
        prices = make_prices(n_assets, n_bars)
        for name in strategies:
            cls = STRATEGIES[name]
            bt, live = [], []
            for _ in range(repeat):
                bt.append(e2e_backtest(prices, cls))
                live.append(e2e_live(prices, cls, record))
            bt_wall, bt_cpu = min(r[0] for r in bt), min(r[1] for r in bt)
            live_wall, live_cpu = min(r[0] for r in live), min(r[1] for r in live)
            flag = "" if bt[0][2] == live[0][2] else f"  FILL COUNT DIFFERS (backtest {bt[0][2]})"
            print(f"{f'{n_assets}x{n_bars} {name}':<18}{bt_wall:>16.3f}{bt_cpu:>8.3f}{live_wall:>13.3f}"
                  f"{live_cpu:>8.3f}{bt_wall / live_wall:>11.2f}{bt_cpu / live_cpu:>10.2f}"
                  f"{live[0][2]:>9,}{flag}", flush=True)  # fmt: skip


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM; Linux >= 4.0), so the run's own peak can
    be told apart from data generation's. False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_rss(n_bars: int, strategy: str, engine_name: str, retain: int | None) -> None:
    """Run in a fresh process: one long single-asset run of one engine; print JSON figures."""
    prices = make_prices(1, n_bars)
    marks: dict[str, float] = {"rss_after_data_mb": _rss_mb()}
    tenth = max(n_bars // 10, 1)
    series: list[float] = []

    def progress(p) -> None:
        if p.bars_done == 1000:
            marks["rss_at_1k_mb"] = _rss_mb()
        if p.bars_done % tenth == 0:
            series.append(round(_rss_mb(), 1))
        if p.bars_done == p.bars_total:
            marks["rss_at_end_mb"] = _rss_mb()

    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as folder:
        if engine_name == "backtest":
            result = Engine(DataFeed(prices_df=prices), STRATEGIES[strategy](), config()).run()
        else:  # the default path: recording on; a progress callback only to follow RSS growth
            watch = progress if retain is not None else None
            result = LiveEngine(STRATEGIES[strategy](), shadow(folder), ReplayFeed(prices),
                                session_dir=folder, retain=retain, progress=watch).run()  # fmt: skip
        seconds = time.perf_counter() - t0
        marks["run_peak_rss_mb"] = _peak_rss_mb() if reset else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"fills": len(result.fills), "seconds": seconds, "peak_rss_mb": peak_mb,
                      "rss_every_10pct_mb": series, **marks}))  # fmt: skip


def _child(n_bars: int, strategy: str, engine_name: str, retain: int | None) -> dict | None:
    cmd = [sys.executable, __file__, "--child-rss", str(n_bars), "--rss-strategy", strategy,
           "--child-engine", engine_name, *([] if retain is None else ["--rss-retain", str(retain)]),
           *([] if JOURNAL else ["--no-journal"])]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"RSS run ({engine_name}) failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss(n_bars: int, strategy: str, retain: int | None) -> None:
    bt = _child(n_bars, strategy, "backtest", None)
    live = _child(n_bars, strategy, "live", None)
    if bt is None or live is None:
        return
    print(f"Peak RSS, {n_bars:,}-bar single-asset run ({strategy}), each engine in a fresh process "
          f"(load {_load()}):")  # fmt: skip
    for label, fig in (("backtest", bt), (f"live, recording{' + journal' if JOURNAL else ''} on", live)):
        print(f"  {label:<30} process peak {fig['peak_rss_mb']:6.0f} MB (data {fig['rss_after_data_mb']:.0f} MB), "
              f"construction + run peak {fig['run_peak_rss_mb']:6.0f} MB, {fig['seconds']:.1f} s, "
              f"{fig['fills']:,} fills kept")  # fmt: skip
    print(f"  live / backtest: process peak {live['peak_rss_mb'] / bt['peak_rss_mb']:.2f}, construction + run "
          f"peak {live['run_peak_rss_mb'] / bt['run_peak_rss_mb']:.2f} (target <= 1.2)")  # fmt: skip
    if retain is None:
        return
    kept = _child(n_bars, strategy, "live", retain)
    if kept is None:
        return
    growth = kept["rss_at_end_mb"] - kept["rss_at_1k_mb"]
    series = kept["rss_every_10pct_mb"]
    print(f"  live, recording on, retain={retain}: process peak {kept['peak_rss_mb']:.0f} MB, construction + run "
          f"peak {kept['run_peak_rss_mb']:.0f} MB; RSS at bar 1,000 {kept['rss_at_1k_mb']:.0f} MB, at the last "
          f"bar {kept['rss_at_end_mb']:.0f} MB: growth {growth:+.1f} MB (target <= 10); every 10%: {series}")  # fmt: skip


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        assets, _, bars = item.lower().partition("x")
        out.append((int(assets), int(bars)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1x10000,10x10000,100x10000",
                        help="comma-separated ASSETSxBARS (default: %(default)s)")
    parser.add_argument("--strategies", default="noop,trade", help="noop,trade (default: both)")
    parser.add_argument("--quick", action="store_true", help="1x10000 only and 100,000-bar RSS runs")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs, best kept (default: %(default)s)")
    parser.add_argument("--no-record", action="store_true", help="end to end, the LiveEngine writes no session files")
    parser.add_argument("--no-journal", action="store_true", help="the shadow broker keeps no session journal")
    parser.add_argument("--run-only", action="store_true",
                        help="the old figures: run() alone timed, once; session files only with --record")
    parser.add_argument("--record", action="store_true", help="with --run-only: the LiveEngine writes session files")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS child runs")
    parser.add_argument("--rss-bars", type=int, default=1_000_000, help="bars in the RSS runs (default: %(default)s)")
    parser.add_argument("--rss-strategy", default="trade", choices=sorted(STRATEGIES))
    parser.add_argument("--rss-retain", type=int, default=None,
                        help="also a live RSS run with retain=N, and its growth from bar 1,000")
    parser.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-engine", default="live", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global JOURNAL
    JOURNAL = not args.no_journal

    from loguru import logger

    logger.remove()  # an entry point: keep the engine's INFO lines out of the figures
    logger.add(sys.stderr, level="WARNING")
    if args.child_rss:
        child_rss(args.child_rss, args.rss_strategy, args.child_engine, args.rss_retain)
        return
    sizes = [(1, 10_000)] if args.quick else _sizes(args.sizes)
    strategies = args.strategies.split(",")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {_load()}")
    if not args.no_timing:
        if args.run_only:
            print(f"timed: run() only, once; session files {'on' if args.record else 'off'}")
            bench_run_only(sizes, strategies, args.record)
        else:
            print(f"timed: end to end (construction to result), best of {args.repeat} interleaved; "
                  f"session recording {'off' if args.no_record else 'on'}, journal {'on' if JOURNAL else 'off'}")  # fmt: skip
            bench(sizes, strategies, not args.no_record, args.repeat)
        print(f"load {_load()}")
    if not args.no_rss:
        rss(100_000 if args.quick else args.rss_bars, args.rss_strategy, args.rss_retain)


if __name__ == "__main__":
    main()
