"""Latency benchmark for the Alpaca path (a script, not a test):

    .venv/bin/python tests/venues/alpaca/alpaca_bench.py --bars 1200

LiveEngine + AlpacaBroker (VenueBroker over AlpacaGateway) + AlpacaFeed, real alpaca-py, against
SimulatedAlpaca in step mode on 127.0.0.1. A one-asset strategy places one MARKET order per bar.

* bar -> order: from the moment the simulated venue sent a minute bar on the data websocket
  (``SimulatedAlpaca.latency()[].bar_sent_ns``) to the moment it received the POST /v2/orders made
  on that bar (``first_order_ns``), minus the strategy's own time in ``on_data`` before it calls ``submit_order``. Both clocks are
  ``time.perf_counter_ns()`` in this one process. Covers: websocket -> msgpack -> alpaca-py Bar ->
  minute grouping -> janus queue -> engine -> VenueBroker -> token bucket -> requests POST -> socket.
  Caveat: the simulated venue stamps ``bar_sent_ns`` after its ``await ws.send``; when that await
  yields, the order can reach the venue first, so this figure reads low (even negative).
* bar decoded -> order received: the same, starting when alpaca-py handed the decoded bar to the
  feed's handler (client side): excludes the websocket hop, never reads low.
* fill -> strategy-visible: from the trade update reaching the gateway's handler on the stream
  loop (the fill has been decoded by alpaca-py) to the start of the ``on_data`` that sees the new
  position (the next bar, as in the backtest). In step mode this includes waiting for the next
  bar, which the venue sends right after the fill; an upper bound of the pure hand-over.

(Meant to back ``scripts/bench_latency.py --venue alpaca``; see ``run_alpaca``.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from ml4t.backtest import BacktestConfig, Strategy  # noqa: E402

from ml4t_live import LiveEngine  # noqa: E402

ASSET = "AAA"
START = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # Monday 09:30 New York (EST)


def session_minutes(n: int) -> list[datetime]:
    """``n`` minute labels in regular hours over consecutive weekdays from START (no holidays in
    the first three weeks of November 2026 before Thanksgiving on the 26th)."""
    out: list[datetime] = []
    day = START
    while len(out) < n:
        if day.weekday() < 5:
            out += [day + timedelta(minutes=i) for i in range(390)]
        day += timedelta(days=1)
    return out[:n]


def make_bars(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame(
        {
            "timestamp": session_minutes(n),
            "asset": [ASSET] * n,
            "open": open_,
            "high": np.maximum(open_, close) + 0.01,
            "low": np.minimum(open_, close) - 0.01,
            "close": close,
            "volume": rng.integers(1_000, 5_000, n).astype(float),
        }
    )


class PingPong(Strategy):
    """Buy 1 when flat, sell 1 when long: one MARKET order per bar."""

    def __init__(self) -> None:
        self.strategy_ns: dict[datetime, int] = {}
        self.visible_ns: dict[datetime, int] = {}

    def on_data(self, timestamp, data, context, broker):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter_ns()
        self.visible_ns[timestamp] = t0
        pos = broker.get_position(ASSET)
        qty = pos.quantity if pos is not None else 0.0
        # the strategy's own time, up to the order: submit_order itself is the path being measured
        # (Alpaca's REST submit is synchronous, so the POST happens inside it)
        self.strategy_ns[timestamp] = time.perf_counter_ns() - t0
        broker.submit_order(ASSET, -1.0 if qty > 0 else 1.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(name: str, values_ns: list[int]) -> None:
    us = [v / 1000 for v in values_ns]
    print(
        f"{name:<28} n={len(us):>5}  p50={pct(us, 0.5):9.1f} µs  p99={pct(us, 0.99):9.1f} µs  "
        f"max={max(us):9.1f} µs  mean={statistics.fmean(us):9.1f} µs"
    )


def run_alpaca(n_bars: int) -> None:
    from ml4t_live.sim.alpaca import SimulatedAlpaca
    from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaConfig, AlpacaFeed
    from ml4t_live.venues.alpaca.gateway import AlpacaGateway

    fill_ns: dict[str, int] = {}
    bar_in_ns: dict[datetime, int] = {}

    class TimedFeed(AlpacaFeed):
        """AlpacaFeed that notes when each bar reaches it (decoded by alpaca-py, on the feed loop)."""

        async def _on_bar(self, bar: Any) -> None:
            bar_in_ns.setdefault(bar.timestamp, time.perf_counter_ns())
            await super()._on_bar(bar)

    class TimedGateway(AlpacaGateway):
        """AlpacaGateway that notes when each fill update reaches it (on the stream loop)."""

        async def _on_update(self, update: Any) -> None:
            if str(getattr(update.event, "value", update.event)) == "fill":
                fill_ns.setdefault(update.order.client_order_id, time.perf_counter_ns())
            await super()._on_update(update)

    sim = SimulatedAlpaca(make_bars(n_bars), config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = AlpacaConfig(
            key_id=sim.key_id, secret_key=sim.secret_key, base_url=sim.base_url,
            max_requests_per_minute=1_000_000, rate_limit_burst=10_000,  # the venue's budget is off too
        )
        broker = AlpacaBroker(cfg, strategy_id="bench")
        gateway = TimedGateway(cfg)
        gateway.is_ours = broker.ids.is_ours
        broker.gateway = gateway
        last = session_minutes(n_bars)[-1]
        feed = TimedFeed(cfg, [ASSET], end=last + timedelta(minutes=1))
        strategy = PingPong()
        t0 = time.perf_counter()
        result = LiveEngine(strategy, broker, feed, session_dir=False).run()
        wall = time.perf_counter() - t0
        latency = sim.latency()
        received = sim.orders_received()
    finally:
        sim.close()

    bar_to_order = [
        row["first_order_ns"] - row["bar_sent_ns"] - strategy.strategy_ns.get(row["bar"], 0)
        for row in latency
        if row["first_order_ns"] is not None and row["bar"] in strategy.strategy_ns
    ]
    decoded_to_order = [
        row["first_order_ns"] - bar_in_ns[row["bar"]] - strategy.strategy_ns.get(row["bar"], 0)
        for row in latency
        if row["first_order_ns"] is not None and row["bar"] in bar_in_ns and row["bar"] in strategy.strategy_ns
    ]
    labels = sorted(strategy.visible_ns)
    next_label = dict(zip(labels, labels[1:], strict=False))
    fill_to_visible = []
    for order in result.orders:
        stamp = fill_ns.get(order.order_id)
        nxt = next_label.get(order.created_at)
        if stamp is not None and nxt is not None:
            fill_to_visible.append(strategy.visible_ns[nxt] - stamp)
    print(f"venue=alpaca  bars={n_bars}  orders={len(received)}  fills={len(result.fills)}  wall={wall:.2f}s "
          f"({n_bars / wall:,.0f} bars/s, step mode, loopback)")
    report("bar sent -> order received", bar_to_order)
    report("bar decoded -> order received", decoded_to_order)
    report("fill -> strategy-visible", fill_to_visible)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1200)
    args = parser.parse_args()
    if args.bars < 2:
        parser.error("--bars must be >= 2")
    run_alpaca(args.bars)


if __name__ == "__main__":
    main()
