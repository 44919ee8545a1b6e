"""Pure bar assembly: IB 5-second real-time bars -> bars of the requested size -> one group per label.

A bar is labelled by its START time, as ml4t.backtest labels recorded bars. A window
``[label, label + size)`` closes when its last 5-second slot arrives (``label + size - 5``), or
when a later bar for the same symbol shows the window is over. A group (one label, every symbol's
bar for it) is released when all symbols have closed that label, or when any symbol has moved past
it (the missing symbols simply did not trade), or on :meth:`BarAssembler.flush`.

A window whose first 5-second slot is later than its label is *partial* (the subscription began
inside it); the feed replaces partial bars with historical ones at the seam.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .bar_parsing import bar_values

RT_BAR_SECONDS = 5


@dataclass(slots=True)
class _Window:
    label: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    first_slot: int
    last_slot: int

    def values(self) -> dict[str, Any]:
        return bar_values(self.open, self.high, self.low, self.close, self.volume)


@dataclass(slots=True)
class BarGroup:
    """Every symbol's bar for one label (epoch seconds of the bar start)."""

    label: int
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    partial: set[str] = field(default_factory=set)


class BarAssembler:
    """Aggregates 5-second bars per symbol and groups closed bars by label. Pure: no clock.

    Constant work per 5-second bar whatever the symbol count (hundreds of symbols send a
    minute's last bars in one burst): a group is complete when it holds every symbol's bar, and
    "some symbol has moved past a label" is the newest window label opened since the stream
    (re)started being later than it.
    """

    def __init__(self, symbols: Iterable[str], bar_seconds: int) -> None:
        self.symbols = tuple(dict.fromkeys(symbols))
        if not self.symbols:
            raise ValueError("BarAssembler needs at least one symbol")
        if bar_seconds % RT_BAR_SECONDS:
            raise ValueError(
                f"bar size {bar_seconds}s is not a multiple of {RT_BAR_SECONDS}s"
            )
        self.bar_seconds = bar_seconds
        self._known = frozenset(self.symbols)
        self._open: dict[str, _Window] = {}
        self._closed_upto: dict[str, int] = {}  # symbol -> newest label it closed
        self._newest = -1  # newest window label opened since the stream (re)started
        self._pending: dict[int, BarGroup] = {}
        self.released_upto: int | None = (
            None  # newest label released (drop anything <= it)
        )

    def window_of(self, start: int) -> int:
        return start - start % self.bar_seconds

    # ------------------------------------------------------------------ input
    def add(
        self,
        symbol: str,
        start: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> list[BarGroup]:
        """Feed one 5-second bar (``start`` = epoch seconds); returns the groups it releases."""
        label = start - start % self.bar_seconds
        win = self._open.get(symbol)
        changed = False  # a window closed or a newer one opened: groups may be due
        if win is not None:
            if label > win.label:  # the symbol moved on: its open window is over
                del self._open[symbol]
                self._close(symbol, win)
                win, changed = None, True
            elif start <= win.last_slot:
                return []  # late or duplicate 5-second bar
        if win is None:
            if symbol not in self._known:
                return []
            if self.released_upto is not None and label <= self.released_upto:
                return self._release_ready() if changed else []  # delivered (history)
            if label <= self._closed_upto.get(symbol, -1):
                return self._release_ready() if changed else []
            win = _Window(label, open_, high, low, close, volume, start, start)
            self._open[symbol] = win
            if label > self._newest:
                self._newest, changed = label, True
        else:
            win.high = max(win.high, high)
            win.low = min(win.low, low)
            win.close = close
            win.volume += volume
            win.last_slot = start
        if start >= label + self.bar_seconds - RT_BAR_SECONDS:  # the window's last slot
            del self._open[symbol]
            self._close(symbol, win)
            changed = True
        return self._release_ready() if changed and self._pending else []

    def _close(self, symbol: str, win: _Window) -> None:
        if win.label > self._closed_upto.get(symbol, -1):
            self._closed_upto[symbol] = win.label
        if self.released_upto is not None and win.label <= self.released_upto:
            return  # delivered by another path (history) meanwhile
        group = self._pending.get(win.label)
        if group is None:
            group = self._pending[win.label] = BarGroup(win.label)
        group.data[symbol] = win.values()
        if win.first_slot > win.label:
            group.partial.add(symbol)

    def _release_ready(self) -> list[BarGroup]:
        """Pending groups, oldest first, while each is complete or some symbol moved past it."""
        out = []
        for label in sorted(self._pending):
            if len(self._pending[label].data) < len(self.symbols) and self._newest <= label:
                break
            out.append(self._pop(label))
        return out

    def _pop(self, label: int) -> BarGroup:
        group = self._pending.pop(label)
        self.released_upto = (
            label if self.released_upto is None else max(self.released_upto, label)
        )
        return group

    def holds_before(self, label: int) -> bool:
        """A window before ``label`` is still open or waits in a pending group."""
        return any(lbl < label for lbl in self._pending) or any(w.label < label for w in self._open.values())

    def flush(self, older_than: int | None = None) -> list[BarGroup]:
        """Release pending groups (all, or those with label < ``older_than``), oldest first,
        with the windows still open there closed into them first (a symbol that had bars in
        the window but none in its last slot is in its group, not dropped)."""
        for symbol, win in list(self._open.items()):
            if older_than is None or win.label < older_than:
                del self._open[symbol]
                self._close(symbol, win)
        labels = sorted(
            lbl for lbl in self._pending if older_than is None or lbl < older_than
        )
        return [self._pop(lbl) for lbl in labels]

    def pending_labels(self) -> list[int]:
        return sorted(self._pending)

    def reset_stream(self) -> None:
        """Forget open windows (the real-time stream broke); released labels are kept."""
        self._open.clear()
        self._closed_upto.clear()
        self._newest = -1
        self._pending.clear()

    def mark_released(self, label: int) -> None:
        """Labels <= ``label`` were delivered by another path (history); drop them if they come."""
        self.released_upto = (
            label if self.released_upto is None else max(self.released_upto, label)
        )
        for lbl in [lbl for lbl in self._pending if lbl <= label]:
            del self._pending[lbl]
