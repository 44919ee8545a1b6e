"""Benchmark: LiveEngine (ReplayFeed + ShadowBroker) against ml4t.backtest.Engine, same data, same run.

For each size (assets x bars) and strategy (``noop``; ``trade``: every 10th bar each asset is
bought or closed, so orders accumulate) it prints bars/s and µs/bar of both engines, their ratio
(LiveEngine throughput / backtest throughput; target >= 0.9), and the µs/bar of the FIRST and
the LAST 1,000 bars of the LiveEngine run (from the progress callback's clock: per-bar cost must
not grow as orders accumulate). Then, in a child process, a long single-asset replay: the
process's peak RSS (``ru_maxrss``, includes making the data), the peak during ``run()`` alone
(VmHWM reset just before it), and the RSS growth from bar 1 and from bar 1,000 to the last bar
(target <= 10 MB), plus RSS at every 10% of the bars (separates one-time start-up costs, such
as the first part-file write of the session recorder, from growth).

    .venv/bin/python scripts/bench_engine.py                  # everything (minutes)
    .venv/bin/python scripts/bench_engine.py --quick          # 1x10k, both strategies, 100k-bar RSS run
    .venv/bin/python scripts/bench_engine.py --sizes 10x10000 --strategies trade --no-rss
    .venv/bin/python scripts/bench_engine.py --no-rss --sizes 1x1 ... (see --help) ; --rss-no-record

Timed: ``run()`` only (data generation and feed construction are outside the clock). Both engines
get the same ``BacktestConfig(calendar=None)``. The LiveEngine writes no session files unless
``--record``; the RSS run records (as a live session does) with ``retain=1000``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    return clock() - t0, len(result.fills), [t0, *stamps]


def us_per_bar(stamps: list[float], first: bool, n: int = 1000) -> tuple[float, float]:
    """Mean and median µs per bar over the first (or last) ``n`` bars. The mean includes any
    one-off pause (a full garbage collection costs tens of ms); the median is the typical bar."""
    window = stamps[: n + 1] if first else stamps[-(n + 1) :]
    steps = sorted(b - a for a, b in zip(window, window[1:], strict=False))
    return (window[-1] - window[0]) / len(steps) * 1e6, steps[len(steps) // 2] * 1e6


def bench(sizes: list[tuple[int, int]], strategies: list[str], record: bool) -> None:
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


def child_rss(n_bars: int, strategy: str, retain: int, record: bool = True) -> None:
    """Run in a fresh process: one long single-asset replay; print JSON figures."""
    prices = make_prices(1, n_bars)
    marks: dict[str, float] = {}

    tenth = max(n_bars // 10, 1)
    series: list[float] = []

    def progress(p) -> None:
        if p.bars_done == 1:
            marks["rss_at_1_mb"] = _rss_mb()
        if p.bars_done == 1000:
            marks["rss_at_1k_mb"] = _rss_mb()
        if p.bars_done % tenth == 0:
            series.append(round(_rss_mb(), 1))
        if p.bars_done == p.bars_total:
            marks["rss_at_end_mb"] = _rss_mb()

    with tempfile.TemporaryDirectory(prefix="bench-rss-") as folder:
        engine = LiveEngine(STRATEGIES[strategy](), ShadowBroker(config()), ReplayFeed(prices),
                            session_dir=folder if record else False, progress=progress,
                            retain=retain)  # fmt: skip
        marks["rss_before_run_mb"] = _rss_mb()
        reset = _reset_peak_rss()
        t0 = time.perf_counter()
        result = engine.run()  # includes merging the part files into the session's parquet
        seconds = time.perf_counter() - t0
        marks["run_peak_rss_mb"] = _peak_rss_mb() if reset else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"bars": result.bars, "fills": len(result.fills), "seconds": seconds,
                      "peak_rss_mb": peak_mb, "rss_every_10pct_mb": series, **marks}))  # fmt: skip


def rss(n_bars: int, strategy: str, retain: int, record: bool) -> None:
    cmd = [sys.executable, __file__, "--child-rss", str(n_bars), "--rss-strategy", strategy,
           "--retain", str(retain), *([] if record else ["--rss-no-record"])]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"RSS run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return
    fig = json.loads(done.stdout.strip().splitlines()[-1])
    growth = fig["rss_at_end_mb"] - fig["rss_at_1k_mb"]
    from_first = fig["rss_at_end_mb"] - fig["rss_at_1_mb"]
    series = fig["rss_every_10pct_mb"]
    print(f"RSS, {fig['bars']:,}-bar single-asset replay ({strategy}, "
          f"{'recorded' if record else 'not recorded'}, retain={retain}): "
          f"process peak {fig['peak_rss_mb']:.0f} MB (incl. making the data); before run() "
          f"{fig['rss_before_run_mb']:.0f} MB, peak during run() {fig['run_peak_rss_mb']:.0f} MB; "
          f"RSS at bar 1 {fig['rss_at_1_mb']:.0f} MB, at bar 1,000 {fig['rss_at_1k_mb']:.0f} MB, "
          f"at the last bar {fig['rss_at_end_mb']:.0f} MB; growth from bar 1,000 {growth:+.1f} MB, "
          f"from bar 1 {from_first:+.1f} MB; "
          f"{fig['bars'] / fig['seconds']:,.0f} bars/s, {fig['fills']:,} fills retained")  # fmt: skip
    if len(series) > 1:
        print(f"  RSS at every 10% of the bars (MB): {series}; growth 10% -> end "
              f"{series[-1] - series[0]:+.1f} MB (excludes one-time start-up such as the first "
              f"part-file write of the session files)")  # fmt: skip


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
    parser.add_argument("--quick", action="store_true", help="1x10000 only and a 100,000-bar RSS run")
    parser.add_argument("--record", action="store_true", help="LiveEngine writes session files in the timing runs")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS child run")
    parser.add_argument("--rss-bars", type=int, default=1_000_000, help="bars in the RSS run (default: %(default)s)")
    parser.add_argument("--rss-strategy", default="trade", choices=sorted(STRATEGIES))
    parser.add_argument("--retain", type=int, default=1000, help="LiveEngine retain= in the RSS run")
    parser.add_argument("--rss-no-record", action="store_true", help="the RSS run writes no session files")
    parser.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from loguru import logger

    logger.remove()  # an entry point: keep the engine's INFO lines out of the figures
    logger.add(sys.stderr, level="WARNING")
    if args.child_rss:
        child_rss(args.child_rss, args.rss_strategy, args.retain, not args.rss_no_record)
        return
    sizes = [(1, 10_000)] if args.quick else _sizes(args.sizes)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; timed: run() only")
    bench(sizes, args.strategies.split(","), args.record)
    if not args.no_rss:
        rss(100_000 if args.quick else args.rss_bars, args.rss_strategy, args.retain,
            not args.rss_no_record)


if __name__ == "__main__":
    main()
