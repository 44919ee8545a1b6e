"""A shadow run's journal: what it consumed and decided, so a killed rehearsal restarts warm and
an operator's ``halt`` / ``resume`` reaches it from another terminal.

One file per (``shadow``, feed, strategy id) in the state directory: the journal a venue run
keeps (:mod:`ml4t_live.journal.store`), holding

* ``bars``: every bar the strategy consumed (a catch-up bar flagged in its context), with when it
  arrived (:mod:`~ml4t_live.journal.arrival`);
* ``commands``: what the strategy asked of the broker at bar ``n`` (``submit`` / ``update`` /
  ``cancel`` at ``(n, 1..)``, with the arguments and the order id it got), and the operator's
  trading-state changes as the run applied them (``operator`` at ``(n, -1..)``);
* ``fills``: each simulated fill, so ``ml4t-live status`` shows the strategy's positions;
* ``meta``: identity, the trading state and the rails' usage (as a venue run's).

Nothing leaves the process in shadow mode, so a bar's rows are not committed one by one: they
are committed together at most ``COMMIT_SECONDS`` apart, when the trading state moves, and at
the end. A killed rehearsal loses at most the last ``COMMIT_SECONDS`` of bars; its restart
replays what the journal holds and goes on from there.

Warm restart: the journaled bars go through the unchanged strategy and a fresh backtest broker,
so the shadow's fills are simulated again exactly as they happened (the same rules on the same
bars); each command the strategy makes is compared with the journaled one at the same ``(n,
seq)``, and the operator's changes are applied again at their bar. A difference is a divergence
(a non-deterministic or edited strategy): the run stops before its first new bar unless
``on_divergence='continue'``.

A recorded replay (a source file) restarts warm only when the process running it died (kill -9,
a power cut): any end the run reached itself (the end of the data, ``--max-bars``, Ctrl-C, a
strategy error) starts the next run afresh, as does a different source. A research loop that
re-runs an edited strategy on the same data gets a new run, not a restart.

The restart (afresh or warm) is :mod:`ml4t_live.shadow_restart`: while it replays, the journal
holds its :class:`~ml4t_live.shadow_restart.ShadowReplay` and calls into it at each bar and command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from ml4t.backtest import Broker, Fill, Order, OrderSide, OrderType

from .events import BarClosed
from .journal import Journal, journal_path
from .journal.arrival import journaled
from .journal.codec import pack, pack_bar
from .journal.signal import ChangeSignal
from .rails import JournaledRails, resume_hint
from .risk import (
    ACTIVE,
    HALTED,
    REDUCING,
    RiskConfig,
    RiskGate,
    TradingState,
    Transition,
)
from .shadow_restart import ShadowReplay, fresh_reason, start_afresh

_log = logger.bind(component="shadow-journal")

_NONE = pack(None)

#: the longest a shadow run's appended rows wait for their commit
COMMIT_SECONDS = 0.25


class ShadowJournal:
    """Journals a shadow broker's bars and commands; replays them after a restart."""

    def __init__(self, journal: Journal, gate_config: RiskConfig | None, on_divergence: str, *,
                 by_reference: bool = False) -> None:  # fmt: skip
        """``by_reference``: the bars come from a recorded source (a replay): each is journaled
        as its number and timestamp, and a restart reads it from the same source again."""
        self.journal = journal
        self.by_reference = by_reference
        self.on_divergence = on_divergence
        self.rails: JournaledRails | None = None
        if gate_config is not None:
            # positions are followed when a limit reads them, and from an operator's REDUCING on
            gate = RiskGate(gate_config, TradingState(gate_config), resume_hint=resume_hint(journal))
            self.rails = JournaledRails(gate, journal)
            self.rails.report_limits(None)  # status shows this run's limits from its start
        #: when to ask the journal whether an operator changed the trading state
        self._signal = ChangeSignal(journal.path) if gate_config is not None else None
        self.n = 0
        self._bar: list[tuple[str, tuple]] = []  # the bar in progress: its row, operator changes
        self._made: list[list[Any]] = []  # its commands: [kind, order id, args, result]
        self._moves: list[Transition] = []  # state moves waiting for their bar's commit
        self._flatten_done = False  # the operator's flatten, carried out, waiting for its commit
        self._closing = self._restart_failed = False
        self._fills = 0
        self._last_commit = time.monotonic()
        self._version = -1  # the first live bar reads the trading state the journal holds
        self._ask = True  # ask the journal at the next bar (then: at each commit, and when signalled)
        self._rows: dict[str, list[tuple]] = {"bars": [], "commands": [], "fills": []}
        self._stamp: tuple[Any, str] = (None, "")  # the last timestamp and its text
        self._replay: ShadowReplay | None = None  # the warm restart, while it replays
        self.halt: Callable[[], None] | None = None  # the broker's: cancel every working order
        self.follow: Callable[[], None] | None = None  # the broker's: the gate follows positions
        self.flatten: Callable[[], None] | None = None  # the broker's: close every position

    # ------------------------------------------------------------------ open
    @classmethod
    def open(cls, state_dir: Any, feed: str, strategy_id: str, *, source: str | None, cash: float,
             risk: RiskConfig | None, on_divergence: str) -> ShadowJournal:  # fmt: skip
        path = journal_path(state_dir, "shadow", feed, strategy_id)
        journal = Journal.open(path)
        why = fresh_reason(journal, source)
        if why:
            journal = start_afresh(journal, path, why)
        if journal.is_new:
            for key, value in (("venue", "shadow"), ("account", feed), ("strategy_id", strategy_id),
                               ("starting_cash", repr(cash)),
                               ("trading_state", journal.meta("trading_state") or ACTIVE),
                               ("source", source or ""), ("created_at", datetime.now(UTC).isoformat())):  # fmt: skip
                journal.set_meta(key, value)
            _log.info("new shadow journal {}", path)
        else:
            _log.info("shadow journal {}: {} bars to replay (warm restart)", path, journal.bars)
        return cls(journal, risk, on_divergence, by_reference=source is not None)

    @property
    def gate(self) -> RiskGate | None:
        return self.rails.gate if self.rails is not None else None

    # ------------------------------------------------------------------ bars
    def start_bar(self, bar: BarClosed, replay_n: int | None) -> None:
        """Bar ``n`` begins: numbered (live: its row kept until the bar ends, so a commit never
        holds half a bar) or replayed; the operator's changes applied (live: read from the
        journal when another process wrote to it)."""
        if self._replay is not None:  # replaying: the bar before this one ends
            self._replay.end_bar(self.n, self._made, self._rows["commands"])
            self._made = []
        if replay_n is not None:
            self.n = replay_n
            for change in self._replay.start_bar(replay_n):
                self._apply(change)
            return
        self.n = n = self.journal.next_bar()
        by_reference = self.by_reference and not bar.catch_up
        payload = b"" if by_reference else pack_bar(bar.timestamp, bar.data, bar.context, bar.catch_up)
        self._bar = [("bars", (n, self._text(bar.timestamp), payload, journaled(bar.received_at)))]
        signal = self._signal
        if signal is not None and (self._ask or signal.map[0] != signal.seen):  # signal.changed(), inlined
            self._ask = False
            signal.changed()  # taken
            version = self.journal.data_version()
            if version != self._version:  # another process (ml4t-live halt / resume) wrote
                self._version = version
                self._operator()

    def _text(self, timestamp: Any) -> str:
        last, text = self._stamp
        if timestamp is not last:
            text = str(timestamp)
            self._stamp = (timestamp, text)
        return text

    def _operator(self) -> None:
        rails = self.rails
        state = rails.gate.state
        before = state.reason, state.cause
        moved = rails.sync()
        flatten = bool(rails.flatten_requested)
        if moved is None and not flatten and (state.reason, state.cause) == before:  # (a halt over a limit's: kept)
            return
        change = {"state": rails.gate.state.state, "reason": rails.gate.state.reason, "flatten": flatten}
        self._bar.append(("commands", (self.n, -1 - len(self._bar), "operator", "", pack(change), _NONE)))
        self._act(change, moved)
        self._flatten_done = self._flatten_done or flatten  # cleared once this bar is committed

    def _apply(self, change: dict[str, Any]) -> None:
        """Replaying: the operator's change, as the run applied it at this bar."""
        moved = self.rails.gate.operator(change["state"], change["reason"]) if self.rails is not None else None
        self._act(change, moved)

    def _act(self, change: dict[str, Any], moved: Transition | None) -> None:
        if moved is not None:
            log = _log.info if moved.new == ACTIVE else _log.warning
            log("trading state {} (was {}): {}", moved.new, moved.old, moved.why)
            if moved.new == HALTED and self.halt is not None:
                self.halt()
            if moved.new == REDUCING and self.follow is not None:
                self.follow()
        if change.get("flatten") and self.flatten is not None:
            self.flatten()

    def moved(self, transition: Transition | None) -> None:
        """A limit moved the trading state: persisted together with the bars that led to it
        (during a bar: when the bar ends). A replay re-lives it and persists nothing."""
        if transition is None or self._replay is not None or self.rails is None:
            return
        self._moves.append(transition)
        if not self._bar:
            self._persist()

    def end_bar(self, open_orders: int, fills: list[Fill]) -> None:
        """The bar's rows (bar, operator changes, commands, fills) join what the next commit
        writes; a commit when the last one is ``COMMIT_SECONDS`` old, or the state moved."""
        self._end_bar(fills)
        now = time.monotonic()
        if self._moves or self._flatten_done or now - self._last_commit >= COMMIT_SECONDS:
            if self.rails is not None:
                self.rails.save(open_orders)
            self._persist(now)

    def _end_bar(self, fills: list[Fill]) -> None:
        rows = self._rows
        for table, row in self._bar:
            rows[table].append(row)
        self._bar = []
        if self._made:
            rows["commands"].append((self.n, 0, "commands", "", pack(self._made), _NONE))
            self._made = []
        self.fills(fills)

    def _persist(self, now: float | None = None) -> None:
        """Commit the gathered rows, then what depends on them: the state moves of the bars
        they hold, the operator's flatten carried out."""
        self.commit(now)
        moves, self._moves = self._moves, []
        for transition in moves:
            self.rails.moved(transition)
        if self._flatten_done:
            self._flatten_done = False
            self.rails.flatten_done()

    def commit(self, now: float | None = None) -> None:
        journal = self.journal
        for table, rows in self._rows.items():
            if rows:
                journal.append_many(table, rows)
                rows.clear()
        journal.commit()
        self._last_commit = now if now is not None else time.monotonic()
        self._ask = True  # the next bar asks whether an operator wrote (whatever the signal says)

    def fills(self, fills: list[Fill], n: int | None = None) -> None:
        """Simulated fills of bar ``n`` (the strategy's position is their sum, as at a venue)."""
        rows, n = self._rows["fills"], self.n if n is None else n
        for fill in fills:
            self._fills += 1
            signed = fill.quantity if fill.side is OrderSide.BUY else -fill.quantity
            rows.append((f"shadow-{n}-{self._fills}", n, fill.order_id, fill.asset, signed, fill.price,
                         fill.commission, self._text(fill.timestamp)))  # fmt: skip

    # ------------------------------------------------------------------ commands
    def wrap(self, broker: Broker) -> None:
        """Every submit, change and cancel the strategy (or the broker itself, for a bracket's
        legs or a position rule's exit) makes goes through :meth:`_command`."""
        submit, update, cancel = broker.submit_order, broker.update_order, broker.cancel_order
        command = self._command

        def submit_order(asset: str, quantity: float, side: Any = None, order_type: Any = OrderType.MARKET,
                         limit_price: float | None = None, stop_price: float | None = None,
                         trail_amount: float | None = None, _options: Any = None) -> Order | None:  # fmt: skip
            order = submit(asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
            command("submit", order.order_id if order is not None else "",
                    [asset, quantity, side.value if side is not None else None, order_type.value, limit_price,
                     stop_price, trail_amount],
                    [order.status.value, order.rejection_reason] if order is not None else None)  # fmt: skip
            return order

        def update_order(order_id: str, **changes: Any) -> bool:
            done = update(order_id, **changes)
            command("update", order_id, changes, done)
            return done

        def cancel_order(order_id: str) -> bool:
            done = cancel(order_id)
            command("cancel", order_id, [], done)
            return done

        broker.submit_order = submit_order  # type: ignore[method-assign]
        broker.update_order = update_order  # type: ignore[method-assign]
        broker.cancel_order = cancel_order  # type: ignore[method-assign]

    def _command(self, kind: str, order_id: str, args: Any, result: Any) -> None:
        made = self._made
        made.append([kind, order_id, args, result])
        if self._replay is not None:  # replaying: compared with the journal's
            self._replay.command(self.n, made)

    # ------------------------------------------------------------------ warm restart
    def begin_replay(self) -> bool:
        """A warm restart begins when the journal holds a bar or a command (False: none)."""
        replay = ShadowReplay.begin(self.journal)
        if replay is None:
            return False
        self._replay, self._fills = replay, replay.journaled_fills
        return True

    def replay_bars(self, feed: Any) -> Iterator[tuple[int, BarClosed]]:
        """The journaled bars (:meth:`ShadowReplay.bars <ml4t_live.shadow_restart.ShadowReplay.bars>`)."""
        return self._replay.bars(feed)

    def end_replay(self, fills: list[Fill]) -> None:
        """After the replay: divergences reported (the run stops unless told to continue); the
        fills the journal lacks (made past its last bar's commands) journaled; the first live bar
        reads the trading state the operator set meanwhile."""
        replay, self._replay = self._replay, None
        replay.end_bar(self.n, self._made, self._rows["commands"])
        self._made = []
        if len(fills) > self._fills:  # the same simulation: the first ones are the journaled
            self.fills(fills[self._fills :], replay.last_bar)
        self._restart_failed = bool(replay.divergences)  # kept when end() raises: close() writes nothing
        replay.end(self.on_divergence)
        self._restart_failed = False
        self.commit()
        self._version, self._ask = -1, True  # the first live bar reads what the operator set meanwhile
        _log.info("warm restart done: {} bars replayed", replay.last_bar)

    # ------------------------------------------------------------------ end
    def closing(self, fills: list[Fill]) -> None:
        """The run ends (in order or not): the bar in progress is complete as it is; ``on_end``'s
        commands get a number of their own past every bar (a restart's replay does not call
        ``on_end``, so it does not expect them). Nothing is written while replaying: a restart
        that failed leaves the journal as it found it."""
        if self._closing:
            return
        self._closing = True
        if self._replay is not None:
            self._restart_failed = True
            return
        self._end_bar(fills)
        self.n = self.journal.next_bar()

    def close(self, finished: bool, open_orders: int = 0, fills: list[Fill] = ()) -> None:
        """``finished``: a replay's run ended (the next run starts afresh), unless its warm
        restart failed (the journal stays, for a run with ``on_divergence='continue'``)."""
        if self.journal.closed:
            return
        if self._replay is None and not self._restart_failed:
            self.closing(list(fills))
            self._end_bar([])  # on_end's commands
            self._persist()
            if finished:
                self.journal.set_meta("finished", datetime.now(UTC).isoformat())
            if self.rails is not None:
                self.rails.save(open_orders)
        if self._signal is not None:
            self._signal.close()
        self.journal.close()
