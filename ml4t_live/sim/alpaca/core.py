"""The venue's loop-side state: virtual clock, bar replay, fault injection, test views.

Threading rule: everything here runs on the simulated Alpaca's one loop thread
(``ml4t-alpaca-sim``); the facade in :mod:`.server` reaches it only through the bridge.

Venue timing, per recorded minute bar ``t`` (labelled by its START, like the backtest data)::

    open_bar(t)        orders placed earlier fill at t's open -> trade_updates, all written
                       to the trade stream before bar t is sent (they happen during the minute)
    send bar t         on the data stream, right after the minute closes (virtual now = t + 1 min)
    wait               step mode: until the client has caught up (GET /v2/clock after bar t was
                       sent, or ``advance()``); speed mode: 60 / speed seconds of wall time
    close_bar()        MOC / "cls" fills at t's close, IOC leftovers canceled
    end of session     "day" orders expire

Bars outside NYSE regular hours are not replayed. Pacing is the shared
:class:`~ml4t_live.sim.clock.VirtualClock`; step mode additionally holds the FIRST bar until a
client is ready (the shared clock hands it out at once) and the LAST bar until the client caught up
(so orders placed on it, MOC included, still see its close).

Paced mode (``speed=N``) starts its clock when the simulator starts: bar 0 goes out at once,
whether or not a client is connected, and every later bar 60 / N wall seconds after the one before;
a client that only places orders sees them fill at the next bar. Bars before the replay
(``history`` / ``replay_from``) are served by the bars endpoints from the start.

``pre_open=S`` starts the venue S wall seconds before its first bar's minute (a run started
before the open): until then its clock runs on the wall clock (closed, ``next_open`` ahead when
the first bar is a session's first minute), a GET /v2/clock is answered at once, and the first bar
goes out when that time is reached (step mode: and a client is ready).

One source of ordering: everything (REST requests, websocket messages, the replay) runs on the
venue's one loop, so requests take effect in the order they arrive, and at a bar's open the
matching core (ml4t.backtest's Broker) works the open orders in the order they were submitted.
Nothing iterates a hash-ordered set, and the virtual time is the only time an order or fill is
stamped with, so the same requests in the same order give the same fills (order ids are UUIDs and
differ run to run, as on Alpaca; prices, quantities, times and their sequence do not).
Step mode is a deterministic function of (bars, requests in the order received, GET /v2/clock):
the GET /v2/clock that releases bar t is answered only after ``close_bar()`` of t and
``open_bar()`` of t+1 ran and their trade updates were written, and before bar t+1 is sent. A
client that reads its orders over REST after that answer sees exactly the fills bar t+1's data will
reflect, whatever order its two sockets deliver in.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loguru import logger

from .. import market_hours
from ..bars import SimBar
from ..clock import VirtualClock
from ..faults import Fault, FaultPlan
from ..history import history_count
from . import payloads
from .data_api import BarStore, aggregate
from .faults import STREAM_KINDS, FaultState, check_fault
from .order_forms import AlpacaError
from .ratelimit import TokenBucket
from .records import AlpacaOrder
from .streams import MarketDataHub, TradeUpdatesHub
from .venue import AlpacaVenue

_log = logger.bind(component="sim.alpaca")
MINUTE = timedelta(minutes=1)
FLUSH_TIMEOUT = 10.0  # seconds the replay waits for queued trade updates to leave before a bar
STEP_TIMEOUT = 10.0  # seconds a step-mode GET /v2/clock waits for the venue to move on


def _utc(when: datetime) -> datetime:
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


class Core:
    """Loop-side state of one simulated Alpaca (implements ``trading_api.VenueContext``)."""

    def __init__(self, groups: list[tuple[datetime, dict[str, SimBar]]], *, config: Any, key_id: str,
                 secret_key: str, speed: float | None, rate_limit_per_minute: int | None, feed: str,
                 plan: FaultPlan, spawn: Callable[[Awaitable[Any], str], Any],
                 replay_from: datetime | None = None, account_state: dict[str, Any] | None = None,
                 history_bars: Any = None, pre_open: float = 0.0, execution_limits: Any = None) -> None:
        in_hours = [(_utc(ts), bars) for ts, bars in groups if market_hours.is_open(_utc(ts))]
        self.skipped_outside_hours = len(groups) - len(in_hours)
        cut = _utc(replay_from) if replay_from is not None else None
        count = history_count([ts for ts, _bars in in_hours], history_bars)
        history = [g for i, g in enumerate(in_hours) if i < count or (cut is not None and g[0] < cut)]
        self.groups = in_hours[len(history):]  # both rules cut a prefix
        self.history_bars = len(history)
        self._by_ts = dict(self.groups)
        self.clock = VirtualClock([ts for ts, _bars in self.groups], speed=speed)
        self._key_id = key_id
        self._secret = secret_key
        self.speed = speed
        if self.groups:
            self._now = self.groups[0][0]
        elif history:
            self._now = history[-1][0] + MINUTE
        else:
            self._now = datetime.now(UTC).replace(microsecond=0)
        # monotonic time the first bar's minute is reached (None: at once)
        self._opens_at = time.monotonic() + pre_open if pre_open > 0 and self.groups else None
        symbols = {s for _ts, bars in groups for s in bars}
        self.venue = AlpacaVenue(config, symbols, self.now, execution_limits)
        self.venue.standing.update(account_state or {})
        self.bars = BarStore(history + self.groups)  # REST serves only bars closed by `now`
        self.faults = FaultState()
        self.bucket = TokenBucket(rate_limit_per_minute)
        self._change = asyncio.Event()
        self.trade_hub = TradeUpdatesHub(self.credentials_ok, self.faults, spawn, self.notify)
        self.data_hub = MarketDataHub(self.credentials_ok, feed, self.notify)
        self._spawn = spawn
        self.plan = plan
        self._caught_up = asyncio.Event()
        self._step_done = asyncio.Event()  # set (and replaced) each time the replay moved on
        self.finished = asyncio.Event()
        self.bar_index = -1  # index of the bar last sent
        self.current_bar: datetime | None = None
        self.bar_sent_ns: dict[datetime, int] = {}
        self.first_order_ns: dict[datetime, int] = {}
        self.received: list[tuple[str, int, datetime | None]] = []  # (order id, perf ns, bar)
        self.clock_calls = 0
        self._trade_id = 0

    # ------------------------------------------------------------------ change notification
    def notify(self) -> None:
        """Something a test may wait for changed (listeners, subscriptions, bars, updates)."""
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait (bounded) until ``predicate()`` holds; re-checked on every :meth:`notify`."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._change.wait()

    # ------------------------------------------------------------------ context API
    def now(self) -> datetime:
        left = self._pre_open_left()
        return self._now - timedelta(seconds=left) if left > 0 else self._now

    def _pre_open_left(self) -> float:
        """Wall seconds until the first bar's minute (``pre_open``); 0 once reached."""
        if self._opens_at is None:
            return 0.0
        left = self._opens_at - time.monotonic()
        if left <= 0:
            self._opens_at = None
        return max(left, 0.0)

    def credentials_ok(self, key_id: str, secret: str) -> bool:
        return hmac.compare_digest(key_id, self._key_id) and hmac.compare_digest(secret, self._secret)

    def publish(self, messages: list[dict[str, Any]]) -> None:
        self.trade_hub.publish(messages)

    def order_received(self, order: AlpacaOrder, received_ns: int) -> None:
        self.received.append((order.id, received_ns, self.current_bar))
        self.notify()
        if self.current_bar is not None:
            self.first_order_ns.setdefault(self.current_bar, received_ns)

    def clock_body(self) -> dict[str, Any]:
        now = self.now()
        return payloads.clock_json(now, market_hours.is_open(now), market_hours.next_open(now),
                                   market_hours.next_close(now))

    def calendar_body(self, start: str | None, end: str | None) -> list[dict[str, Any]]:
        try:
            first = date.fromisoformat(start[:10]) if start else self._now.date() - timedelta(days=30)
            last = date.fromisoformat(end[:10]) if end else self._now.date() + timedelta(days=30)
        except ValueError:
            raise AlpacaError(400, 40010001, "start and end must be dates (YYYY-MM-DD)") from None
        return [payloads.calendar_json(d.date, d.open_at, d.close_at, d.session_open, d.session_close) for d in market_hours.calendar_days(first, last)]

    # ------------------------------------------------------------------ faults
    async def inject(self, kind: str, params: dict[str, Any]) -> int:
        """Apply a fault now; returns how many sockets / orders it touched (informational)."""
        check_fault(kind, params)
        _log.info("fault injected: {} {}", kind, params)
        if kind == "refuse_data_stream":  # new market-data sockets refused (503 on the upgrade)
            self.faults.applied.append((kind, dict(params)))
            self.data_hub.refuse(float(params["seconds"]) if params.get("seconds") else None)
            return 1
        if kind in STREAM_KINDS:
            self.faults.applied.append((kind, dict(params)))
            hub = self.trade_hub if "trade" in kind else self.data_hub
            if kind.startswith("drop"):
                return await hub.drop()
            muted = hub.silence()
            if params.get("seconds"):  # mute for a while, then speak again (missed messages stay lost)
                self._spawn(self._unmute(muted, float(params["seconds"])), f"{kind}-end")
            return len(muted)
        if kind == "partial_fill":
            self.venue.exchange.split_next_fill(int(params.get("parts", 2)))
        elif kind == "reject_next":
            self.venue.exchange.reject_next(str(params.get("reason", "rejected by the simulated venue")))
        elif kind == "refuse_next":  # 403 for the next submits, nothing created
            self.venue.refusals += [str(params.get("message", "insufficient buying power"))] * int(params.get("count", 1))
        self.faults.arm(kind, params)
        return 1

    async def _unmute(self, clients: list[Any], seconds: float) -> None:
        await asyncio.sleep(seconds)
        for client in clients:
            client.muted = False
        self.notify()

    async def _fire(self, fault: Fault) -> None:
        params = dict(fault.params)
        if fault.seconds and "seconds" not in params:
            params["seconds"] = fault.seconds
        await self.inject(fault.kind, params)

    async def _due_faults(self, index: int) -> None:
        """Scenario faults due at bar ``index`` (each kind fires at most once per bar)."""
        for kind in sorted({f.kind for f in self.plan.pending if f.after_orders is None}):
            fault = self.plan.due(kind, bar_index=index)
            if fault is not None:
                await self._fire(fault)

    async def before_order(self) -> None:
        """Scenario faults due on the order that is arriving now (``after_orders``)."""
        for kind in sorted({f.kind for f in self.plan.pending if f.after_orders is not None}):
            fault = self.plan.due(kind, bar_index=max(self.bar_index, 0), order_index=len(self.received))
            if fault is not None:
                await self._fire(fault)

    # ------------------------------------------------------------------ replay
    def advance(self) -> None:
        """Step mode: let the replay move on (what a GET /v2/clock does)."""
        self._caught_up.set()
        self.clock.release()

    async def caught_up(self) -> None:
        """GET /v2/clock. Step mode: answered once the venue has moved on (the bar's close and the
        next bar's open matched, their trade updates written), so a client that reads its orders
        after the clock sees the fills the next bar's data will reflect: the deterministic hand-over."""
        self.clock_calls += 1
        await self.move_on()

    async def move_on(self) -> None:
        """Step mode: let the replay move on one bar and wait (bounded) until it has (what a GET
        /v2/clock does; the ``lose_cancel`` fault's ``step`` too). Paced mode: returns at once."""
        step = self._step_done
        self.advance()
        self.notify()
        if self.speed is not None or self.finished.is_set() or self._pre_open_left() > 0:
            return
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await step.wait()
        except TimeoutError:
            _log.warning("the replay did not move on within {}s of a GET /v2/clock", STEP_TIMEOUT)

    def _stepped(self) -> None:
        event, self._step_done = self._step_done, asyncio.Event()
        event.set()

    async def _hold(self) -> None:
        """Wait for the client (step mode) or one bar of wall time (speed mode)."""
        if self.speed is None:
            await self._caught_up.wait()
        else:
            await asyncio.sleep(self.clock.bar_seconds / self.speed)

    async def replay(self) -> None:
        """Drive the bars (see the module docstring); sets ``finished`` at the end."""
        try:
            if self.speed is None:
                await self._caught_up.wait()  # the first bar goes once a client is ready
            await asyncio.sleep(self._pre_open_left())  # the venue's clock reaches the first bar
            ts = await self.clock.next_bar()
            index = 0
            while ts is not None:
                bars = self._by_ts[ts]
                await self._due_faults(index)
                self._now, self.current_bar = ts, ts
                self.publish(self.venue.open_bar(ts, bars))
                await self._flush_trade_updates()
                self._stepped()
                self._now = ts + MINUTE
                self.venue.bar_closed(bars)
                self.bar_index = index
                self._caught_up.clear()
                await self._send_bar(ts, bars)
                following = await self.clock.next_bar() if not self.clock.done else None
                if following is None:
                    await self._hold()
                self.publish(self.venue.close_bar())
                day = ts.astimezone(payloads.NEW_YORK).date()
                if following is None or following.astimezone(payloads.NEW_YORK).date() != day:
                    session = market_hours.session(day)
                    self._now = max(self._now, session[1]) if session else self._now
                    self.publish(self.venue.end_session())
                    await self._send_daily_bars(ts)
                ts, index = following, index + 1
            self.current_bar = None
            await self._flush_trade_updates()
        finally:
            self.finished.set()
            self._stepped()
            self.notify()

    async def _flush_trade_updates(self) -> None:
        """Wait (bounded) until the trade updates published so far have left: the fills at a
        bar's open go out before that bar does, as on Alpaca (they happen during the minute; the
        bar is published after it). Without this the sender task ran after the bar was written."""
        upto = self.trade_hub.published
        try:
            await self.wait_until(lambda: self.trade_hub.flushed(upto), FLUSH_TIMEOUT)
        except TimeoutError:
            _log.warning("trade updates not sent within {}s; sending the bar anyway", FLUSH_TIMEOUT)

    async def _send_bar(self, ts: datetime, bars: dict[str, SimBar]) -> None:
        if self.faults.take_lost_bar():  # lose_stream_bar: nothing on the stream, REST keeps it
            _log.info("bar {} left off the data stream (lose_stream_bar)", ts)
            if self.speed is None:
                self.advance()  # no client will catch up with a bar it never saw
            self.notify()
            return
        items = [(s, payloads.stream_bar(s, b, ts)) for s, b in sorted(bars.items())]
        stamps = await self.data_hub.publish("bars", items)
        self.bar_sent_ns[ts] = stamps[0] if stamps else time.perf_counter_ns()
        self.notify()
        if any(c.subs["quotes"] for c in self.data_hub.clients):
            await self.data_hub.publish("quotes", [(s, payloads.stream_quote(s, b.close - 0.01, b.close + 0.01,
                                                                             self._now)) for s, b in bars.items()])
        if any(c.subs["trades"] for c in self.data_hub.clients):
            trades = []
            for s, b in bars.items():
                self._trade_id += 1
                trades.append((s, payloads.stream_trade(s, b.close, max(b.volume, 1.0), self._now, self._trade_id)))
            await self.data_hub.publish("trades", trades)

    async def _send_daily_bars(self, last: datetime) -> None:
        """At the session's end: the day's bar per symbol to ``dailyBars`` subscribers (``T: d``)."""
        if not any(c.subs["dailyBars"] for c in self.data_hub.clients):
            return
        day_start = last.astimezone(payloads.NEW_YORK).replace(hour=0, minute=0).astimezone(UTC)
        items = []
        for symbol in sorted(self.venue.symbols):
            daily = aggregate(self.bars.window(symbol, day_start, last, self._now), "day")
            if daily:
                label, bar = daily[-1]
                items.append((symbol, payloads.stream_bar(symbol, bar, label, kind="d")))
        await self.data_hub.publish("dailyBars", items)

    # ------------------------------------------------------------------ views (tests)
    def latency(self) -> list[dict[str, Any]]:
        return [{"bar": ts, "bar_sent_ns": ns, "first_order_ns": self.first_order_ns.get(ts)}
                for ts, ns in self.bar_sent_ns.items()]
