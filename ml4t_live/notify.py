"""Notifications: chosen runtime events to Slack, Discord, Telegram, e-mail, a JSON webhook ...

A run's ``[notify]`` table names the targets as apprise URLs and the events to send::

    [notify]
    urls = ["json://alerts.example.com/ml4t", "tgram://BOT_TOKEN/CHAT_ID"]
    events = ["start", "fill", "rejection", "error", "halt", "disconnect", "end_of_day"]
    disconnect_seconds = 60   # a link down this long is worth a message (and its return)

Sending never blocks nor stops trading: the engine thread only *offers* a message to a bounded
queue (a full queue drops it, counted and said once); a :class:`~ml4t_live.bridge.WorkerThread`
(``ml4t-notify-sender``) sends each to every target, one apprise call per target, with apprise's
own connect / read timeouts. A target that fails is logged once (again only after it worked
again); URLs are never logged, only ``target N (scheme://…)`` (they carry tokens and passwords).

Every message: title ``ml4t-live <strategy>: <event>``; body: a one-line summary, then one
``key: value`` line per field (``event``, ``strategy``, ``time`` first). The fields of each
event are listed in :data:`FIELDS` (docs/operations.md "Notifications").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from .bridge import WorkerThread
from .errors import ConfigError
from .events import (
    BrokerDisconnected,
    BrokerReconnected,
    Execution,
    FeedDisconnected,
    FeedReconnected,
    OrderLost,
    OrderRejected,
)

_log = logger.bind(component="notify")

EVENTS = ("start", "fill", "rejection", "error", "halt", "disconnect", "end_of_day")
#: the fields each event carries, after ``event``, ``strategy`` and ``time``
FIELDS = {
    "start": ("mode", "venue"),
    "fill": ("client_order_id", "asset", "side", "quantity", "price", "commission", "exec_id"),
    "rejection": ("client_order_id", "reason", "code"),
    "error": ("error",),  # a strategy error passed over also has "count"
    "halt": ("state", "reason"),
    "disconnect": ("link", "reason", "seconds", "state"),
    "end_of_day": ("stop_reason", "bars", "orders", "fills", "final_equity", "return_pct", "strategy_errors",
                   "left_at_venue"),
}
#: strategy errors passed over (error policy 'log'): at most one message per this many seconds
ERROR_EVERY = 300.0
TABLE_KEYS = ("urls", "events", "disconnect_seconds", "timeout", "queue_size")
_TYPES = {"error": "failure", "halt": "warning", "rejection": "warning", "disconnect": "warning",
          "fill": "success"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    urls: tuple[str, ...]
    events: frozenset[str] = frozenset(EVENTS)
    disconnect_seconds: float = 60.0
    timeout: float = 10.0  # seconds close() waits for what is queued (the end-of-day summary)
    queue_size: int = 200

    @classmethod
    def from_table(cls, table: Any) -> NotifyConfig | None:
        """The ``[notify]`` table, checked (ConfigError); None when it names no URL."""
        if table is None:
            return None
        if not isinstance(table, dict):
            raise ConfigError("[notify] must be a table (urls = [...], events = [...])")
        unknown = sorted(set(table) - set(TABLE_KEYS))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)} in [notify]; known keys: {', '.join(TABLE_KEYS)}")
        urls = table.get("urls") or []
        if isinstance(urls, str) or not all(isinstance(u, str) and u for u in urls):
            raise ConfigError("[notify] urls must be a list of apprise URLs (strings)")
        events = table.get("events", list(EVENTS))
        bad = [e for e in events if e not in EVENTS] if isinstance(events, list) else [events]
        if bad:
            raise ConfigError(f"[notify] events: unknown {bad}; choose from {', '.join(EVENTS)}")
        try:
            seconds = float(table.get("disconnect_seconds", 60.0))
            timeout = float(table.get("timeout", 10.0))
            size = int(table.get("queue_size", 200))
        except (TypeError, ValueError):
            raise ConfigError("[notify] disconnect_seconds / timeout must be seconds, queue_size a count") from None
        if seconds < 0 or timeout <= 0 or size < 1:
            raise ConfigError("[notify] disconnect_seconds must be >= 0, timeout > 0, queue_size >= 1")
        if not urls:
            return None
        return cls(tuple(urls), frozenset(events), seconds, timeout, size)


def redact(url: str, index: int) -> str:
    """How a target is named in logs: its position and scheme only (URLs carry secrets)."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    return f"target {index} ({scheme}://…)"


class Notifier:
    """The engine thread's side: turns runtime events into messages and offers them (never
    blocks). :meth:`start` checks the URLs (ConfigError) and starts the sender."""

    def __init__(self, config: NotifyConfig, strategy: str = "") -> None:
        self.config = config
        self.strategy = strategy
        self.dropped = 0
        self._sender = _Sender(config)
        self._worker: WorkerThread | None = None
        self._fills: set[str] = set()
        self._state: str | None = None
        self._errors = 0
        self._error_sent: float | None = None

    def start(self) -> Notifier:
        self._sender.load()
        tick = min(1.0, max(0.05, self.config.disconnect_seconds / 4))
        self._worker = WorkerThread("notify", "sender", self._sender.handle, maxsize=self.config.queue_size,
                                    tick=tick).start()  # fmt: skip
        return self

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close(self.config.timeout)
        self._sender.unload()
        if self.dropped:
            _log.warning("{} notification(s) were dropped (the send queue was full)", self.dropped)

    # ------------------------------------------------------------------ offering
    def emit(self, event: str, summary: str, **fields: Any) -> None:
        """Offer one message (only for a chosen event); never blocks."""
        if event in self.config.events:
            self._offer(("send", event, summary, _fields(event, self.strategy, **fields)))

    def _offer(self, item: tuple) -> None:
        if self._worker is None or self._worker.offer(item):
            return
        self.dropped += 1
        if self.dropped == 1:
            _log.warning("notification queue full: messages are dropped (trading goes on)")

    # ------------------------------------------------------------------ translating
    def observe(self, event: Any) -> None:
        """A venue or feed event the runtime applied (engine thread)."""
        match event:
            case Execution() if event.exec_id not in self._fills:
                self._fills.add(event.exec_id)
                self.emit("fill", f"{event.side.value} {event.quantity:g} {event.asset} @ {event.price:g}",
                          client_order_id=event.client_order_id, asset=event.asset, side=event.side.value,
                          quantity=event.quantity, price=event.price, commission=event.commission,
                          exec_id=event.exec_id)  # fmt: skip
            case OrderRejected(client_order_id=cid, reason=reason, code=code):
                self.emit("rejection", f"order {cid} rejected: {reason}", client_order_id=cid, reason=reason,
                          code=code)  # fmt: skip
            case OrderLost(client_order_id=cid, reason=reason):
                self.emit("error", f"order {cid} is lost: {reason}", error=f"order {cid} lost: {reason}")
            case BrokerDisconnected(venue=venue, reason=reason) | FeedDisconnected(venue=venue, reason=reason):
                if "disconnect" in self.config.events:
                    self._offer(("down", _link(event, venue), reason, time.monotonic(), self.strategy))
            case BrokerReconnected(venue=venue) | FeedReconnected(venue=venue):
                if "disconnect" in self.config.events:
                    self._offer(("up", _link(event, venue), "", time.monotonic(), self.strategy))

    def strategy_error(self, text: str) -> None:
        """The strategy raised and the run went on (error policy 'log'): the first error is sent,
        then at most one per ``ERROR_EVERY`` seconds, with the count passed over meanwhile."""
        self._errors += 1
        now = time.monotonic()
        if self._error_sent is not None and now - self._error_sent < ERROR_EVERY:
            return
        self._error_sent, count, self._errors = now, self._errors, 0
        self.emit("error", text if count == 1 else f"{text} (and {count - 1} more since the last message)",
                  error=text, count=count)  # fmt: skip

    def trading_state(self, state: str, reason: str) -> None:
        """The strategy's trading state as seen after a bar: a change is a ``halt`` message."""
        before, self._state = self._state, state
        if before is None and state == "ACTIVE" or before == state:
            return
        summary = f"trading {state}" + (f": {reason}" if reason else "")
        self.emit("halt", summary, state=state, reason=reason)


class ObservedFeed:
    """A feed whose disconnect / reconnect events are also shown to the notifier (everything
    else is the wrapped feed's own)."""

    def __init__(self, feed: Any, notifier: Notifier) -> None:
        self._feed = feed
        self._notifier = notifier

    def next_event(self, timeout: float) -> Any:
        event = self._feed.next_event(timeout)
        if isinstance(event, (FeedDisconnected, FeedReconnected)):
            self._notifier.observe(event)
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)


def _link(event: Any, venue: str) -> str:
    return f"{venue} {'broker' if isinstance(event, (BrokerDisconnected, BrokerReconnected)) else 'feed'}"


class _Sender:
    """The sender thread's side: apprise objects, failing targets, links that are down."""

    def __init__(self, config: NotifyConfig) -> None:
        self.config = config
        self.targets: list[tuple[str, Any]] = []
        self.failing: set[str] = set()
        self.down: dict[str, list[Any]] = {}  # link -> [since, reason, strategy, told]
        self._apprise_log: tuple[logging.Logger, bool] | None = None

    def load(self) -> None:
        import apprise

        asset = apprise.AppriseAsset(async_mode=False)  # one call at a time, on this thread only
        for i, url in enumerate(self.config.urls, start=1):
            target = apprise.Apprise(asset=asset)
            if not target.add(url):
                raise ConfigError(f"[notify] urls: {redact(url, i)} is not a URL apprise understands "
                                  "(see https://github.com/caronc/apprise/wiki)")  # fmt: skip
            self.targets.append((redact(url, i), target))
        # apprise logs every failed delivery (and, at DEBUG, where it posts): this module says it
        # once per target, without the URL
        lg = logging.getLogger("apprise")
        self._apprise_log = (lg, lg.disabled)
        lg.disabled = True

    def unload(self) -> None:
        if self._apprise_log is not None:
            lg, was = self._apprise_log
            lg.disabled = was
            self._apprise_log = None

    def handle(self, item: tuple | None) -> None:
        if item is not None:
            kind, *rest = item
            if kind == "send":
                self.send(*rest)
            elif kind == "down":
                link, reason, at, strategy = rest
                self.down.setdefault(link, [at, reason, strategy, False])
            elif kind == "up":
                self._up(rest[0], rest[2])
        self._overdue(time.monotonic())

    def _up(self, link: str, at: float) -> None:
        entry = self.down.pop(link, None)
        if entry is not None and entry[3]:  # its outage was told: tell its end too
            since, _, strategy, _ = entry
            self.send("disconnect", f"{link} reconnected after {at - since:.0f}s",
                      _fields("disconnect", strategy, link=link, reason="reconnected",
                              seconds=round(at - since, 1), state="up"))  # fmt: skip

    def _overdue(self, now: float) -> None:
        for link, entry in self.down.items():
            since, reason, strategy, told = entry
            if not told and now - since >= self.config.disconnect_seconds:
                entry[3] = True
                self.send("disconnect", f"{link} disconnected for {now - since:.0f}s: {reason}",
                          _fields("disconnect", strategy, link=link, reason=reason,
                                  seconds=round(now - since, 1), state="down"))  # fmt: skip

    def send(self, event: str, summary: str, fields: dict[str, Any]) -> None:
        title = f"ml4t-live {fields.get('strategy') or ''}: {event}".replace("  ", " ")
        body = "\n".join([summary, *(f"{k}: {v}" for k, v in fields.items())])
        for name, target in self.targets:
            try:
                ok = target.notify(body=body, title=title, notify_type=_TYPES.get(event, "info"))
            except Exception as exc:  # noqa: BLE001  (a target's failure must never reach the runtime)
                ok = False
                reason = type(exc).__name__
            else:
                reason = "delivery failed"
            if ok and name in self.failing:
                self.failing.discard(name)
                _log.info("notification {} works again", name)
            elif not ok and name not in self.failing:
                self.failing.add(name)
                _log.warning("notification {}: {} ({} message); trading goes on, further failures of "
                             "this target are not logged", name, reason, event)  # fmt: skip


def _fields(event: str, strategy: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return {"event": event, "strategy": strategy, "time": now, **fields}
