"""IBFeedWatch: the IB feed's health loop, on the feed session's loop thread.

It applies the shared rule of :mod:`ml4t_live.feeds.health` to IB:

* The real-time stream counts as alive while 5-second bars of any symbol arrive. When it has said
  nothing for ``min(heartbeat_seconds, silence_after)``, the gateway is probed with
  ``reqCurrentTimeAsync`` under ``asyncio.timeout(probe_timeout)``; a heartbeat goes out only
  after an answer.
* A probe with no answer (the gateway is frozen, or the socket half-open): a warning, the socket is
  dropped and the session reconnects with its backoff; the outage clock runs from there.
* Quiet for ``silence_after`` with the gateway answering: historical bars ending now are asked for,
  for ``CHECK_SYMBOLS`` (2) symbols: the one with the newest real-time bar (before any, the first
  configured) and one of the others in turn (``BarStream.check_symbols``: a silent stream is
  silent for every symbol, and the turn finds it whichever still trade), so a check costs at most
  two ``reqHistoricalData`` however many symbols; a bar newer than the last one delivered (or,
  before the first bar, newer than the gateway's time at the first probe) means the stream is
  silent: a warning, the real-time bars are cancelled and requested again, and the seam
  backfills the missed bars as catch-up bars.
  Otherwise the market is quiet and the next check comes twice the last wait after this one (at
  most ``max_check_interval``: two ``reqHistoricalData`` per 15 min through a quiet night; with
  5-second bars, checks are at least ``silence_after`` (35 s) apart whatever the bars do: at
  most about 34 requests per 10 min, inside IB's 60 for bars <= 30 s, IB-23, which the warm-up
  and the backfills share: there is no client-side budget for them), unless the gateway's own
  clock says the exchange of ``session_calendar`` is in its regular session (``silence_after``
  past the open, before the close): then nothing is quiet about it, the venue sends no data at
  all (a data farm that died without a word, a gateway whose clock and data stand still): a
  warning, a resubscription, and the link counts as down until a live bar comes. Before that
  open (by the gateway's clock) a quiet check's next one is at the latest ``silence_after`` past
  it, so a feed dead from the open is found then, not up to ``max_check_interval`` later.
* Down (socket lost, 1100, frozen, silent stream resubscribed but still silent) for longer than
  ``outage_timeout``: ``BackgroundTaskFailed`` for the engine (``FeedStalled``, exit 3).

So a frozen gateway ends the run within ``min(heartbeat_seconds, silence_after) + probe_timeout
+ outage_timeout`` (plus one tick of the loop), however the market looks.

A feed with ``end`` ends (``FeedEnded``) when a probe finds the gateway's clock past it, also
when no bar closed there (a holiday, an early close, data that stops short), and also while the
link is down with the socket open (1100, a stream resubscribed after a silence or the in-session
alarm): the gateway is then probed with each ``FeedDisconnected`` reminder, so an ``end`` that
passes during such an outage ends the run (FeedEnded), not the outage bound (FeedStalled).

In step mode the simulated gateway takes any ``reqCurrentTime`` as "the client caught up", so a
probe (sent only after ``heartbeat_seconds`` without a real-time bar) also releases its next bar.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

from loguru import logger

from ...events import BackgroundTaskFailed, FeedDisconnected, FeedHeartbeat
from ...schedule.calendar import in_session, seconds_to_open
from .bar_parsing import duration_str, historical_bar_row, ib_bar_size_setting
from .bar_stream import BarStream

_log = logger.bind(component="ib.feed")
TASK = "ib-feed-health"
#: Symbols a check asks for historical bars: the one with the newest real-time bar and one of
#: the others in turn (a silent stream is silent for every symbol; the turn finds it whichever
#: symbols still trade), so a check costs at most this many requests (IB-23).
CHECK_SYMBOLS = 2


class IBFeedWatch:
    def __init__(
        self, stream: BarStream, probe_timeout: float, session_calendar: str | None = None
    ) -> None:
        self.stream = stream
        self.health = stream.health
        self.probe_timeout = probe_timeout
        self.session_calendar = session_calendar
        bounds = self.health.bounds
        self.probe_after = min(bounds.heartbeat_seconds or math.inf, bounds.silence_after)
        self._baseline: int | None = None  # gateway time (epoch s) at the first probe, no bar yet

    async def run(self) -> None:
        health = self.health
        while True:
            await asyncio.sleep(health.bounds.tick)  # pacing, not synchronisation
            now = time.monotonic()
            if health.down:
                if health.outage_expired(now):
                    self._give_up(now)
                    return
                if health.reminder_due(now):
                    if await self._ended_while_down():
                        return
                    self.stream.put(FeedDisconnected("ib", self._still_down(now)))
                continue
            beat, check = health.heartbeat_due(now), health.silence_check_due(now)
            if not (beat or check):
                continue
            answer = None
            if health.quiet_for(now) >= self.probe_after:
                answer = await self._probe()
                if answer is None:
                    self._frozen()
                    continue
                self.stream.release_overdue(answer)
                if self.stream.passed_end(answer):  # FeedEnded went out: nothing left to watch
                    return
                if self._baseline is None and self.stream.last_delivered is None:
                    self._baseline = int(answer.timestamp())
            if check and not health.down:
                newer = await self._venue_has_newer_bars()
                if health.down or health.last_bar > now:  # the socket dropped meanwhile (the
                    continue  # outage path has it), or a bar came while the venue was asked
                if newer:
                    self._silent()
                    continue
                if answer is not None and self._in_session(answer):
                    self._dead_in_session(answer)
                    continue
                health.quiet_confirmed(now, time.monotonic(), self._opens_in(answer))
            if beat and not health.down:
                self.stream.put(FeedHeartbeat(datetime.now(UTC)))

    # ------------------------------------------------------------------ probes
    async def _probe(self) -> datetime | None:
        """The gateway's time, or None if it did not answer within ``probe_timeout``."""
        ib = self.stream.session.ib
        try:
            async with asyncio.timeout(self.probe_timeout):
                return await ib.reqCurrentTimeAsync()
        except (TimeoutError, ConnectionError):
            return None

    async def _ended_while_down(self) -> bool:
        """Down with the socket still open (1100, a silent or dead stream being resubscribed):
        the gateway's clock says whether ``end`` passed meanwhile (True: FeedEnded went out).
        A closed socket cannot say; the first probe after the reconnect does."""
        if self.stream.end is None or not self.stream.session.ib.isConnected():
            return False
        answer = await self._probe()
        return answer is not None and self.stream.passed_end(answer)

    async def _venue_has_newer_bars(self) -> bool:
        """True if the gateway has a complete bar the real-time stream did not deliver."""
        stream = self.stream
        after = stream.last_delivered
        if after is None and self._baseline is None:
            return False
        floor = after + 1 if after is not None else self._baseline
        cfg = stream.session.config
        self.health.venue_checks += 1
        contracts = stream.contracts
        for symbol in stream.check_symbols(CHECK_SYMBOLS):
            contract = contracts[symbol]
            try:
                bars = await stream.session.ib.reqHistoricalDataAsync(
                    contract,
                    endDateTime="",
                    durationStr=duration_str(3 * stream.bar_seconds),
                    barSizeSetting=ib_bar_size_setting(stream.bar_seconds),
                    whatToShow="TRADES",
                    useRTH=False,
                    formatDate=2,
                    timeout=cfg.request_timeout,
                )
            except ConnectionError:  # the socket dropped meanwhile: the outage path takes over
                return False
            if any(historical_bar_row(b, UTC)[0].timestamp() >= floor for b in bars):
                return True
        return False

    def _in_session(self, venue_time: datetime) -> bool:
        """The exchange is in its regular session by the gateway's clock (unknown: no)."""
        if self.session_calendar is None:
            return False
        after_open = self.health.bounds.silence_after
        return in_session(self.session_calendar, venue_time, after_open) is True

    def _opens_in(self, venue_time: datetime | None) -> float | None:
        """Seconds to the exchange's open by the gateway's clock (``session_calendar``), if any."""
        if self.session_calendar is None or venue_time is None:
            return None
        return seconds_to_open(self.session_calendar, venue_time)

    # ------------------------------------------------------------------ verdicts
    def _frozen(self) -> None:
        reason = (
            f"the IB gateway did not answer a request within {self.probe_timeout:g}s "
            "(socket open, nothing answered)"
        )
        _log.warning("{}: dropping the connection and reconnecting", reason)
        self.health.lost(time.monotonic(), reason)
        self.stream.put(FeedDisconnected("ib", reason))
        self.stream.session.ib.disconnect()  # the session reconnects with its backoff

    def _silent(self) -> None:
        self.health.silence_detected()
        quiet = self.health.quiet_for(time.monotonic())
        reason = (
            f"no real-time bar for {quiet:.1f}s while the gateway answers and has newer bars: "
            "the stream is silent"
        )
        _log.warning("{}; resubscribing and backfilling", reason)
        self.stream.resubscribe_silent(reason)

    def _dead_in_session(self, venue_time: datetime) -> None:
        self.health.silence_detected()
        quiet = self.health.quiet_for(time.monotonic())
        reason = (
            f"no real-time bar for {quiet:.1f}s and no newer historical bar while "
            f"{self.session_calendar} is in session (gateway time "
            f"{venue_time.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC): the venue sends no data"
        )
        _log.warning("{}; resubscribing", reason)
        self.stream.resubscribe_silent(reason)

    def _still_down(self, now: float) -> str:
        return (
            f"{self.health.down_reason}; still down after {self.health.outage_seconds(now):.0f}s "
            f"(the run ends after {self.health.bounds.outage_timeout:g}s)"
        )

    def _give_up(self, now: float) -> None:
        error = (
            f"IB feed: {self.health.down_reason}; not back after "
            f"{self.health.outage_seconds(now):.0f}s (bound {self.health.bounds.outage_timeout:g}s)"
            ": check TWS / IB Gateway, then rerun"
        )
        _log.error(error)
        self.stream.put(BackgroundTaskFailed(self.stream.session.loop.name, TASK, error))
