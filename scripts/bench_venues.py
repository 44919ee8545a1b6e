"""Benchmark: many symbols, and a week, through the simulated venues with the real clients.

``scale`` (issue 15, target 2): N symbols of 1-minute bars through SimulatedIBGateway (IBBroker +
IBFeed over ib_async) or SimulatedAlpaca (AlpacaBroker + AlpacaFeed over alpaca-py), venue and
client in ONE process, the engine recording its session files and journal as by default. The
strategy stamps each ``on_data`` and places ``--orders`` MARKET orders per bar (1 share, buy/sell
in turn, on rotating symbols). Printed per run:

* bar -> on_data: from the venue's send of the minute's last bar (IB: the last 5-second real-time
  bar of every symbol, ``SimulatedIBGateway.bar_sent_ns``; Alpaca: the minute bars' websocket
  send, ``SimulatedAlpaca.latency()``) to the start of that minute's ``on_data``, split into
  send -> the feed releases the minute (``BarClosed.received_at``), -> the engine takes it off the
  queue, -> ``on_data`` (the engine's step: fill barrier, journal, rails);
* bar -> order at venue: from the same send to the venue receiving the bar's first order
  (``orders_received``: IB ``perf_ns``, Alpaca ``received_ns``). All stamps are
  ``time.perf_counter_ns()`` in this one process;
* CPU per bar: the process's CPU time minus the simulator thread's (``ml4t-<venue>-sim``), over
  the measured bars, per minute (all symbols) and per symbol-bar;
* RSS when the feed was subscribed, at the last bar, and the peak (VmHWM); the simulator's own
  memory is in it (one process);
* subscribe: ``feed.start()`` (IB: one reqContractDetails and one reqRealTimeBars per symbol,
  through ib_async's 45 msg/s pacing unless ``--no-pacing``; Alpaca: one subscribe message).

Bars sent before the feed finished subscribing, and the ``--skip`` minutes after, are not
measured (start-up, partial first bars and the seam's history). The venues serve at ``--speed``
times real time (e.g. 30: a minute every 2 s, IB's 5-second bars every 167 ms), so each
minute's bars arrive spread out as they do live; ``--speed 0`` (the default) is step mode (IB sends a
minute's twelve 5-second bars at once, which overstates the burst at the end of a minute;
``--lead S`` sends the first eleven, waits S seconds, then the last one, as a live gateway spreads
them, and still waits for the client between minutes, so orders fill before the next bar).

    .venv/bin/python scripts/bench_venues.py scale --venue ib --symbols 100,500,1000 --lead 1.0
    .venv/bin/python scripts/bench_venues.py scale --venue alpaca --symbols 100,500,1000

``week`` (target 3): ``--days`` trading days of ``--bars-per-day`` 1-minute bars on ``--symbols``
symbols, step mode, the venue in a CHILD process (so the RSS, fds and threads measured are the
client's alone), trading ``--orders`` orders per bar, and at the first bar of every day after the
first the venue's nightly break: IB ``gateway_restart`` (every connection dropped, refused for 2 s;
``--reset nightly_reset`` for 1100/1102 instead), Alpaca ``drop_data_stream`` + ``drop_trade_stream``.
Printed per day, at its second-to-last bar (the last one's can overlap the night's restart): RSS
(anonymous / file / CPython's small-object arenas), live gc-tracked objects, open fds, threads,
session-file and journal bytes, events so far, client CPU per bar and wall per bar.

    .venv/bin/python scripts/bench_venues.py week --venue ib
    .venv/bin/python scripts/bench_venues.py week --venue alpaca --bars-per-day 390

Every figure line carries the 1-minute load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
from ml4t.backtest import BacktestConfig, Strategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import pct, session_minutes

from ml4t_live import LiveEngine
from ml4t_live.events import BarClosed

PACING = 45  # ib_async's default client-side budget (messages per second)


# ---------------------------------------------------------------------------- data and probes
def symbols_for(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def make_bars(symbols: list[str], ts: list[datetime], seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    minutes, n = len(ts), len(symbols)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.001, (minutes, n)), axis=0))
    open_ = np.vstack([np.full((1, n), 50.0), close[:-1]])
    return pl.DataFrame(
        {
            "timestamp": [t for t in ts for _ in range(n)],
            "asset": symbols * minutes,
            "open": open_.ravel(),
            "high": (np.maximum(open_, close) + 0.01).ravel(),
            "low": (np.minimum(open_, close) - 0.01).ravel(),
            "close": close.ravel(),
            "volume": rng.integers(1_000, 5_000, minutes * n).astype(float),
        }
    )


def proc_status(field: str) -> float:
    """A /proc/self/status value: kB fields in MB, counts as they are."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            value = float(line.split()[1])
            return value / 1024 if line.rstrip().endswith("kB") else value
    raise KeyError(field)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_cpu_ns(prefix: str) -> int:
    total = 0
    for t in threading.enumerate():
        if t.name.startswith(prefix) and t.ident is not None:
            try:
                total += time.clock_gettime_ns(time.pthread_getcpuclockid(t.ident))
            except (OSError, ProcessLookupError):
                pass  # the thread ended between enumerate() and the read
    return total


def obmalloc_mb() -> float:
    """MB in CPython's small-object arenas (``sys._debugmallocstats``, written to fd 2)."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out:
            if line.startswith("# arenas allocated current"):
                current = int(line.split("=")[1].replace(",", ""))
            if line.startswith("Total"):
                return current * (1 << 20) / 1e6 if "current" in locals() else float("nan")
    return float("nan")


def load() -> str:
    return "load={:.2f}/{:.2f}/{:.2f}".format(*os.getloadavg())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Probe(Strategy):
    """Stamps every on_data; ``orders`` 1-share MARKET orders per bar on rotating symbols."""

    def __init__(self, symbols: list[str], orders: int, on_bar=None) -> None:
        self.symbols = symbols
        self.orders = orders
        self.on_bar = on_bar
        self.start_ns: dict[datetime, int] = {}
        self.order_bar: dict[str, datetime] = {}
        self.catch_up = 0
        self._next = 0

    def on_data(self, timestamp, data, context, broker):  # type: ignore[no-untyped-def]
        self.start_ns[timestamp] = time.perf_counter_ns()
        if self.on_bar is not None:
            self.on_bar(timestamp)
        for _ in range(self.orders):
            asset = self.symbols[self._next % len(self.symbols)]
            self._next += 1
            if asset not in data:
                continue
            pos = broker.get_position(asset)
            qty = pos.quantity if pos is not None else 0.0
            order = broker.submit_order(asset, -1.0 if qty > 0 else 1.0)
            if order is not None:
                self.order_bar[order.order_id] = timestamp


def ms_stats(values_ns: list[int]) -> str:
    if not values_ns:
        return "n=0"
    ms = [v / 1e6 for v in values_ns]
    return f"n={len(ms)} p50={pct(ms, 0.5):.1f} p99={pct(ms, 0.99):.1f} max={max(ms):.1f} ms"


# ---------------------------------------------------------------------------- target 2: scale
class Stamped:
    """Feed mixin: for each BarClosed, when the feed released it (``received_at``, monotonic =
    perf_counter on Linux) and when the engine took it off the queue (``perf_counter_ns``)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.released_ns: dict[datetime, int] = {}
        self.taken_ns: dict[datetime, int] = {}

    def next_event(self, timeout: float):  # type: ignore[no-untyped-def]
        event = super().next_event(timeout)  # type: ignore[misc]
        if isinstance(event, BarClosed) and event.received_at is not None:
            self.taken_ns[event.timestamp] = time.perf_counter_ns()
            self.released_ns[event.timestamp] = int(event.received_at * 1e9)
        return event


def scale_one(venue: str, n: int, minutes: int, speed: float | None, orders: int, skip: int,
              pacing: bool, series: bool = False, lead: float = 0.0) -> None:  # fmt: skip
    symbols = symbols_for(n)
    bars = make_bars(symbols, session_minutes(minutes))
    end = session_minutes(minutes)[-1] + timedelta(minutes=1)
    marks: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-venues-"))
    sim_prefix = f"ml4t-{venue}-sim"

    def ready() -> None:
        marks["ready_ns"] = time.perf_counter_ns()
        marks["rss_ready"] = proc_status("VmRSS")

    if venue == "ib":
        from ml4t_live.sim.ib import SimulatedIBGateway
        from ml4t_live.venues.ib import IBBroker, IBConfig, IBFeed

        class Feed(Stamped, IBFeed):
            def start(self) -> None:
                t0 = time.perf_counter()
                super().start()
                marks["subscribe_s"] = time.perf_counter() - t0
                ready()

        sim = SimulatedIBGateway(bars, speed=speed, config=BacktestConfig(), step_lead=lead)
        port = sim.start()
        cfg = IBConfig(port=port, client_id=21, request_timeout=60.0, connect_timeout=60.0,
                       max_requests_per_second=PACING if pacing else 0)  # fmt: skip
        broker = IBBroker(cfg, strategy_id="benchscale", state_dir=tmp / "state")
        feed = Feed(cfg, symbols, bar_size="1 min", end=end)
    else:
        from ml4t_live.sim.alpaca import SimulatedAlpaca
        from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaConfig, AlpacaFeed

        class Feed(Stamped, AlpacaFeed):  # type: ignore[no-redef]
            def start(self) -> None:
                t0 = time.perf_counter()
                super().start()
                marks["subscribe_s"] = time.perf_counter() - t0
                ready()

        sim = SimulatedAlpaca(bars, speed=speed, config=BacktestConfig(), rate_limit_per_minute=None)
        sim.start()
        cfg = AlpacaConfig(key_id=sim.key_id, secret_key=sim.secret_key, base_url=sim.base_url,
                           max_requests_per_minute=1_000_000, rate_limit_burst=10_000)  # fmt: skip
        broker = AlpacaBroker(cfg, strategy_id="benchscale", state_dir=tmp / "state")
        feed = Feed(cfg, symbols, end=end)

    window: dict[str, float] = {}

    def on_bar(ts: datetime) -> None:
        if "cpu0" not in window and "ready_ns" in marks:
            window.update(cpu0=time.process_time_ns(), sim0=thread_cpu_ns(sim_prefix), ts0=ts)
        window.update(cpu1=time.process_time_ns(), sim1=thread_cpu_ns(sim_prefix),
                      rss_last=proc_status("VmRSS"))  # fmt: skip

    strategy = Probe(symbols, orders, on_bar)
    try:
        t0 = time.perf_counter()
        LiveEngine(strategy, broker, feed, session_dir=tmp / "sessions").run()
        wall = time.perf_counter() - t0
        if venue == "ib":
            sent = sim.bar_sent_ns
            first_order: dict[datetime, int] = {}
            for r in sim.orders_received:
                bar = strategy.order_bar.get(r.order_ref)
                if bar is not None and not r.modify:
                    first_order[bar] = min(first_order.get(bar, r.perf_ns), r.perf_ns)
        else:
            sent = {r["bar"]: r["bar_sent_ns"] for r in sim.latency()}
            first_order = {}
            for r in sim.orders_received():
                bar = strategy.order_bar.get(r["order"]["client_order_id"])
                if bar is not None:
                    first_order[bar] = min(first_order.get(bar, r["received_ns"]), r["received_ns"])
    finally:
        sim.close()

    ready_ns = marks.get("ready_ns", math.inf)
    # the replay's last bar is left out: its on_data waits the engine's settle time for the
    # previous bar's order (measured: 5.0 s in step mode, every run), an end-of-replay effect
    labels = sorted(ts for ts in strategy.start_ns if ts in sent and sent[ts] > ready_ns)[skip:-1]
    to_data = [strategy.start_ns[ts] - sent[ts] for ts in labels]
    to_order = [first_order[ts] - sent[ts] for ts in labels if ts in first_order]
    released = [feed.released_ns[ts] - sent[ts] for ts in labels if ts in feed.released_ns]
    queued = [feed.taken_ns[ts] - feed.released_ns[ts] for ts in labels if ts in feed.taken_ns]
    stepped = [strategy.start_ns[ts] - feed.taken_ns[ts] for ts in labels if ts in feed.taken_ns]
    measured = [ts for ts in sorted(strategy.start_ns) if ts >= window.get("ts0", end)]
    n_bars = max(1, len(measured) - 1)  # CPU from the first measured on_data to the last one
    client_cpu = (window["cpu1"] - window["cpu0"]) - (window["sim1"] - window["sim0"])
    sim_cpu = window["sim1"] - window["sim0"]
    print(
        f"venue={venue} symbols={n} minutes={minutes} speed={speed or 'step'} "
        f"{f'lead={lead:g}s ' if lead else ''}orders/bar={orders} "
        f"pacing={'on' if pacing else 'off'} bars_seen={len(strategy.start_ns)} measured={len(labels)} "
        f"wall={wall:.1f}s subscribe={marks.get('subscribe_s', float('nan')):.2f}s {load()}"
    )
    print(f"  bar -> on_data           {ms_stats(to_data)}")
    print(f"    send -> feed releases  {ms_stats(released)}")
    print(f"    queue -> engine takes  {ms_stats(queued)}")
    print(f"    engine step -> on_data {ms_stats(stepped)}")
    if series:
        print("  series (s):", " ".join(f"{v / 1e9:.2f}" for v in to_data))
    print(f"  bar -> order at venue    {ms_stats(to_order)}")
    print(
        f"  client CPU per bar       {client_cpu / n_bars / 1e6:.2f} ms/minute, "
        f"{client_cpu / n_bars / n / 1e3:.1f} us/symbol-bar (simulator thread: "
        f"{sim_cpu / n_bars / 1e6:.2f} ms/minute) over {n_bars} bars"
    )
    print(
        f"  RSS (venue+client)       subscribed {marks.get('rss_ready', float('nan')):.0f} MB, "
        f"last bar {window.get('rss_last', float('nan')):.0f} MB, peak {proc_status('VmHWM'):.0f} MB"
    )
    sys.stdout.flush()


def run_scale(args: argparse.Namespace) -> None:
    """Each (venue, N) in its own child process, so RSS and threads start clean."""
    speed = args.speed or None
    for venue in args.venue.split(","):
        for n in [int(s) for s in args.symbols.split(",")]:
            minutes = args.minutes
            if minutes is None:  # bars go out while the feed subscribes: lead + skip + measured
                subscribe_s = (2 * n / PACING if venue == "ib" and args.pacing else 2.0) + 3.0
                lead = math.ceil(subscribe_s * speed / 60) if speed else 0
                minutes = lead + args.skip + args.measure
            cmd = [sys.executable, __file__, "scale-one", "--venue", venue, "--n", str(n),
                   "--minutes", str(minutes), "--speed", str(args.speed), "--orders", str(args.orders),
                   "--skip", str(args.skip)] + ([] if args.pacing else ["--no-pacing"])
            cmd += ["--series"] if args.series else []  # fmt: skip
            cmd += ["--lead", str(args.lead)] if args.lead else []
            subprocess.run(cmd, check=False)


# ---------------------------------------------------------------------------- target 3: a week
def week_minutes(days: int, per_day: int) -> list[datetime]:
    """The first ``per_day`` minutes of ``days`` consecutive NYSE sessions."""
    return [t for i, t in enumerate(session_minutes(days * 390)) if i % 390 < per_day]


def serve(args: argparse.Namespace) -> None:
    """Child process: the venue in step mode, with the nightly break before each day's first bar."""
    starts = [d * args.bars_per_day for d in range(1, args.days)]
    if args.venue == "ib":
        from ml4t_live.sim.ib import SimulatedIBGateway

        sim = SimulatedIBGateway(args.data, config=BacktestConfig())
        info = {"port": sim.start()}
        for bar in starts if args.reset != "none" else []:
            if args.reset == "nightly_reset":
                sim.inject("nightly_reset", at_bar=bar, bars=1)
            else:
                sim.inject("gateway_restart", at_bar=bar, seconds=2.0)
    else:
        from ml4t_live.sim.alpaca import SimulatedAlpaca

        faults = [{"kind": k, "at_bar": bar} for bar in starts
                  for k in ("drop_data_stream", "drop_trade_stream")]  # fmt: skip
        sim = SimulatedAlpaca(args.data, config=BacktestConfig(), rate_limit_per_minute=None,
                              faults=faults)  # fmt: skip
        sim.start()
        info = {"key_id": sim.key_id, "secret_key": sim.secret_key, "base_url": sim.base_url}
    print(json.dumps(info), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        sim.close()


def run_week(args: argparse.Namespace) -> None:
    symbols = symbols_for(args.symbols)
    ts = week_minutes(args.days, args.bars_per_day)
    # measured at each day's second-to-last bar: the last one's on_data can overlap the night's
    # restart (the venue starts the next bar, and drops every client, once the bar was taken),
    # so every day is measured at the same point, before its night
    day_ends = {t for i, t in enumerate(ts) if i % args.bars_per_day == max(0, args.bars_per_day - 2)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-week-"))
    data = tmp / "bars.parquet"
    make_bars(symbols, ts).write_parquet(data)
    child = subprocess.Popen(
        [sys.executable, __file__, "serve", "--venue", args.venue, "--data", str(data),
         "--days", str(args.days), "--bars-per-day", str(args.bars_per_day), "--reset", args.reset],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    info = json.loads(child.stdout.readline())
    end = ts[-1] + timedelta(minutes=1)
    if args.venue == "ib":
        from ml4t_live.venues.ib import IBBroker, IBConfig, IBFeed

        cfg = IBConfig(port=info["port"], client_id=31, request_timeout=30.0)
        broker = IBBroker(cfg, strategy_id="benchweek", state_dir=tmp / "state")
        feed = IBFeed(cfg, symbols, bar_size="1 min", end=end)
    else:
        from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaConfig, AlpacaFeed

        cfg = AlpacaConfig(key_id=info["key_id"], secret_key=info["secret_key"], base_url=info["base_url"],
                           max_requests_per_minute=1_000_000, rate_limit_burst=10_000)  # fmt: skip
        broker = AlpacaBroker(cfg, strategy_id="benchweek", state_dir=tmp / "state")
        feed = AlpacaFeed(cfg, symbols, end=end)

    days: list[dict[str, float]] = []
    last = {"cpu": time.process_time_ns(), "wall": time.perf_counter_ns(), "bars": 0}

    def on_bar(t: datetime) -> None:
        if t not in day_ends:
            return
        bars = len(strategy.start_ns)
        cpu, wall = time.process_time_ns(), time.perf_counter_ns()
        if args.collect:  # a full collection first: cyclic garbage not yet collected goes
            gc.collect()
        if args.trim:  # hand freed heap back to the OS first: what stays is memory in use
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        day_starts = sorted(strategy.start_ns.values())[last["bars"] :]
        gaps = [b - a for a, b in pairwise(day_starts)]
        days.append({
            "bars": bars, "orders": len(strategy.order_bar), "rss": proc_status("VmRSS"),
            "fds": open_fds(), "threads": proc_status("Threads"),
            "anon": proc_status("RssAnon"), "file": proc_status("RssFile"), "arenas": obmalloc_mb(),
            "objects": len(gc.get_objects()) / 1000,
            "session": dir_bytes(tmp / "sessions") / 1e6, "journal": dir_bytes(tmp / "state") / 1e6,
            "cpu_ms": (cpu - last["cpu"]) / max(1, bars - last["bars"]) / 1e6,
            "wall_ms": (wall - last["wall"]) / max(1, bars - last["bars"]) / 1e6,
            "median_ms": statistics.median(gaps) / 1e6 if gaps else float("nan"), "load": os.getloadavg()[0],
        })  # fmt: skip
        last.update(cpu=cpu, wall=wall, bars=bars)
        if args.trace:
            snaps.append(tracemalloc.take_snapshot())

    snaps: list[tracemalloc.Snapshot] = []
    if args.trace:
        tracemalloc.start(args.trace)
    strategy = Probe(symbols, args.orders, on_bar)
    t0 = time.perf_counter()
    try:
        result = LiveEngine(strategy, broker, feed, session_dir=tmp / "sessions", retain=args.retain).run()
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    wall = time.perf_counter() - t0
    print(
        f"venue={args.venue} symbols={args.symbols} days={args.days} bars/day={args.bars_per_day} "
        f"orders/bar={args.orders} retain={args.retain} trim={args.trim} reset={args.reset if args.venue == 'ib' else 'drop streams'} "
        f"bars_seen={len(strategy.start_ns)} orders={len(result.orders)} fills={len(result.fills)} "
        f"wall={wall:.0f}s {load()}"
    )
    print("day  bars  orders  RSS MB (anon/file/obmalloc)  k objects  fds  threads  session MB  journal MB  CPU ms/bar  "
          "wall ms/bar  median wall ms  load1")  # fmt: skip
    for i, d in enumerate(days, 1):
        print(f"{i:>3} {d['bars']:>5} {d['orders']:>7} {d['rss']:>7.1f} ({d['anon']:.0f}/{d['file']:.0f}/{d['arenas']:.0f}) {d['objects']:>10.1f} {d['fds']:>4} {d['threads']:>8.0f} "
              f"{d['session']:>11.2f} {d['journal']:>11.2f} {d['cpu_ms']:>11.2f} {d['wall_ms']:>12.2f} "
              f"{d['median_ms']:>15.2f} {d['load']:>6.2f}")  # fmt: skip
    if len(snaps) >= 2:  # where the memory that grew after day 1 was allocated
        print(f"tracemalloc: top growth day 1 -> day {len(snaps)} (traceback depth {args.trace})")
        by_file = snaps[-1].compare_to(snaps[0], "filename")
        print(f"  total {sum(s.size_diff for s in by_file) / 1e6:+.2f} MB; by file:")
        for stat in by_file[:8]:
            print(f"    {stat.size_diff / 1e6:+.2f} MB {stat.traceback.format()[0].strip()}")
        for stat in snaps[-1].compare_to(snaps[0], "traceback")[:12]:
            print(f"  {stat.size_diff / 1e6:+.2f} MB in {stat.count_diff:+d} blocks")
            for line in stat.traceback.format()[-2 * args.trace :]:
                print("     ", line)
    print(f"after the run: session files {dir_bytes(tmp / 'sessions') / 1e6:.2f} MB, journal "
          f"{dir_bytes(tmp / 'state') / 1e6:.2f} MB ({tmp})")  # fmt: skip
    if len(days) >= 2:
        print(f"RSS growth day 1 -> day {len(days)}: {days[-1]['rss'] - days[0]['rss']:+.1f} MB; "
              f"fds {days[0]['fds']} -> {days[-1]['fds']}; threads {days[0]['threads']:.0f} -> "
              f"{days[-1]['threads']:.0f}")  # fmt: skip


# ---------------------------------------------------------------------------- command line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("scale", help="target 2: N symbols through one venue")
    sc.add_argument("--venue", default="ib,alpaca", help="ib, alpaca or ib,alpaca")
    sc.add_argument("--symbols", default="100,500,1000")
    sc.add_argument("--measure", type=int, default=30, help="measured minutes")
    sc.add_argument("--minutes", type=int, default=None, help="replayed minutes (default: enough)")
    one = sub.add_parser("scale-one")
    one.add_argument("--venue", required=True)
    one.add_argument("--n", type=int, required=True)
    one.add_argument("--minutes", type=int, required=True)
    for p in (sc, one):
        p.add_argument("--speed", type=float, default=0.0, help="x real time; 0 = step mode (default)")
        p.add_argument("--orders", type=int, default=1, help="orders per bar")
        p.add_argument("--skip", type=int, default=5, help="minutes after subscribing not measured")
        p.add_argument("--no-pacing", dest="pacing", action="store_false",
                       help="IB: turn ib_async's 45 msg/s pacing off")  # fmt: skip
        p.add_argument("--series", action="store_true", help="print every bar's bar -> on_data (s)")
        p.add_argument("--lead", type=float, default=0.0,
                       help="IB step mode: s between a minute's first eleven 5-second bars and "
                            "its last one (0: all twelve at once)")  # fmt: skip
    wk = sub.add_parser("week", help="target 3: a week of trading with nightly reconnects")
    sv = sub.add_parser("serve")
    sv.add_argument("--data", required=True)
    for p in (wk, sv):
        p.add_argument("--venue", choices=["ib", "alpaca"], required=True)
        p.add_argument("--days", type=int, default=5)
        p.add_argument("--bars-per-day", type=int, default=390)
        p.add_argument("--reset", choices=["gateway_restart", "nightly_reset", "none"],
                       default="gateway_restart", help="IB: the nightly break (none: no break)")  # fmt: skip
    wk.add_argument("--symbols", type=int, default=50)
    wk.add_argument("--orders", type=int, default=2, help="orders per bar")
    wk.add_argument("--retain", type=int, default=None, help="LiveEngine retain= (default: keep all)")
    wk.add_argument("--trim", action="store_true", help="malloc_trim(0) before each day's RSS")
    wk.add_argument("--collect", action="store_true", help="gc.collect() before each day's RSS")
    wk.add_argument("--trace", type=int, default=0, help="tracemalloc traceback depth (0: off)")
    args = parser.parse_args()
    if args.cmd == "scale":
        run_scale(args)
    elif args.cmd == "scale-one":
        scale_one(args.venue, args.n, args.minutes, args.speed or None, args.orders, args.skip,
                  args.pacing, args.series, args.lead)  # fmt: skip
    elif args.cmd == "week":
        run_week(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
