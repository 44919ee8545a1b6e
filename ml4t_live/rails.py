"""A venue strategy's rails: its :class:`~ml4t_live.risk.RiskGate`, persisted in its journal.

The journal's meta holds the trading state the operator sees and sets (``trading_state``,
``trading_state_reason``, written by ``ml4t-live halt`` / ``resume`` from any process), plus:

* ``risk_state``: the state machine's own values (day, the day's starting equity, the high
  water, consecutive errors), so a restart resumes the same loss limits;
* ``risk_usage``: every limit with its configured value and current use, JSON, for
  ``ml4t-live status`` (rewritten after each bar);
* ``flatten_requested``: ``ml4t-live halt --flatten`` asks the running strategy to close its
  positions (the runtime clears it once the closing orders are out).

The order-rate limit's window is not kept here: each counted command carries its send time in
the journal (``commands.sent_at``), and ``open`` starts the limit from the last minute of them.

An automatic transition (a loss limit, repeated strategy errors) is written to the journal at
once; an operator's change is read before each bar and applied to the gate. A halted strategy
restarts halted and says so.
"""

from __future__ import annotations

import json

from loguru import logger

from .journal import Journal, resume_command
from .risk import ACTIVE, RiskConfig, RiskGate, TradingState, Transition
from .risk.rate import MINUTE

_log = logger.bind(component="risk")


def resume_hint(journal: Journal) -> str:
    """What a HALTED refusal tells the strategy to do about it: the resume of this journal."""
    return f"`{resume_command(journal.path, journal.meta('strategy_id', 'ID'))}` re-enables it"


class JournaledRails:
    def __init__(self, gate: RiskGate, journal: Journal) -> None:
        self.gate = gate
        self.journal = journal

    @classmethod
    def open(cls, config: RiskConfig, journal: Journal) -> JournaledRails:
        saved = journal.meta("risk_state")
        state = TradingState.restore(config, json.loads(saved)) if saved else TradingState(config)
        sid = journal.meta("strategy_id", "ID")
        rails = cls(RiskGate(config, state, resume_hint=resume_hint(journal), operated=True), journal)
        rails.gate.limits.rate.restore(journal.recent_sends(MINUTE))  # a restart: the last minute's sends count
        rails.sync()  # the operator may have changed it while the strategy was down
        rails.report_limits(None)  # status shows the limits from the start, not from the first bar
        if state.state != ACTIVE:
            _log.warning("strategy {} starts {}: {}", sid, state.state, state.reason or "no reason given")
        return rails

    def sync(self) -> Transition | None:
        """Apply the journal's trading state (the operator's) to the gate when they differ: in
        state, or in the reason of a HALTED / REDUCING (the operator's halt over a limit's)."""
        self.journal.reload_meta("trading_state", "trading_state_reason", "flatten_requested", "cancel_all_requested")
        wanted = self.journal.meta("trading_state") or ACTIVE
        reason = self.journal.meta("trading_state_reason", "") or ""
        state = self.gate.state
        if wanted == state.state and (wanted == ACTIVE or reason == state.reason):
            return None
        return self.gate.operator(wanted, reason)

    def moved(self, transition: Transition | None) -> None:
        """Persist an automatic transition at once, unless the journal's state changed since it
        was read (an operator's halt from another process, a reconciliation): that one stands,
        and the gate follows it."""
        if transition is None:
            return
        if self.journal.meta("trading_state") is None:
            self.journal.set_meta("trading_state", transition.old)
        if not self.journal.swap_meta("trading_state", transition.old, transition.new):
            _log.warning("trading state: {} was not applied ({}): the journal's state changed meanwhile",
                         transition.new, transition.why)  # fmt: skip
            self.sync()
            return
        self.journal.set_meta("trading_state_reason", transition.why)
        self.save()
        self.journal.commit()

    def save(self, open_orders: int | None = None) -> None:
        self.journal.set_meta("risk_state", json.dumps(self.gate.state.snapshot()))
        if open_orders is not None:
            self.report_limits(open_orders)

    def report_limits(self, open_orders: int | None) -> None:
        """Every limit with its value and current use, for ``ml4t-live status`` (None: before
        the first bar, when the run has the limits but no use of them yet)."""
        self.journal.set_meta("risk_usage", json.dumps(self.gate.usage(open_orders)))

    @property
    def flatten_requested(self) -> str | None:
        return self.journal.meta("flatten_requested")

    def flatten_done(self) -> None:
        self.journal.set_meta("flatten_requested", "")
        self.journal.commit()

    @property
    def cancel_all_requested(self) -> str | None:
        """``ml4t-live cancel-all``: every working order is cancelled, the runtime's own too."""
        return self.journal.meta("cancel_all_requested")

    def cancel_all_done(self) -> None:
        self.journal.set_meta("cancel_all_requested", "")
        self.journal.commit()
