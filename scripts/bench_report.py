"""Benchmark: ``ml4t-live report`` on a 1-day x 100-asset minute session (390 bars, 39,000 rows).

Records the session first (``ml4t-live run`` in shadow mode, this file's ``Rotation`` strategy:
every 5 bars it holds the 10 assets with the best 5-bar return, so thousands of orders), then
times the report three ways: ``report()`` in this process (its steps from the progress
callback), and ``ml4t-live report SESSION`` as a fresh process (imports included), twice.

    .venv/bin/python scripts/bench_report.py                     # 100 assets x 390 bars
    .venv/bin/python scripts/bench_report.py --assets 10 --bars 390
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from ml4t.backtest import Strategy


class Rotation(Strategy):
    """Every ``every`` bars: equal weight in the ``top`` assets with the best ``every``-bar return."""

    def __init__(self, top: int = 10, every: int = 5) -> None:
        self.top, self.every, self.n = top, every, 0
        self.last: dict[str, float] = {}

    def on_data(self, timestamp, data, context, broker) -> None:
        self.n += 1
        if self.n % self.every:
            return
        moves = {a: bar["close"] / self.last[a] - 1.0 for a, bar in data.items() if a in self.last}
        self.last = {a: bar["close"] for a, bar in data.items()}
        if not moves:
            return
        best = sorted(moves, key=moves.get, reverse=True)[: self.top]
        budget = broker.get_account_value() * 0.95 / self.top
        for asset, position in list(broker.get_positions().items()):
            if asset not in best and position.quantity:
                broker.close_position(asset)
        for asset in best:
            held = broker.get_position(asset)
            want = int(budget / data[asset]["close"])
            delta = want - (held.quantity if held else 0)
            if abs(delta) >= 1:
                broker.submit_order(asset, delta)


def make_bars(n_assets: int, n_bars: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    stamps = [start + timedelta(minutes=i) for i in range(n_bars)]
    frames = []
    for k in range(n_assets):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n_bars)))
        open_ = close * np.exp(rng.normal(0.0, 0.0003, n_bars))
        frames.append(pl.DataFrame({
            "timestamp": stamps, "asset": f"A{k:03d}", "open": open_, "high": np.maximum(open_, close) * 1.0005,
            "low": np.minimum(open_, close) * 0.9995, "close": close, "volume": np.full(n_bars, 1e5),
        }))  # fmt: skip
    return pl.concat(frames).sort("timestamp", "asset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--bars", type=int, default=390)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("ml4t-live")
    with tempfile.TemporaryDirectory() as tmp:
        bars = Path(tmp) / "bars.parquet"
        make_bars(args.assets, args.bars).write_parquet(bars)
        subprocess.run([str(exe), "run", f"{Path(__file__).resolve()}:Rotation", "--data", str(bars),
                        "--session-dir", str(Path(tmp) / "s"), "-q"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        (session,) = (Path(tmp) / "s").iterdir()
        orders = pl.read_parquet(session / "orders.parquet").height
        print(f"session: {args.assets} assets x {args.bars} bars = {args.assets * args.bars:,} rows, {orders:,} orders")

        from ml4t_live.reports import report

        marks: list[tuple[str, float]] = []
        started = time.perf_counter()
        files = report(session, progress=lambda step: marks.append((step, time.perf_counter())))
        total = time.perf_counter() - started
        print(f"report() in-process: {total:.2f} s  (html {files.html.stat().st_size / 1e6:.1f} MB)")
        for (step, at), (_, nxt) in zip(marks, [*marks[1:], ("end", started + total)], strict=True):
            print(f"  {step:<70} {nxt - at:6.2f} s")
        print(f"  parity: {files.parity.headline()}")
        for rep in (1, 2):
            t0 = time.perf_counter()
            subprocess.run([str(exe), "report", str(session), "-q"], check=True, stdout=subprocess.DEVNULL)
            print(f"ml4t-live report (fresh process, run {rep}): {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
