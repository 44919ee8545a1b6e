"""Pure bar bookkeeping for the Alpaca feed: per-minute grouping and bar-size aggregation.

Alpaca pushes one minute bar per symbol, labelled with the minute's START (as the backtest labels
recorded bars), right after the minute closes. :class:`MinuteGrouper` turns those into one group
per minute holding every symbol that traded in it. A minute is complete when every symbol has
reported it, when a bar of a later minute arrives, or when the owner flushes it after a grace
period (a symbol with no trades in a minute gets no bar on Alpaca's feeds).

:class:`Aggregator` builds ``n``-minute bars from complete minute groups; a bucket is labelled by
its start (``floor(t, n)``) and closes with its last minute (or when a later bucket begins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MINUTE = timedelta(minutes=1)


@dataclass
class Group:
    label: datetime
    data: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_bar_size(bar_size: str) -> int:
    """``1Min`` / ``5Min`` / ``1Hour`` / ``1min`` -> minutes (whole minutes, at most a day)."""
    text = bar_size.strip().lower()
    for suffix, factor in (("min", 1), ("m", 1), ("hour", 60), ("h", 60)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            minutes = int(text[: -len(suffix)]) * factor
            if 1 <= minutes <= 24 * 60:
                return minutes
    raise ValueError(
        f"bar size {bar_size!r}: use <n>Min or <n>Hour (aggregated from minute bars)"
    )


class MinuteGrouper:
    def __init__(self, symbols: list[str]) -> None:
        self.symbols = set(symbols)
        self._open: dict[datetime, Group] = {}
        self.last_label: datetime | None = None  # newest label handed out
        self.late_dropped = 0

    def add(self, symbol: str, label: datetime, fields: dict[str, Any]) -> list[Group]:
        """Add one bar; returns the groups this completes (oldest first)."""
        if self.last_label is not None and label <= self.last_label:
            self.late_dropped += (
                1  # already delivered (a duplicate, or too late to matter)
            )
            return []
        group = self._open.setdefault(label, Group(label))
        group.data[symbol] = fields
        done = [g for lbl, g in self._open.items() if lbl < label]
        if self.symbols <= set(group.data):
            done.append(group)
        return self._release(done)

    def flush(self, up_to: datetime | None = None) -> list[Group]:
        """Release open groups (all, or those labelled ``<= up_to``)."""
        return self._release(
            [g for lbl, g in self._open.items() if up_to is None or lbl <= up_to]
        )

    def oldest_open(self) -> datetime | None:
        return min(self._open) if self._open else None

    def newest_seen(self) -> datetime | None:
        """The newest minute the stream brought, handed out or still open (None: none yet)."""
        labels = [*self._open, *([self.last_label] if self.last_label is not None else [])]
        return max(labels) if labels else None

    def _release(self, groups: list[Group]) -> list[Group]:
        groups.sort(key=lambda g: g.label)
        for group in groups:
            self._open.pop(group.label, None)
            self.last_label = group.label
        return groups

    def mark_delivered(self, label: datetime) -> None:
        """History delivered up to ``label`` (the seam): later live bars must be newer."""
        if self.last_label is None or label > self.last_label:
            self.last_label = label
        for lbl in [lbl for lbl in self._open if lbl <= label]:
            del self._open[lbl]


def floor_label(label: datetime, minutes: int) -> datetime:
    """Bucket start: minutes counted from midnight of the label's own day (as pandas floors)."""
    midnight = label.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (label - midnight) // timedelta(minutes=minutes)
    return midnight + offset * timedelta(minutes=minutes)


def merge(into: dict[str, Any] | None, bar: dict[str, Any]) -> dict[str, Any]:
    if into is None:
        return dict(bar, signals={})
    into["high"] = max(into["high"], bar["high"])
    into["low"] = min(into["low"], bar["low"])
    into["close"] = into["price"] = bar["close"]
    into["volume"] = into["volume"] + bar["volume"]
    return into


class Aggregator:
    """Minute groups in, ``minutes``-sized groups out (identity for 1 minute)."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self._bucket: Group | None = None

    def add(self, group: Group) -> list[Group]:
        if self.minutes == 1:
            return [group]
        label = floor_label(group.label, self.minutes)
        out: list[Group] = []
        if self._bucket is not None and self._bucket.label != label:
            out.append(self._bucket)
            self._bucket = None
        if self._bucket is None:
            self._bucket = Group(label)
        for symbol, bar in group.data.items():
            self._bucket.data[symbol] = merge(self._bucket.data.get(symbol), bar)
        if group.label + MINUTE >= label + timedelta(minutes=self.minutes):
            out.append(self._bucket)
            self._bucket = None
        return out

    def flush(self) -> list[Group]:
        out = [self._bucket] if self._bucket is not None else []
        self._bucket = None
        return out
