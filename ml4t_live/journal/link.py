"""The broker's side of the journal: bar numbers, commands, venue events, and the warm restart.

Every bar the strategy consumes gets a number ``n`` (``0`` is ``on_start`` / ``on_prepare``).
What the strategy asks of the broker at bar ``n`` is a *command* ``(n, seq)``: a submit (its
intent is committed before the order leaves), a cancel, a change. Venue events are journaled with
the ``n`` of the bar they were applied before. A warm restart replays the journaled bars through
the unchanged strategy: each command it makes is compared with the journaled one at the same
``(n, seq)`` and gets the journaled answer instead of reaching the venue; the journaled events are
applied before the bar they were applied before the first time. A command that differs, or one
the strategy no longer makes, is a *divergence* (a non-deterministic strategy).

A command the order-rate limit counts carries the market time it was counted at (``sent_at``),
journaled with the command before it acts, so a restart's rate window holds the sends of the
last minute (:meth:`~.store.Journal.recent_sends`); a command the rails refused is not counted.

Commands the *runtime* makes on its own (the operator's flatten) are numbered ``(n, -1)``,
``(n, -2)``, ...: the strategy's own sequence is untouched, and a warm restart re-creates them
at their bar (``runtime_submits``) instead of expecting the strategy to make them again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from .arrival import journaled
from .store import Journal

_log = logger.bind(component="journal")

#: a command made on the bar a crash interrupted, beyond what the journal holds
BEYOND = object()
#: a command the journal holds differently (a divergence): its caller refuses it
DIVERGED = object()
#: a submit journaled before it was sent, whose answer never made it into the journal (the
#: process died in between): the order may be at the venue; the restart looks it up
UNANSWERED = {"status": "unknown"}


@dataclass
class Replay:
    """What a warm restart replays: bars, events by bar, commands by (n, seq)."""

    last_bar: int
    events: dict[int, list[Any]]
    commands: dict[tuple[int, int], tuple[str, str, Any, Any]]
    matched: set[tuple[int, int]] = field(default_factory=set)
    divergences: list[str] = field(default_factory=list)


def divergence_summary(divergences: list[str]) -> str:
    """The first five divergences, and how many more (for the warm restart's error)."""
    more = len(divergences) - 5
    return "; ".join(divergences[:5]) + (f"; ... {more} more" if more > 0 else "")


def same_decision(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_decision(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_decision(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class JournalLink:
    """Numbers bars and commands, appends to the journal, and drives a warm restart."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.n = 0
        self._seq = 0
        self._runtime_seq = 0
        self.runtime = False  # set while the runtime (not the strategy) makes commands
        self.replay: Replay | None = None
        #: the market time the command in progress is counted at by the order-rate limit (None:
        #: not counted; :meth:`not_sent` when the rails refuse it)
        self.sent_at: float | None = None

    # ------------------------------------------------------------------ warm restart
    def begin_replay(self) -> bool:
        """Load what a warm restart replays; False when the journal holds no decisions yet."""
        commands = self.journal.commands()
        if self.journal.bars == 0 and not commands:
            return False
        self.replay = Replay(self.journal.bars, self.journal.events_by_bar(), commands)
        return True

    @property
    def replaying(self) -> bool:
        return self.replay is not None

    def replay_bars(self):
        """(n, timestamp, data, context, catch_up, arrived) of each journaled bar, in order."""
        yield from self.journal.replay_bars()

    def events_before(self, n: int) -> list[Any]:
        return self.replay.events.get(n, []) if self.replay is not None else []

    def end_replay(self) -> tuple[list[str], list[tuple[str, dict[str, Any], Any]]]:
        """Stop replaying: (the divergences found, the journaled submits nobody re-made).

        A journaled command the strategy did not make again is a divergence, unless it was made
        after the last bar (in ``on_end``, which a replay does not call). Either way a submit
        that was not re-made may be working at the venue: it is returned as (client order id,
        request, answer), for the broker to keep track of."""
        replay, self.replay = self.replay, None
        if replay is None:
            return [], []
        unmatched = []
        for key in sorted(set(replay.commands) - replay.matched):
            kind, cid, args, result = replay.commands[key]
            if kind == "submit":
                unmatched.append((cid, args, result))
            if key[0] <= replay.last_bar:
                replay.divergences.append(
                    f"bar {key[0]}: the journal holds a {kind} of {cid} the strategy did not make again"
                )
        return replay.divergences, unmatched

    def late_events(self) -> list[Any]:
        """Events journaled after the last bar (an end-of-run settle), to apply after a replay."""
        if self.replay is None:
            return []
        return [e for n in sorted(self.replay.events) if n > self.replay.last_bar
                for e in self.replay.events[n]]  # fmt: skip

    # ------------------------------------------------------------------ bars
    def start_bar(self, timestamp: Any, data: dict, context: dict, catch_up: bool,
                  replay_n: int | None = None, received_at: float | None = None) -> int:  # fmt: skip
        """Bar ``n`` begins (a live bar is journaled first, with when it arrived; a replayed one
        already is)."""
        if replay_n is not None:
            self.n = replay_n
        else:
            self.n = self.journal.append_bar(timestamp, data, context, catch_up, arrived=journaled(received_at))
            self.journal.commit()  # the fill barrier may wait: no write lock held meanwhile
        self._seq = self._runtime_seq = 0
        return self.n

    def next_runtime_key(self) -> tuple[int, int]:
        """The (n, seq) the runtime's next command gets (unique in the journal)."""
        return self.n, self._runtime_seq - 1

    def runtime_submits(self, n: int) -> list[tuple[str, dict[str, Any], Any]]:
        """Replaying: the submits the runtime made at bar ``n`` (cid, request, answer)."""
        replay = self.replay
        if replay is None:
            return []
        found = []
        for key in sorted((k for k in replay.commands if k[0] == n and k[1] < 0), reverse=True):
            kind, cid, args, result = replay.commands[key]
            replay.matched.add(key)
            if kind == "submit":
                found.append((cid, args, result))
        return found

    # ------------------------------------------------------------------ commands
    def command(self, kind: str, cid: str, args: dict[str, Any], act: Callable[[], Any],
                sent_at: float | None = None) -> Any:  # fmt: skip
        """Run one command: live, journal it and ``act()``; replaying, return the journaled
        answer (``BEYOND`` for a command past the journal on the bar a crash interrupted,
        ``DIVERGED`` for one the journal holds differently). ``sent_at``: the market time the
        order-rate limit will count it at if the rails let it go (journaled with it)."""
        self.sent_at = sent_at
        if self.runtime:
            self._runtime_seq -= 1
            key = (self.n, self._runtime_seq)
        else:
            self._seq += 1
            key = (self.n, self._seq)
        replay = self.replay
        if replay is not None and not (key not in replay.commands and self.n >= replay.last_bar):
            expected = replay.commands.get(key)
            if expected is None or expected[0] != kind or expected[1] != cid or not same_decision(expected[2], args):
                replay.divergences.append(
                    f"bar {self.n}: the strategy made {kind} {cid} {args}; the journal holds "
                    + (f"{expected[0]} {expected[1]} {expected[2]}" if expected else "nothing")
                )
                return DIVERGED
            replay.matched.add(key)
            return expected[3]
        if replay is not None:
            return BEYOND
        # the command row first: the intent's commit makes both durable before the order leaves
        self.journal.append_command(*key, kind, cid, args, UNANSWERED if kind == "submit" else None, sent_at)
        if kind == "submit":
            self.journal.append_intent(cid, self.n, args)
        result = act()
        self.journal.set_command_result(*key, result, self.sent_at)
        self.journal.commit()  # no write lock held while the strategy goes on computing
        return result

    def not_sent(self) -> None:
        """The rails refused the command in progress: the order-rate limit did not count it."""
        self.sent_at = None

    def record_beyond(self, kind: str, cid: str, args: dict[str, Any], result: Any) -> None:
        """Journal a command made past the journal on the crashed bar (it got ``result``; its
        ``sent_at`` is the one the caller set, if the rails counted it)."""
        key = (self.n, self._seq)
        if kind == "submit":
            self.journal.append_intent(cid, self.n, args)
        self.journal.append_command(key[0], key[1], kind, cid, args, result, self.sent_at)

    # ------------------------------------------------------------------ events
    def event(self, event: Any) -> None:
        """A venue event the engine applied before bar ``n``'s ``on_data`` (live only: a replay
        applies the journaled ones)."""
        if self.replay is None:
            self.journal.append_event(self.n, event)

    def closing(self) -> None:
        """After the last bar: events applied from now on come before the next run's bars."""
        self.n = self.journal.bars + 1
        self._seq = 0
