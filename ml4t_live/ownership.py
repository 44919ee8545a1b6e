"""What a venue strategy owns: its journal, its positions, and what it must not touch.

:class:`Ownership` is held by :class:`~ml4t_live.venue_broker.VenueBroker`. At connect it opens
(and locks) the strategy's journal for the venue account, starts a new journal's identity
(generation, starting cash) or finds the old one for a warm restart; it compares the venue's
positions with the journal's (at connect, after every reconnect, every ``reconcile_every``
seconds and at the end) and keeps the trading state:

* ``external = "warn"`` (default): unexplained venue positions are reported, never traded;
  ``"halt"``: they also stop new orders (HALTED, kept in the journal until ``ml4t-live resume``).
* ``adopt_positions = True`` (explicit opt-in): a *new* journal adopts the account's positions
  as the strategy's own (journaled as fills at the venue's average cost).
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from .errors import ConfigError
from .journal import Journal, journal_path
from .journal.link import JournalLink
from .journal.reconcile import Difference, position_differences
from .protocols import AccountSnapshot

_log = logger.bind(component="ownership")

EXTERNAL_POLICIES = ("warn", "halt")
ACTIVE, HALTED = "ACTIVE", "HALTED"
#: seconds until an unconfirmed difference is looked at again
RECHECK = 5.0


class Ownership:
    def __init__(self, *, state_dir: Any = None, adopt_positions: bool = False,
                 external: str = "warn", reconcile_every: float = 300.0) -> None:  # fmt: skip
        if external not in EXTERNAL_POLICIES:
            raise ConfigError(f"external must be one of {', '.join(EXTERNAL_POLICIES)} (got {external!r})")
        self.state_dir = state_dir
        self.adopt_positions = adopt_positions
        self.external_policy = external
        self.reconcile_every = reconcile_every
        self.journal: Journal | None = None
        self.link: JournalLink | None = None
        self.external: dict[str, float] = {}
        self.differences: list[Difference] = []
        self._last_seen: list[Difference] = []
        self._next_check = 0.0

    # ------------------------------------------------------------------ open
    def open(self, venue: str, snapshot: AccountSnapshot, strategy_id: str) -> tuple[str, float]:
        """Open the journal; (id generation, starting cash) of the strategy's book."""
        path = journal_path(self.state_dir, venue, snapshot.account_id, strategy_id)
        self.journal = journal = Journal.open(path)
        self.link = JournalLink(journal)
        if journal.is_new:
            cash = snapshot.cash
            if self.adopt_positions:
                cash += sum(p.quantity * p.avg_cost for p in snapshot.positions.values())
            journal.set_meta("venue", venue)
            journal.set_meta("account", snapshot.account_id)
            journal.set_meta("strategy_id", strategy_id)
            journal.set_meta("generation", secrets.token_hex(2))
            journal.set_meta("starting_cash", repr(cash))
            journal.set_meta("trading_state", ACTIVE)
            if self.adopt_positions:
                self._adopt(snapshot)
            journal.set_meta("created_at", datetime.now(UTC).isoformat())
            _log.info("new journal {} (starting cash {:,.2f})", path, cash)
        else:
            _log.info("journal {}: {} bars to replay (warm restart)", path, journal.bars)
        return str(journal.meta("generation")), float(journal.meta("starting_cash") or 0.0)

    def adopted_positions(self) -> list[tuple[str, float, float]]:
        """(asset, signed quantity, average cost) the journal adopted when it was created."""
        text = self.journal.meta("adopted_positions") if self.journal else None
        return [tuple(row) for row in json.loads(text)] if text else []

    def _adopt(self, snapshot: AccountSnapshot) -> None:
        rows = [(a, p.quantity, p.avg_cost) for a, p in sorted(snapshot.positions.items())]
        journal = self.journal
        for asset, quantity, price in rows:
            journal.append_fill(0, f"adopted-{asset}", None, asset, quantity, price, 0.0, "adopted")
        journal.set_meta("adopted_positions", json.dumps(rows))
        if rows:
            _log.warning("adopted the account's positions as the strategy's own (adopt_positions): {}",
                         {a: q for a, q, _ in rows})  # fmt: skip

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()

    # ------------------------------------------------------------------ state
    @property
    def trading_state(self) -> str:
        return (self.journal.meta("trading_state") if self.journal else None) or ACTIVE

    def set_state(self, state: str, reason: str) -> None:
        if self.journal is not None and self.trading_state != state:
            self.journal.set_meta("trading_state", state)
            self.journal.set_meta("trading_state_reason", reason)
            _log.error("trading state {}: {}", state, reason) if state != ACTIVE else _log.info(
                "trading state ACTIVE: {}", reason
            )

    def refresh(self) -> tuple[str, str]:
        """Re-read the trading state (``ml4t-live halt`` / ``resume`` write it from another
        process); (before, now)."""
        before = self.trading_state
        if self.journal is not None:
            self.journal.reload_meta("trading_state", "trading_state_reason")
        now = self.trading_state
        if now != before:
            why = self.journal.meta("trading_state_reason", "") if self.journal else ""
            _log.warning("trading state {} -> {} ({})", before, now, why)
        return before, now

    # ------------------------------------------------------------------ reconcile
    def due(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) >= self._next_check

    def check_soon(self) -> None:
        """Reconcile at the next chance (after a reconnect)."""
        self._next_check = 0.0

    def reconcile(self, snapshot: AccountSnapshot, ours: dict[str, float], when: str) -> list[Difference]:
        """Compare the venue's positions with ours; act on differences seen twice in a row.

        One look can catch an execution the venue already counts but whose event is still on
        its way; a difference is *confirmed* when the next look (``RECHECK`` seconds later, or
        the next bar) still shows it. Confirmed differences are reported, and a ``missing``
        position (or an external one under ``external = "halt"``) halts new orders."""
        now = time.monotonic()
        venue = {a: p.quantity for a, p in snapshot.positions.items()}
        seen = position_differences(ours, venue)
        before = {d.key for d in self._last_seen}
        confirmed = [d for d in seen if d.key in before]
        final = when == "end of run"  # no second look will come: say it louder
        for d in seen:
            if d.key not in before and d.key not in {c.key for c in self.differences}:
                _log.log("WARNING" if final else "INFO",
                         "{} reconciliation: {} looks {} (journal {}, venue {}); {}", when, d.subject,
                         d.kind, d.journal, d.venue,
                         "check with `ml4t-live reconcile`" if final else f"looking again in {RECHECK:g}s")  # fmt: skip
        self._last_seen = seen
        self._next_check = now + (RECHECK if len(confirmed) < len(seen) else self.reconcile_every)
        if [d.key for d in confirmed] != [d.key for d in self.differences]:
            for d in confirmed:
                _log.warning("{} reconciliation: {} {}: journal {}, venue {} ({})",
                             when, d.kind, d.subject, d.journal, d.venue, d.note)  # fmt: skip
            if not confirmed and self.differences:
                _log.info("{} reconciliation: venue positions match the journal again", when)
        self.differences = confirmed
        self.external = {d.subject: float(d.venue) - float(d.journal) for d in confirmed if d.kind == "external"}
        missing = [d.subject for d in confirmed if d.kind == "missing"]
        if missing:
            self.set_state(HALTED, f"the venue holds less than the strategy's own fills in {', '.join(missing)}")
        elif self.external and self.external_policy == "halt":
            self.set_state(HALTED, f"external positions in {', '.join(sorted(self.external))} (external = halt)")
        return confirmed
