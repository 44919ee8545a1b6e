"""Benchmark: what the session journal costs per bar, next to what the backtest spends per bar.

The journal is written on the venue path (``VenueBroker``): every bar the strategy consumes is one
INSERT (its data msgpack-encoded), every order one intent (committed before it is sent) + one
command row and one result update, every venue answer one event row (fills one more); the rest of
a bar's rows are committed at its end. This measures those
appends on a real journal file (WAL, ``synchronous=NORMAL``) for the same bars
``scripts/bench_engine.py`` uses, and the backtest's own run time on them, and prints:

* µs per bar of ``ml4t.backtest.Engine.run()`` and of the journal's appends;
* the journal's share of the backtest's time per bar;
* whether append cost stays flat: µs/bar of the first and of the last 1,000 bars.

    .venv/bin/python scripts/bench_journal.py                       # 1, 10, 100 assets x 10k bars
    .venv/bin/python scripts/bench_journal.py --sizes 100x10000 --orders-every 10

``--orders-every N``: every N-th bar each asset gets one order with an accept and a fill event
(as the benchmark's ``trade`` strategy places them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ml4t.backtest import BacktestConfig, DataFeed, Engine, OrderSide, Strategy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import make_prices  # noqa: E402

from ml4t_live.events import OrderAccepted, OrderFilled  # noqa: E402
from ml4t_live.journal import Journal  # noqa: E402
from ml4t_live.journal.arrival import journaled  # noqa: E402


class Noop(Strategy):
    def on_data(self, timestamp, data, context, broker):
        pass


def backtest_seconds(prices) -> float:
    engine = Engine(DataFeed(prices_df=prices), Noop(), BacktestConfig(calendar=None))
    started = time.perf_counter()
    engine.run()
    return time.perf_counter() - started


def journal_seconds(prices, orders_every: int) -> tuple[float, list[float]]:
    """Replays the bars into a fresh journal as the venue path does; (total s, s per bar)."""
    feed = DataFeed(prices_df=prices)
    per_bar: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal.open(Path(folder) / "bench.journal")
        now = datetime(2024, 1, 2, tzinfo=UTC)
        for n, (timestamp, data, context) in enumerate(feed, start=1):
            started = time.perf_counter()
            bar_n = journal.append_bar(timestamp, data, context, arrived=journaled(time.monotonic()))  # a live bar
            journal.commit()  # before on_data (VenueBroker.begin_bar)
            if orders_every and n % orders_every == 0:
                for seq, asset in enumerate(sorted(data), start=1):
                    cid = f"bench-{n}-{asset}-b{seq}"
                    request = {"asset": asset, "side": "buy", "quantity": 1.0, "order_type": "market"}
                    journal.append_intent(cid, bar_n, request)
                    journal.append_command(bar_n, seq, "submit", cid, request, None)
                    journal.set_command_result(bar_n, seq, {"status": "sent"})
                    journal.commit()  # after each command (JournalLink.command)
                    journal.append_event(bar_n, OrderAccepted(cid, f"V{n}{seq}"))
                    fill = OrderFilled(cid, f"E{n}{seq}", asset, OrderSide.BUY, 1.0, 100.0, now, 0.0, 1.0)
                    journal.append_event(bar_n, fill)
                    journal.append_fill(bar_n, fill.exec_id, cid, asset, 1.0, 100.0, 0.0, now)
                    journal.set_intent(cid, status="filled", filled=1.0)
            journal.commit()  # the end of the bar (VenueBroker.end_bar)
            per_bar.append(time.perf_counter() - started)
        journal.close()
    return sum(per_bar), per_bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1x10000", "10x10000", "100x10000"])
    parser.add_argument("--orders-every", type=int, default=0)
    args = parser.parse_args()
    print(f"{'assets x bars':>14} {'backtest µs/bar':>16} {'journal µs/bar':>15} {'journal/backtest':>17} "
          f"{'first 1k µs':>12} {'last 1k µs':>11}")  # fmt: skip
    for size in args.sizes:
        n_assets, n_bars = (int(x) for x in size.split("x"))
        prices = make_prices(n_assets, n_bars)
        bt = backtest_seconds(prices)
        total, per_bar = journal_seconds(prices, args.orders_every)
        first = sum(per_bar[:1000]) / min(1000, len(per_bar)) * 1e6
        last = sum(per_bar[-1000:]) / min(1000, len(per_bar)) * 1e6
        print(f"{size:>14} {bt / n_bars * 1e6:16.1f} {total / n_bars * 1e6:15.1f} "
              f"{total / bt:17.2f} {first:12.1f} {last:11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
