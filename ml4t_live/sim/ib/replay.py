"""The bar replay that drives the simulated gateway's virtual clock.

For each recorded bar timestamp ``t`` (bars are labelled by their START, like the backtest's
data): ``open_bar(t)`` (fills at t's open go out) -> t's data streams as ``bar_seconds / 5``
five-second real-time bars that aggregate exactly to the recorded bar -> the clock waits ->
``close_bar()`` (MOC fills at t's close) -> next bar. A new New York trading date first ends
the previous session (DAY orders expire, still before the faults scheduled at the new day's
first bar, e.g. the nightly ``gateway_restart``) and starts a new day: from then on
reqExecutions and reqCompletedOrders report that day's only, as TWS does.

Step mode (``speed=None``): the clock waits until the client has caught up, signalled by a
``reqCurrentTime`` on any connection after bar t's data went out. A bar's 5-second bars go out
at once, unless ``step_lead`` > 0: then all but the last, a pause of ``step_lead`` seconds (a
live gateway spreads them over the bar, so the client has decoded them when the last comes),
then the last one. Either way ``bar_sent_ns[t]`` is stamped after the last one is written.
The first bar is released by a ``reqCurrentTime`` or as soon as every replayed symbol has a
real-time bar subscription (a client
that subscribes to some symbols only gets its first bar once it has subscribed nothing new for
``SUBSET_START_GRACE`` seconds).
Speed mode: ``speed`` x real time (a 5-second bar every ``5 / speed`` s; an overnight gap
costs one slot); bar t closes one slot after its last 5-second bar, so a client that reacts
within ``5 / speed`` s trades like the backtest. The clock starts at the FIRST CONNECTION:
at that client's first real-time bar subscription or reqCurrentTime, and at the latest
``CONNECT_START_GRACE`` seconds after it connected (so a client that only places orders gets
fills; one that subscribes right after connecting gets every bar from the first). Both modes
are paced by the shared VirtualClock.

After the last bar the clock goes on (``speed`` x wall time; step mode: wall time): reqCurrentTime
and the end of reqHistoricalData move on, and no bar comes, as on a real gateway after the close.

History: the first ``warmup_bars`` recorded bars (``sim ib --history N``) are never replayed;
they are the past that reqHistoricalData / reqHeadTimeStamp serve before the first replayed
bar (the virtual "now" starts at the first replayed bar's label).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from loguru import logger

from ..bars import SimBar
from ..clock import VirtualClock
from . import encoders as enc
from .market_data import NY, aggregate, as_utc, split_bar
from .ticks import tick_by_tick

_log = logger.bind(component="sim.ib.replay")
SPEED_START_GRACE = 0.2
SUBSET_START_GRACE = 1.5  # s without a new subscription before a subset subscriber gets bar 1 (more
# than the ~1 s gaps of ib_async's 45-per-second pacing: a paced client subscribing hundreds of symbols
# must not start a subset, or the "covered" release below puts the replay a bar ahead of it)
CONNECT_START_GRACE = 1.0  # speed mode: s after the first connection before the clock starts


def infer_bar_seconds(timestamps: list[datetime]) -> int:
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(timestamps)]
    positive = [g for g in gaps if g > 0]
    return int(min(positive)) if positive else 60


class Replay:
    def __init__(
        self,
        groups: list[tuple[datetime, dict[str, SimBar]]],
        *,
        speed: float | None,
        warmup_bars: int,
        venue,  # IBVenue
        server,  # IBServer
        step_lead: float = 0.0,
    ) -> None:
        self.groups = groups
        self.speed = speed
        self.step_lead = step_lead
        self.warmup = max(0, warmup_bars)
        self.venue, self.server = venue, server
        self.bar_seconds = infer_bar_seconds([t for t, _ in groups])
        self.symbols = sorted({a for _, bars in groups for a in bars})
        self._history: dict[str, list[SimBar]] = {s: [] for s in self.symbols}
        for _, bars in groups:
            for sym, bar in bars.items():
                self._history[sym].append(bar)
        self._ends = {
            s: [as_utc(b.timestamp) + timedelta(seconds=self.bar_seconds) for b in bars]
            for s, bars in self._history.items()
        }
        first = groups[self.warmup][0] if len(groups) > self.warmup else None
        self._now: datetime | None = as_utc(first) if first is not None else None
        self._finished_at: float | None = None  # time.monotonic() at the replay's end
        self.current: datetime | None = None
        self.bars_replayed = 0
        self.bar_sent_ns: dict[datetime, int] = {}
        self.finished = asyncio.Event()
        self.on_bar: Callable[[int], None] = lambda index: None  # faults scheduled at_bar
        self._slots = max(1, self.bar_seconds // 5)
        self._start = asyncio.Event()
        self.clock: VirtualClock | None = None
        self._started = False
        self._outage_left = 0
        self._outage_lost = False
        self._subset_start: asyncio.TimerHandle | None = None
        self._connect_start: asyncio.TimerHandle | None = None
        self._covered = False  # every symbol has a real-time subscriber

    @property
    def now(self) -> datetime | None:
        """The gateway's clock: the end of the bar replayed last; after the replay's last bar it
        goes on moving (``speed`` x wall time, step mode: wall time), as a real gateway's does
        when the market has closed: no bar comes, but time passes."""
        if self._now is None or self._finished_at is None:
            return self._now
        elapsed = (time.monotonic() - self._finished_at) * (self.speed or 1.0)
        return self._now + timedelta(seconds=elapsed)

    # ------------------------------------------------------------------ signals
    def caught_up(self) -> None:
        """A reqCurrentTime arrived: the client has caught up (step mode)."""
        if not self._started:
            self._start.set()
        elif self.speed is None:
            self.clock.release()

    def client_connected(self) -> None:
        """A client finished its handshake: speed mode starts within CONNECT_START_GRACE s."""
        if self.speed is None or self._started or self._connect_start is not None:
            return
        loop = asyncio.get_running_loop()
        self._connect_start = loop.call_later(CONNECT_START_GRACE, self._start.set)

    def subscriptions_changed(self) -> None:
        subscribed = {s for c in self.server.clients() for s in c.subs.realtime.values()}
        was_covered, covered = self._covered, subscribed >= set(self.symbols)
        self._covered = covered
        if self._started:
            # Step mode: when every symbol has a subscriber again (a client restarted after the
            # one that owed the catch-up signal was killed), the new subscriber takes over.
            if covered and not was_covered and self.clock.awaiting_release:
                self.clock.release()
            return
        if covered or (self.speed is not None and subscribed):
            self._start.set()
        elif subscribed:
            # A client that wants only some of the symbols: start once it has stopped
            # subscribing for a moment (each new subscription re-arms the timer).
            if self._subset_start is not None:
                self._subset_start.cancel()
            loop = asyncio.get_running_loop()
            self._subset_start = loop.call_later(SUBSET_START_GRACE, self._start.set)

    def outage(self, bars: int, data_lost: bool) -> None:
        """Nightly-reset style: 1100 now, no data for ``bars`` bars, then 1102 (or 1101)."""
        from .server import FARM_BROKEN

        frames = [enc.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")]
        frames += [enc.error(-1, code, text) for code, text in FARM_BROKEN]
        self.server.broadcast(frames)
        self._outage_left = max(1, bars)
        self._outage_lost = data_lost

    def history(self, symbol: str, end: datetime | None) -> list[SimBar]:
        """Recorded bars of ``symbol`` complete by ``end`` (UTC)."""
        bars = self._history.get(symbol, [])
        if end is None:
            return []
        return bars[: bisect.bisect_right(self._ends[symbol], end)]

    def first_bar(self, symbol: str) -> datetime | None:
        bars = self._history.get(symbol)
        return bars[0].timestamp if bars else None

    def last_close(self, symbol: str) -> float | None:
        """The close of the last bar complete by the virtual now (history included)."""
        done = self.history(symbol, self.now)
        return done[-1].close if done else None

    def previous_close(self, symbol: str) -> float | None:
        """The close of the bar before the current one (the tick type 9 "close")."""
        done = self.history(symbol, as_utc(self.current) if self.current is not None else None)
        return done[-1].close if done else None

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Replay every bar; the VirtualClock paces it (see the module docstring)."""
        replayed = self.groups[self.warmup :]
        labels = [ts for ts, _ in replayed]
        step = timedelta(seconds=self.bar_seconds)
        if self.speed is None:  # one tick per bar, plus one: the release after the last bar
            ticks = [*labels, labels[-1] + step]
        else:  # one tick per 5-second slot; overnight gaps cost one slot
            ticks = [t + timedelta(seconds=5 * k) for t in labels for k in range(self._slots)]
            ticks.append(labels[-1] + step)
        self.clock = VirtualClock(ticks, speed=self.speed, bar_seconds=None if self.speed is None else 5)
        await self._start.wait()
        if self.speed is not None:
            await asyncio.sleep(SPEED_START_GRACE)
        self._started = True
        await self.clock.next_bar()
        previous_day = None
        for index, (ts, bars) in enumerate(replayed):
            day = as_utc(ts).astimezone(NY).date()
            if previous_day is not None and day != previous_day:
                # the close, then the night: DAY orders expire while the clients are still
                # connected, before any fault scheduled at the new day's first bar (a
                # gateway_restart); the day's executions / completed orders become history
                self.venue.apply(self.venue.exchange.end_session())
                self.venue.new_day()
            previous_day = day
            self.on_bar(index)
            self.current = ts
            self.venue.apply(self.venue.exchange.open_bar(ts, bars))
            await self._stream(ts, bars)
            self._now = as_utc(ts) + step
            # step: until the client caught up (or an outage); speed: the next 5-second slot
            await self.clock.next_bar()
            self.venue.apply(self.venue.exchange.close_bar())
            self.bars_replayed = index + 1
        self.venue.apply(self.venue.exchange.end_session())
        self._finished_at = time.monotonic()
        self.finished.set()
        _log.info("replay finished after {} bars", self.bars_replayed)

    async def _stream(self, ts: datetime, bars: dict[str, SimBar]) -> None:
        """Send t's 5-second bars to subscribers (nothing while an outage swallows them)."""
        split = {sym: split_bar(bar, self.bar_seconds) for sym, bar in bars.items()}
        lost = self._outage_left > 0
        for k in range(self._slots):
            if self.speed is not None and k > 0:
                await self.clock.next_bar()
            elif self.step_lead and not lost and k > 0 and k == self._slots - 1:
                await asyncio.sleep(self.step_lead)  # the first ones were decoded by now, live
            if lost:
                continue
            for conn in self.server.clients():
                frames = [
                    enc.realtime_bar(req_id, int(p.start.timestamp()), p.open, p.high, p.low,
                                     p.close, p.volume, p.wap, p.count)
                    for req_id, sym in conn.subs.realtime.items()
                    if sym in split and k < len(split[sym]) and (p := split[sym][k])
                ]  # fmt: skip
                frames += [
                    tick_by_tick(req_id, kind, split[sym][k], self._exchange(sym))
                    for req_id, (sym, kind) in conn.subs.ticks.items()
                    if sym in split and k < len(split[sym])
                ]  # fmt: skip
                if frames:
                    conn.write(frames)
        if lost:
            self._outage_left -= 1
            if self._outage_left == 0:
                self._end_outage()
            self.clock.release()  # nobody will catch up on a bar they never got
            return
        self.bar_sent_ns[ts] = time.perf_counter_ns()
        self._push_quotes_and_updates(ts, bars)

    def _exchange(self, symbol: str) -> str:
        info = self.venue.book.by_symbol(symbol)
        return info.primary_exchange if info is not None else "NASDAQ"

    def _push_quotes_and_updates(self, ts: datetime, bars: dict[str, SimBar]) -> None:
        """Streaming reqMktData quotes and keepUpToDate historical bars, once per bar."""
        end = as_utc(ts) + timedelta(seconds=self.bar_seconds)
        for conn in self.server.clients():
            frames = [
                frame
                for req_id, sym in conn.subs.market.items() if sym in bars
                for frame in enc.quote_ticks(req_id, bars[sym].close, None)
            ]  # fmt: skip
            for req_id, (sym, size, fmt) in conn.subs.history.items():
                if sym in bars:
                    latest = aggregate(self.history(sym, end), self.bar_seconds, size)[-1]
                    frames.append(enc.historical_data_update(req_id, latest, size >= 86400, fmt))
            if frames:
                conn.write(frames)

    def _end_outage(self) -> None:
        from .server import FARM_OK

        code, text = (
            (1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
            if self._outage_lost
            else (1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
        )  # fmt: skip
        self.server.broadcast([enc.error(-1, code, text)] + [enc.error(-1, c, t) for c, t in FARM_OK])
