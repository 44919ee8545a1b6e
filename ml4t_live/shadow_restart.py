"""A shadow run's restart, for :class:`~.shadow_journal.ShadowJournal`: whether its journal starts
afresh (:func:`fresh_reason`, :func:`start_afresh`), and the warm restart in progress
(:class:`ShadowReplay`, which the journal holds while it replays): the journaled bars replayed
through the unchanged strategy, its commands compared with the journaled ones, the divergences
reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loguru import logger

from .errors import ReconciliationError
from .events import BarClosed, FeedEnded
from .journal import Journal
from .journal.arrival import replayed
from .journal.codec import pack, unpack_bar
from .journal.link import divergence_summary, same_decision
from .risk import ACTIVE

_log = logger.bind(component="shadow-journal")

_NONE = pack(None)  # a command row's result (as the shadow journal writes its rows)


class ShadowReplay:
    """A warm restart in progress: the journal's commands and operator changes by bar, the
    command the strategy makes compared with the journaled one at the same ``(n, seq)``, the
    divergences found. :meth:`begin` makes one when the journal holds something to replay."""

    def __init__(self, journal: Journal, commands: dict[tuple[int, int], Any]) -> None:
        self.journal = journal
        self.last_bar = journal.bars  # the journal's last bar (where its run ended or failed)
        self.journaled: dict[int, list[list[Any]]] = {}  # bar n -> its journaled commands
        self.operator_rows: dict[int, list[dict[str, Any]]] = {}  # bar n -> the operator's changes
        self.last_rows = 0  # the command rows of the journal's last bar
        for (n, seq), (kind, _, args, _) in sorted(commands.items(), key=lambda kv: (kv[0][0], abs(kv[0][1]))):
            if kind == "commands":
                self.journaled.setdefault(n, []).extend(args)
                self.last_rows += n == self.last_bar
            elif kind == "operator":
                self.operator_rows.setdefault(n, []).append(args)
        self.journaled_fills = journal.fill_count()  # the replay simulates these again
        self.expected: list[list[Any]] = []  # the journal's commands of the bar being replayed
        self.divergences: list[str] = []

    @classmethod
    def begin(cls, journal: Journal) -> ShadowReplay | None:
        """The journal's warm restart; None when it holds no bar and no command."""
        commands = journal.commands()
        if journal.bars == 0 and not commands:
            return None
        return cls(journal, commands)

    def bars(self, feed: Any) -> Iterator[tuple[int, BarClosed]]:
        """The journaled bars, each with when it arrived in the run that journaled it; a bar kept
        by reference is the recorded source's next bar (its timestamp must be the journaled one; a
        paced replay delivers those without pacing), with that source's clock."""
        if hasattr(feed, "unpaced"):
            feed.unpaced = self.last_bar
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

    def start_bar(self, n: int) -> list[dict[str, Any]] | tuple[()]:
        """Bar ``n`` is replayed: its journaled commands are expected; returns the operator's
        changes the run applied at it."""
        self.expected = self.journaled.get(n, [])
        return self.operator_rows.get(n, ())

    def command(self, n: int, made: list[list[Any]]) -> None:
        """The strategy made ``made[-1]`` (its command ``len(made)`` at bar ``n``): a divergence
        when the journal holds another there, or nothing before its last bar. Called only while
        replaying (the journal holds no ``replay`` once it ends): ``n`` is a journaled bar."""
        expected = self.expected[len(made) - 1] if len(made) <= len(self.expected) else None
        if expected is None and n == self.last_bar:
            return  # past what the journal holds of its last bar (its run failed there): kept by end_bar
        if expected is None or not same_decision(expected, made[-1]):
            kind, order_id, args, result = made[-1]
            self.divergences.append(
                f"bar {n}: the strategy made {kind} {order_id or '-'} {args} -> {result}; the journal "
                + (f"holds {expected[0]} {expected[1] or '-'} {expected[2]} -> {expected[3]}" if expected
                   else "holds nothing")
            )  # fmt: skip

    def end_bar(self, n: int, made: list[list[Any]], command_rows: list[tuple]) -> None:
        """Bar ``n`` was replayed, the strategy having made ``made``: what the journal holds that
        the strategy did not make again is a divergence. On the last bar (where its run failed)
        the strategy may make more: appended to ``command_rows`` as that bar's next command row,
        so a later restart expects them."""
        expected = self.expected
        for kind, order_id, args, _ in expected[len(made):]:
            self.divergences.append(f"bar {n}: the journal holds {kind} {order_id or '-'} {args}, "
                                    "which the strategy did not make again")  # fmt: skip
        if n == self.last_bar and len(made) > len(expected):
            command_rows.append((n, self.last_rows, "commands", "", pack(made[len(expected):]), _NONE))
        self.expected = []

    def end(self, on_divergence: str) -> None:
        """After the replay: the divergences reported, a ReconciliationError unless
        ``on_divergence`` is ``'continue'`` (then logged)."""
        if not self.divergences:
            return
        shown = divergence_summary(self.divergences)
        if on_divergence == "fail":
            raise ReconciliationError(
                f"warm restart of the shadow run: the strategy did not repeat its journaled "
                f"decisions ({shown}). It changed, or it is not deterministic. Start afresh by "
                f"moving {self.journal.path} aside, or replay the journal's decisions as they "
                "come with on_divergence = 'continue' (--on-divergence continue)"
            )
        _log.error("warm restart: {} divergence(s), continuing as asked: {}", len(self.divergences), shown)


def _next_bar(feed: Any) -> BarClosed | None:
    """The recorded source's next bar (None when it ended first)."""
    while True:
        event = feed.next_event(1.0)
        if isinstance(event, BarClosed):
            return event
        if isinstance(event, FeedEnded):
            return None


def fresh_reason(journal: Journal, source: str | None) -> str | None:
    """Why the run on ``source`` (None: live bars) starts a fresh journal, or None (a new
    journal, or a warm restart)."""
    if journal.is_new:
        return None
    if journal.meta("finished"):
        return "its last run ended (a replay restarts warm only after its process died)"
    if source is not None and (journal.meta("source") or None) != source:
        return f"it holds a run on {journal.meta('source') or 'live bars'}; this run replays {source}"
    return None


def start_afresh(journal: Journal, path: Path, why: str) -> Journal:
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
