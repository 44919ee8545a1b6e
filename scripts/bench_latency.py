"""Benchmark: live-path latency against a simulated venue on 127.0.0.1, through the real client.

``--venue ib``: LiveEngine + VenueBroker(IBGateway) + IBFeed (real ib_async) against
SimulatedIBGateway in step mode. A one-asset strategy places one MARKET order on every bar.

* bar -> order: from the moment the simulated gateway sent a bar's last 5-second real-time bar
  (``SimulatedIBGateway.bar_sent_ns``) to the moment it received the placeOrder made on that bar
  (``orders_received[].perf_ns``), minus the strategy's own time in ``on_data``. Both clocks are
  ``time.perf_counter_ns()`` in this one process. Covers: socket -> ib_async decode -> 5-s bar
  aggregation -> janus queue -> engine -> VenueBroker -> bridge call -> ib_async placeOrder -> socket.
* fill -> strategy-visible: from ib_async's execDetails callback on the session loop thread (the
  fill has been decoded) to the start of the ``on_data`` that sees the new position (the next bar,
  as in the backtest). In step mode that includes the wait for the next bar's data, which the
  simulated venue sends right after the fill; so it is an upper bound of the pure hand-over.

    .venv/bin/python scripts/bench_latency.py --venue ib               # 1,200 bars
    .venv/bin/python scripts/bench_latency.py --venue ib --bars 3000

``--venue alpaca``: LiveEngine + AlpacaBroker (VenueBroker over AlpacaGateway) + AlpacaFeed (real
alpaca-py) against SimulatedAlpaca in step mode, same bars and strategy idea. Alpaca's REST submit
is synchronous, so the POST happens inside ``submit_order``: only the strategy's time *before* it
is subtracted. The simulated Alpaca stamps ``bar_sent_ns`` after its ``await ws.send``, which can
read low; "bar decoded -> order received" starts when alpaca-py handed the decoded bar to the feed.

    .venv/bin/python scripts/bench_latency.py --venue alpaca           # 1,200 bars

Prints n, p50, p99 and max in microseconds. Targets (benchmark, not a test): bar -> order p50 <
1 ms, p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
from ml4t.backtest import BacktestConfig, Strategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml4t_live import LiveEngine

ASSET = "AAA"
START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def session_minutes(n: int) -> list[datetime]:
    """``n`` minute labels inside NYSE regular hours, over the consecutive full NYSE sessions from
    START (09:30-16:00 New York; weekends, holidays and half-days skipped, as the simulated venues
    replay only bars inside sessions: Jan 15, 2024 is Martin Luther King Jr. Day)."""
    from ml4t_live.schedule.calendar import Session, trading_day

    out: list[datetime] = []
    day = START
    while len(out) < n:
        session = trading_day("XNYS", day.date())
        if isinstance(session, Session) and not session.early_close:
            out += [session.open + timedelta(minutes=i) for i in range(390)]
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
        self.visible_ns: dict[datetime, tuple[int, float]] = {}

    def on_data(self, timestamp, data, context, broker):
        t0 = time.perf_counter_ns()
        pos = broker.get_position(ASSET)
        qty = pos.quantity if pos is not None else 0.0
        self.visible_ns[timestamp] = (t0, qty)
        broker.submit_order(ASSET, -1.0 if qty > 0 else 1.0)
        self.strategy_ns[timestamp] = time.perf_counter_ns() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, values_ns: list[int]) -> None:
    us = [v / 1000 for v in values_ns]
    print(
        f"{name:<28} n={len(us):>5}  p50={pct(us, 0.5):9.1f} µs  p99={pct(us, 0.99):9.1f} µs  "
        f"max={max(us):9.1f} µs  mean={statistics.fmean(us):9.1f} µs"
    )


def run_ib(n_bars: int, throttle: bool = False) -> None:
    from ml4t_live.sim.ib import SimulatedIBGateway
    from ml4t_live.venue_broker import VenueBroker
    from ml4t_live.venues.ib import IBConfig, IBFeed, IBGateway

    class TimedIBGateway(IBGateway):
        """IBGateway that notes when each execution reaches ib_async (on the session loop)."""

        exec_ns: ClassVar[dict[str, int]] = {}

        async def _setup(self) -> None:
            await super()._setup()
            assert self._session is not None
            self._session.ib.execDetailsEvent += self._stamp

        def _stamp(self, trade, fill) -> None:
            self.exec_ns.setdefault(fill.execution.orderRef, time.perf_counter_ns())

    bars = make_bars(n_bars)
    sim = SimulatedIBGateway(bars, config=BacktestConfig())
    port = sim.start()
    try:
        # ib_async paces itself at 45 messages/s (IB's limit is 50/s). Each bar costs the order
        # connection 2 messages (placeOrder + reqCurrentTime), so a step-mode replay faster
        # than ~22 bars/s would measure that pacing, not the path: it is off here (--throttle
        # keeps it). Live, one bar a minute never comes near it.
        cfg = IBConfig(
            port=port,
            client_id=11,
            request_timeout=10.0,
            max_requests_per_second=45 if throttle else 0,
        )
        gateway = TimedIBGateway(cfg)
        broker = VenueBroker(gateway, mode="paper", strategy_id="bench")
        last = session_minutes(n_bars)[-1]
        feed = IBFeed(cfg, [ASSET], bar_size="1 min", end=last + timedelta(minutes=1))
        strategy = PingPong()
        t0 = time.perf_counter()
        result = LiveEngine(strategy, broker, feed, session_dir=False).run()
        wall = time.perf_counter() - t0
        sent = sim.bar_sent_ns
        received = sim.orders_received
    finally:
        sim.close()

    bar_to_order = [
        r.perf_ns - sent[r.bar] - strategy.strategy_ns.get(r.bar, 0)
        for r in received
        if not r.modify and r.bar in sent
    ]
    labels = sorted(strategy.visible_ns)
    next_label = dict(pairwise(labels))
    fill_to_visible = []
    for order in result.orders:
        stamp = gateway.exec_ns.get(order.order_id)
        nxt = next_label.get(order.created_at)
        if stamp is not None and nxt is not None:
            fill_to_visible.append(strategy.visible_ns[nxt][0] - stamp)
    print(
        f"venue=ib  throttle={'on' if throttle else 'off'}  bars={n_bars}  orders={len(received)}  fills={len(result.fills)}  wall={wall:.2f}s "
        f"({n_bars / wall:,.0f} bars/s, step mode, loopback)"
    )
    report("bar sent -> order received", bar_to_order)
    report("fill -> strategy-visible", fill_to_visible)


def run_alpaca(n_bars: int) -> None:
    from ml4t_live.sim.alpaca import SimulatedAlpaca
    from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaConfig, AlpacaFeed
    from ml4t_live.venues.alpaca.order_stream import OrderStream

    fill_ns: dict[str, int] = {}
    bar_in_ns: dict[datetime, int] = {}

    class TimedStream(OrderStream):
        """Notes when each fill update reaches the gateway (decoded, on the trade-stream loop)."""

        async def _on_update(self, update):  # type: ignore[no-untyped-def]
            if str(getattr(update.event, "value", update.event)) == "fill":
                fill_ns.setdefault(update.order.client_order_id, time.perf_counter_ns())
            await super()._on_update(update)

    class TimedFeed(AlpacaFeed):
        """Notes when each bar reaches the feed (decoded by alpaca-py, on the data-stream loop)."""

        async def _on_bar(self, bar):  # type: ignore[no-untyped-def]
            bar_in_ns.setdefault(bar.timestamp, time.perf_counter_ns())
            await super()._on_bar(bar)

    class SubmitTimed(Strategy):
        """PingPong, timing only the strategy's own work before ``submit_order``."""

        def __init__(self) -> None:
            self.strategy_ns: dict[datetime, int] = {}
            self.visible_ns: dict[datetime, int] = {}

        def on_data(self, timestamp, data, context, broker):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter_ns()
            self.visible_ns[timestamp] = t0
            pos = broker.get_position(ASSET)
            qty = pos.quantity if pos is not None else 0.0
            self.strategy_ns[timestamp] = time.perf_counter_ns() - t0
            broker.submit_order(ASSET, -1.0 if qty > 0 else 1.0)

    sim = SimulatedAlpaca(
        make_bars(n_bars), config=BacktestConfig(), rate_limit_per_minute=None
    )
    sim.start()
    try:
        cfg = AlpacaConfig(
            key_id=sim.key_id,
            secret_key=sim.secret_key,
            base_url=sim.base_url,
            max_requests_per_minute=1_000_000,
            rate_limit_burst=10_000,  # the venue's budget is off too
        )
        broker = AlpacaBroker(cfg, strategy_id="bench")
        gateway = broker.gateway
        gateway.stream = TimedStream(cfg, gateway.tracker, gateway.rest)
        last = session_minutes(n_bars)[-1]
        feed = TimedFeed(cfg, [ASSET], end=last + timedelta(minutes=1))
        strategy = SubmitTimed()
        t0 = time.perf_counter()
        result = LiveEngine(strategy, broker, feed, session_dir=False).run()
        wall = time.perf_counter() - t0
        latency = sim.latency()
        received = sim.orders_received()
    finally:
        sim.close()

    rows = [
        r
        for r in latency
        if r["first_order_ns"] is not None and r["bar"] in strategy.strategy_ns
    ]
    bar_to_order = [
        r["first_order_ns"] - r["bar_sent_ns"] - strategy.strategy_ns[r["bar"]]
        for r in rows
    ]
    decoded_to_order = [
        r["first_order_ns"] - bar_in_ns[r["bar"]] - strategy.strategy_ns[r["bar"]]
        for r in rows
        if r["bar"] in bar_in_ns
    ]
    next_label = dict(pairwise(sorted(strategy.visible_ns)))
    fill_to_visible = []
    for order in result.orders:
        stamp = fill_ns.get(order.order_id)
        nxt = next_label.get(order.created_at)
        if stamp is not None and nxt is not None:
            fill_to_visible.append(strategy.visible_ns[nxt] - stamp)
    print(
        f"venue=alpaca  bars={n_bars}  orders={len(received)}  fills={len(result.fills)}  wall={wall:.2f}s "
        f"({n_bars / wall:,.0f} bars/s, step mode, loopback)"
    )
    report("bar sent -> order received", bar_to_order)
    report("bar decoded -> order received", decoded_to_order)
    report("fill -> strategy-visible", fill_to_visible)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venue", choices=["ib", "alpaca"], required=True)
    parser.add_argument("--bars", type=int, default=1200)
    parser.add_argument(
        "--throttle", action="store_true", help="keep ib_async's 45 msg/s pacing"
    )
    args = parser.parse_args()
    if args.bars < 2:
        parser.error("--bars must be >= 2")
    if args.venue == "ib":
        run_ib(args.bars, args.throttle)
    elif args.venue == "alpaca":
        run_alpaca(args.bars)


if __name__ == "__main__":
    main()
