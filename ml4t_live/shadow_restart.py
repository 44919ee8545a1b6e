"""A shadow run's restart, for :class:`~.shadow_journal.ShadowJournal`: whether its journal starts
afresh (:func:`_fresh_reason`, :func:`_start_afresh`), and the warm restart (:class:`ShadowRestart`,
mixed into ``ShadowJournal``): the journaled bars replayed through the unchanged strategy, its
commands compared with the journaled ones, the divergences reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from loguru import logger
from ml4t.backtest import Fill

from .errors import ReconciliationError
from .events import BarClosed, FeedEnded
from .journal import Journal
from .journal.arrival import replayed
from .journal.codec import unpack_bar
from .journal.link import divergence_summary
from .risk import ACTIVE

_log = logger.bind(component="shadow-journal")


class ShadowRestart:
    """The warm restart's steps; every attribute below is owned by ``ShadowJournal``."""

    journal: Journal
    on_divergence: str
    divergences: list[str]
    _replay: dict[int, list[list[Any]]] | None
    _last_bar: int
    _last_rows: int
    _operator_rows: dict[int, list[dict[str, Any]]]
    _fills: int
    _restart_failed: bool
    _version: int
    _ask: bool
    _replayed_bar: Callable[[], None]
    fills: Callable[..., None]
    commit: Callable[..., None]

    def begin_replay(self) -> bool:
        commands = self.journal.commands()
        if self.journal.bars == 0 and not commands:
            return False
        self._replay, self._last_bar = {}, self.journal.bars
        for (n, seq), (kind, _, args, _) in sorted(commands.items(), key=lambda kv: (kv[0][0], abs(kv[0][1]))):
            if kind == "commands":
                self._replay.setdefault(n, []).extend(args)
                self._last_rows += n == self._last_bar
            elif kind == "operator":
                self._operator_rows.setdefault(n, []).append(args)
        self._fills = self.journal.fill_count()
        return True

    def replay_bars(self, feed: Any) -> Iterator[tuple[int, BarClosed]]:
        """The journaled bars, each with when it arrived in the run that journaled it; a bar kept
        by reference is the recorded source's next bar (its timestamp must be the journaled one; a
        paced replay delivers those without pacing), with that source's clock."""
        if hasattr(feed, "unpaced"):
            feed.unpaced = self._last_bar
        for n, text, payload, arrived in self.journal.iter_bar_rows():
            if payload:
                yield n, BarClosed(*unpack_bar(payload), replayed_arrival=replayed(arrived))
                continue
            bar = _next_bar(feed)
            if bar is None or str(bar.timestamp) != text:
                raise ReconciliationError(
                    f"warm restart of the shadow run: the journal's bar {n} ({text}) is not the "
                    f"source's next bar ({bar.timestamp if bar is not None else 'the source ended'}). "
                    f"The recorded bars changed since the journal was written: move "
                    f"{self.journal.path} aside to start afresh"
                )  # fmt: skip
            yield n, bar

    def end_replay(self, fills: list[Fill]) -> None:
        """After the replay: divergences reported (the run stops unless told to continue); the
        fills the journal lacks (made past its last bar's commands) journaled; the first live bar
        reads the trading state the operator set meanwhile."""
        self._replayed_bar()
        self._replay = None
        if len(fills) > self._fills:  # the same simulation: the first ones are the journaled
            self.fills(fills[self._fills :], self._last_bar)
        if self.divergences:
            self._restart_failed = True
            shown = divergence_summary(self.divergences)
            if self.on_divergence == "fail":
                raise ReconciliationError(
                    f"warm restart of the shadow run: the strategy did not repeat its journaled "
                    f"decisions ({shown}). It changed, or it is not deterministic. Start afresh by "
                    f"moving {self.journal.path} aside, or replay the journal's decisions as they "
                    "come with on_divergence = 'continue' (--on-divergence continue)"
                )
            _log.error("warm restart: {} divergence(s), continuing as asked: {}", len(self.divergences), shown)
            self._restart_failed = False
        self.commit()
        self._version, self._ask = -1, True  # the first live bar reads what the operator set meanwhile
        _log.info("warm restart done: {} bars replayed", self._last_bar)


def _next_bar(feed: Any) -> BarClosed | None:
    """The recorded source's next bar (None when it ended first)."""
    while True:
        event = feed.next_event(1.0)
        if isinstance(event, BarClosed):
            return event
        if isinstance(event, FeedEnded):
            return None


def _fresh_reason(journal: Journal, source: str | None) -> str | None:
    if journal.is_new:
        return None
    if journal.meta("finished"):
        return "its last run ended (a replay restarts warm only after its process died)"
    if source is not None and (journal.meta("source") or None) != source:
        return f"it holds a run on {journal.meta('source') or 'live bars'}; this run replays {source}"
    return None


def _start_afresh(journal: Journal, path: Path, why: str) -> Journal:
    """A new file under the same lock (the earlier runs' session folders keep their records).
    A HALTED / REDUCING the operator set carries over; one a limit set (the last run's strategy
    errors, its loss) does not: that run is over."""
    state, reason = journal.meta("trading_state", ACTIVE), journal.meta("trading_state_reason", "")
    saved = json.loads(journal.meta("risk_state") or "{}")
    automatic = saved.get("state") == state and saved.get("cause") not in (None, "", "operator")
    _log.info("shadow journal {} starts afresh: {}", path, why)
    journal = journal.recreate()
    if state != ACTIVE and not automatic:
        journal.set_meta("trading_state", state)
        journal.set_meta("trading_state_reason", reason)
        _log.warning("the strategy stays {} ({}) in its new journal", state, reason or "no reason given")
    return journal
