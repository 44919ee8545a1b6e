"""BarStream: real-time bars for the IB feed, on the feed session's loop thread.

Subscribes ``reqRealTimeBars`` (5 s, TRADES) per symbol, aggregates with
:class:`~ml4t_live.venues.ib.bars.BarAssembler` and puts one ``BarClosed`` per label on the queue.

The seam (start-up warm-up and post-reconnect backfill) is one mechanism: live groups are held
until the first live group G closes; then historical bars ending at ``G.label + bar`` are fetched
and the bars between the last delivered label (or the last ``warmup_bars`` labels) and G are
delivered, then G (its partial symbols replaced by the historical bar), then the held live groups.
So there is no gap and no duplicate at the seam. After a reconnect, ``FeedReconnected`` is put
right after the backfilled bars, before the first live one. Bars taken from history (warm-up and
backfill) are delivered with ``catch_up=True``; bars assembled from the real-time stream (the
first live group G included) with ``catch_up=False``.

The link's health (heartbeats, a silent stream, a frozen gateway, an outage that outlives its
bound) is watched by :class:`~ml4t_live.venues.ib.feed_health.IBFeedWatch` through
``self.health``; this class tells it when live bars arrive and when the link goes down or up.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from ib_async import Contract
from ib_async.objects import RealTimeBarList
from loguru import logger

from ...errors import ConnectionFailed
from ...events import BarClosed, FeedDisconnected, FeedEnded, FeedReconnected
from ...feeds.health import FeedHealth
from .bar_parsing import (
    duration_str,
    historical_bar_row,
    ib_bar_size_setting,
    realtime_bar_row,
)
from .bars import RT_BAR_SECONDS, BarAssembler, BarGroup
from .parsing import contract_for
from .session import CONNECTIVITY_LOST, IBSession

_log = logger.bind(component="ib.feed")
#: how far back (days) the start-up warm-up looks when the bars just before the first live bar
#: are too few (the night, a weekend, a holiday: IB has no bars then)
WARMUP_WIDENING_DAYS = (2, 5)
#: how long past ``end`` (gateway clock) the feed waits for the last 5-second bars of windows
#: that ended there before it delivers them as they are and ends (FeedEnded by the clock)
END_GRACE = 2 * RT_BAR_SECONDS


class BarStream:
    def __init__(
        self,
        session: IBSession,
        symbols: list[str],
        bar_seconds: int,
        warmup_bars: int,
        tz: str,
        health: FeedHealth,
        end: datetime | None = None,
    ) -> None:
        self.session = session
        self.symbols = list(symbols)
        self.bar_seconds = bar_seconds
        self.warmup_bars = warmup_bars
        self.tz = ZoneInfo(tz)
        self.assembler = BarAssembler(symbols, bar_seconds)
        self._contracts: dict[str, Contract] = {}
        self._subs: dict[str, RealTimeBarList] = {}
        self._ticked: dict[str, None] = {}  # symbols by their newest real-time bar, newest last
        self._check_turn = 0  # the next of the other symbols a quiet check asks about
        self._held: list[BarGroup] = []
        self._seam_task: asyncio.Task[None] | None = None
        self._live = False  # seam resolved; groups go straight out
        self._reconnecting = False
        self.last_delivered: int | None = None
        self.end = (
            int(end.timestamp()) if end is not None else None
        )  # FeedEnded once bars close there
        self.ended = False
        self._degraded = False
        self.health = health
        self._silenced = False  # resubscribed after a silence; down until a live bar comes
        session.on_lost.append(self._lost)
        session.on_restored.append(self._restored)
        session.on_connectivity.append(self._connectivity)

    # ------------------------------------------------------------------ subscribe
    async def subscribe(self) -> None:
        ib = self.session.ib
        if not self._contracts:
            cfg = self.session.config
            wanted = [contract_for(s, cfg.exchange, cfg.currency) for s in self.symbols]
            found = await asyncio.wait_for(
                ib.qualifyContractsAsync(*wanted), cfg.request_timeout
            )
            missing = [
                s for s, c in zip(self.symbols, found) if not isinstance(c, Contract)
            ]
            if missing:
                raise ConnectionFailed(
                    f"IB does not know the contract(s) {missing}; feed not started"
                )
            self._contracts = dict(zip(self.symbols, found))  # type: ignore[arg-type]
        for symbol, contract in self._contracts.items():
            bars = ib.reqRealTimeBars(contract, RT_BAR_SECONDS, "TRADES", False)
            bars.updateEvent += partial(self._on_bar, symbol)
            self._subs[symbol] = bars

    def _on_bar(self, symbol: str, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if not has_new_bar or not bars:
            return
        now = time.monotonic()
        if self._silenced:  # the resubscribed stream speaks again
            self._silenced = False
            self.health.restored(now)
        self.health.bar_seen(now)
        self._ticked.pop(symbol, None)
        self._ticked[symbol] = None
        groups = self.assembler.add(symbol, *realtime_bar_row(bars[-1]))
        del bars[:-1]  # ib_async keeps every bar; we need only the newest
        for group in groups:
            self._route(group)

    def check_symbols(self, n: int) -> list[str]:
        """Up to ``n`` symbols a quiet check asks about: the one with the newest real-time bar
        (the first configured before any), then ``n - 1`` of the others in turn, so every
        symbol is asked within ``len(symbols) - 1`` checks: a stream silent for good is found
        whichever of its symbols still trade at the venue."""
        newest = next(reversed(self._ticked), None) or self.symbols[0]
        others = [s for s in self.symbols if s != newest]
        picked = [newest]
        for _ in range(min(n - 1, len(others))):
            picked.append(others[self._check_turn % len(others)])
            self._check_turn += 1
        return picked

    def put(self, event: object) -> None:
        """Put an event for the engine (loop thread); the health timers see it."""
        self.health.event_put(time.monotonic())
        self.session.put(event)

    def _route(self, group: BarGroup) -> None:
        if self._live:
            self._deliver(group)
            return
        self._held.append(group)
        if self._seam_task is None:
            self._seam_task = self.session.loop.spawn(self._seam(group), "ib-feed-seam")

    # ------------------------------------------------------------------ seam
    async def _seam(self, first: BarGroup) -> None:
        after = self.last_delivered
        every_symbol = (
            self.warmup_bars > 0
            if after is None
            else first.label > after + self.bar_seconds
        )
        need_history = bool(first.partial) or every_symbol
        # Only the partial bars to replace: ask for those symbols alone (one request per symbol;
        # with hundreds of symbols, asking for all of them held the first bars for seconds).
        wanted = None if every_symbol else sorted(first.partial)
        history: dict[int, dict[str, dict[str, Any]]] = {}
        if need_history:
            try:
                history = await self._history(first.label, after, symbols=wanted)
                if after is None and self.warmup_bars:
                    history = await self._widen_warmup(first.label, history)
            except (ConnectionError, TimeoutError) as exc:
                # the next live bar (or the reconnect) runs the seam again
                _log.warning("historical bars for the seam failed: {!r}", exc)
                self._seam_task = None
                return
        older = sorted(
            lbl
            for lbl in history
            if lbl < first.label and (after is None or lbl > after)
        )
        if after is None:
            older = older[-self.warmup_bars :] if self.warmup_bars else []
        for label in older:
            self._put_bar(label, history[label], catch_up=True)
        for symbol in first.partial:
            hist = history.get(first.label, {}).get(symbol)
            if hist is not None:
                first.data[symbol] = hist
            else:
                _log.warning(
                    "{} {}: only a partial bar is available",
                    symbol,
                    self._dt(first.label),
                )
        if self._reconnecting:
            self._reconnecting = False
            self.put(FeedReconnected("ib", missed_bars=len(older)))
        held, self._held = self._held, []
        self._live = True
        self._seam_task = None
        for group in held:
            self._deliver(group)

    async def _widen_warmup(
        self, first_label: int, history: dict[int, dict[str, dict[str, Any]]]
    ) -> dict[int, dict[str, dict[str, Any]]]:
        """Warm-up at a session's first bar: the bars just before it are last night's (none, or a
        few pre-market ones), so look further back (2, then 5 days: a weekend, a long holiday
        weekend) until ``warmup_bars`` bars are found."""
        for days in WARMUP_WIDENING_DAYS:
            if sum(1 for label in history if label < first_label) >= self.warmup_bars:
                break
            history = await self._history(first_label, None, seconds=days * 86400)
        return history

    async def _history(
        self,
        first_label: int,
        after: int | None,
        seconds: int | None = None,
        symbols: list[str] | None = None,
    ) -> dict[int, dict[str, dict[str, Any]]]:
        """label -> symbol -> values, for bars ending at ``first_label + bar`` (the ``seconds``
        before it; default: the warm-up's or the gap's bars), of ``symbols`` (default: all)."""
        n_bars = (
            self.warmup_bars
            if after is None
            else max(0, (first_label - after) // self.bar_seconds)
        )
        seconds = seconds or (n_bars + 1) * self.bar_seconds
        end = datetime.fromtimestamp(first_label + self.bar_seconds, UTC)
        out: dict[int, dict[str, dict[str, Any]]] = {}
        cfg = self.session.config
        chosen = self._contracts if symbols is None else {s: self._contracts[s] for s in symbols}
        for symbol, contract in chosen.items():
            bars: list[Any] = []
            delay = cfg.history_retry_delay
            for attempt in range(cfg.history_retries + 1):
                bars = await self.session.ib.reqHistoricalDataAsync(
                    contract,
                    endDateTime=end,
                    durationStr=duration_str(seconds),
                    barSizeSetting=ib_bar_size_setting(self.bar_seconds),
                    whatToShow="TRADES",
                    useRTH=False,
                    formatDate=2,
                    timeout=cfg.request_timeout,
                )
                if bars or attempt == cfg.history_retries:
                    break
                _log.warning(
                    "{}: no historical bars (pacing?); retry in {:.1f}s", symbol, delay
                )
                await asyncio.sleep(delay)
                delay *= 2
            for bar in bars:
                label, values = historical_bar_row(bar, self.tz)
                at = int(label.timestamp())
                if after is None or at > after:  # only the gap's: a weekend's asks for days
                    out.setdefault(at, {})[symbol] = values
        return out

    # ------------------------------------------------------------------ delivery
    def _deliver(self, group: BarGroup) -> None:
        self._put_bar(
            group.label, group.data
        )  # drops labels already delivered (the seam)

    def _put_bar(
        self, label: int, data: dict[str, dict[str, Any]], catch_up: bool = False
    ) -> None:
        if self.ended or (
            self.last_delivered is not None and label <= self.last_delivered
        ):
            return
        self.last_delivered = label
        self.assembler.mark_released(label)
        self.put(BarClosed(self._dt(label), dict(data), catch_up=catch_up,
                           received_at=time.monotonic()))  # fmt: skip
        if self.end is not None and label + self.bar_seconds >= self.end:
            self.ended = True
            self.put(
                FeedEnded(f"session end {self._dt(self.end).isoformat()} reached")
            )

    def release_overdue(self, venue_time: datetime) -> None:
        """Deliver the groups some symbol never completed (no real-time bar of it in the window,
        e.g. no trade) once the gateway's clock is a whole bar past their window's end: they are
        released as they are when another symbol moves past them, but after the day's last bar
        nothing does (without this a quiet check found that bar at the venue and took the
        stream for silent, and the day's last bar was never delivered)."""
        overdue = int(venue_time.timestamp()) - 2 * self.bar_seconds  # window end + one bar
        for group in self.assembler.flush(older_than=overdue + 1):
            self._route(group)

    def passed_end(self, venue_time: datetime) -> bool:
        """The gateway's clock is at or past ``end``: the feed ends even if no bar closed there
        (a holiday, an early close, data that stops short). True once the feed has ended."""
        if not self.ended and self.end is not None and venue_time.timestamp() >= self.end:
            by_end = self.end - self.bar_seconds + 1  # labels of the windows that ended by ``end``
            if self.assembler.holds_before(by_end):
                if venue_time.timestamp() < self.end + END_GRACE:
                    return False  # their last 5-second bars may be on their way: ask again
                for group in self.assembler.flush(older_than=by_end):
                    self._route(group)  # delivered as they are
            if self.ended:  # the last of them closed at ``end``: FeedEnded went out with it
                return True
            self.ended = True
            self.put(FeedEnded(
                f"session end {self._dt(self.end).isoformat()} passed on the venue's clock "
                f"({venue_time.astimezone(self.tz).isoformat()}) with no bar closing there"
            ))  # fmt: skip
        return self.ended

    def _dt(self, label: int) -> datetime:
        return datetime.fromtimestamp(label, self.tz)

    # ------------------------------------------------------------------ reconnect
    def _lost(self, reason: str) -> None:
        if self.health.lost(time.monotonic(), reason):  # else already reported (1100, frozen)
            self.put(FeedDisconnected("ib", reason))
        self._subs.clear()  # ib_async forgot them; their events are done
        self._reset_stream()

    def _connectivity(self, code: int, message: str) -> None:
        """1100: IB's data link is down (socket up); 1101/1102: back - resubscribe either way
        (IB may not resume real-time bars after a reset), then backfill through the seam."""
        if code == CONNECTIVITY_LOST:
            if not self._degraded:
                self._degraded = True
                reason = f"IB connectivity lost ({code}): {message}"
                self.health.lost(time.monotonic(), reason)
                self.put(FeedDisconnected("ib", reason))
                self._reset_stream()
            return
        was_degraded, self._degraded = self._degraded, False
        self._resubscribe(reconnecting=was_degraded)

    def resubscribe_silent(self, reason: str) -> None:
        """The real-time stream went silent while the gateway answers: say so, resubscribe, and
        let the seam backfill what it missed (``FeedReconnected`` after the backfill)."""
        self.put(FeedDisconnected("ib", reason))
        self._resubscribe(reconnecting=True)
        self.health.lost(time.monotonic(), reason)  # down until the new stream speaks
        self._silenced = True

    def _resubscribe(self, reconnecting: bool) -> None:
        if self.session.ib.isConnected():
            for bars in self._subs.values():
                self.session.ib.cancelRealTimeBars(bars)
        self._subs.clear()
        self._reset_stream()
        self._reconnecting = reconnecting  # FeedReconnected only after a FeedDisconnected
        self.health.restored(time.monotonic())  # the gateway's data link is back
        self.session.loop.spawn(self.subscribe(), "ib-feed-resubscribe")

    def _reset_stream(self) -> None:
        self.assembler.reset_stream()
        self._live = False
        self._reconnecting = True
        self._held.clear()
        if self._seam_task is not None:
            self._seam_task.cancel()
            self._seam_task = None

    async def _restored(self) -> None:
        self._degraded = False  # a new connection starts with IB's data link up
        await self.subscribe()
        self.health.restored(time.monotonic())

    async def close(self) -> None:
        ib = self.session.ib
        if ib.isConnected():
            for bars in self._subs.values():
                ib.cancelRealTimeBars(bars)
        self._subs.clear()

    @property
    def contracts(self) -> dict[str, Contract]:
        return self._contracts

    @property
    def bar_delta(self) -> timedelta:
        return timedelta(seconds=self.bar_seconds)
