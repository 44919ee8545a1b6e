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

from .parsing import bar_values

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
    """Aggregates 5-second bars per symbol and groups closed bars by label. Pure: no clock."""

    def __init__(self, symbols: Iterable[str], bar_seconds: int) -> None:
        self.symbols = tuple(symbols)
        if not self.symbols:
            raise ValueError("BarAssembler needs at least one symbol")
        if bar_seconds % RT_BAR_SECONDS:
            raise ValueError(
                f"bar size {bar_seconds}s is not a multiple of {RT_BAR_SECONDS}s"
            )
        self.bar_seconds = bar_seconds
        self._open: dict[str, _Window] = {}
        self._closed_upto: dict[str, int] = {}  # symbol -> newest label it closed
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
        label = self.window_of(start)
        win = self._open.get(symbol)
        closed: list[tuple[str, _Window]] = []
        if win is not None and label > win.label:
            closed.append((symbol, win))
            win = None
            del self._open[symbol]
        if win is not None and start <= win.last_slot:
            return []  # late or duplicate 5-second bar
        if win is None:
            if self.released_upto is not None and label <= self.released_upto:
                return []  # a window already delivered (e.g. from history at the seam)
            if label <= self._closed_upto.get(symbol, -1):
                return []
            win = _Window(label, open_, high, low, close, volume, start, start)
            self._open[symbol] = win
        else:
            win.high = max(win.high, high)
            win.low = min(win.low, low)
            win.close = close
            win.volume += volume
            win.last_slot = start
        if start >= label + self.bar_seconds - RT_BAR_SECONDS:
            closed.append((symbol, win))
            del self._open[symbol]
        for sym, w in closed:
            self._close(sym, w)
        return self._release_ready()

    def _close(self, symbol: str, win: _Window) -> None:
        self._closed_upto[symbol] = max(self._closed_upto.get(symbol, -1), win.label)
        if self.released_upto is not None and win.label <= self.released_upto:
            return  # delivered by another path (history) meanwhile
        group = self._pending.setdefault(win.label, BarGroup(win.label))
        group.data[symbol] = win.values()
        if win.first_slot > win.label:
            group.partial.add(symbol)

    def _release_ready(self) -> list[BarGroup]:
        out = []
        for label in sorted(self._pending):
            group = self._pending[label]
            complete = all(s in group.data for s in self.symbols)
            moved_on = any(
                self._closed_upto.get(s, -1) > label for s in self.symbols
            ) or any(w.label > label for w in self._open.values())
            if not (complete or moved_on):
                break
            out.append(self._pop(label))
        return out

    def _pop(self, label: int) -> BarGroup:
        group = self._pending.pop(label)
        self.released_upto = (
            label if self.released_upto is None else max(self.released_upto, label)
        )
        return group

    def flush(self, older_than: int | None = None) -> list[BarGroup]:
        """Release pending groups (all, or those with label < ``older_than``), oldest first."""
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
        self._pending.clear()

    def mark_released(self, label: int) -> None:
        """Labels <= ``label`` were delivered by another path (history); drop them if they come."""
        self.released_upto = (
            label if self.released_upto is None else max(self.released_upto, label)
        )
        for lbl in [lbl for lbl in self._pending if lbl <= label]:
            del self._pending[lbl]
