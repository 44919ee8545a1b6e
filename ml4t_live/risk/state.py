"""The trading state ACTIVE / REDUCING / HALTED and what moves it: :class:`TradingState`.

* ACTIVE: every order that passes the pre-trade limits leaves.
* REDUCING: only orders that reduce a position leave (see :mod:`ml4t_live.risk.limits`).
* HALTED: no order leaves (the runtime also cancels the working ones).

Transitions, each returned as a :class:`Transition` (old, new, why, cause) when it happens:

* ``observe_equity(equity, now, day=...)`` (once per bar, after the mark):
  - ``max_daily_loss``: ``day_start_equity - equity > max_daily_loss`` -> REDUCING. The day's
    start is the last equity observed before a new ``day`` label (the previous day's last mark:
    an overnight gap counts, and daily bars, one mark a day, are measured close to close), or
    the day's first equity when none was observed before. The *caller* gives the day
    boundary: pass ``day=`` the exchange's session date (anything hashable); without it the UTC
    date of ``now`` (POSIX seconds) is used. At the next day boundary a daily-loss REDUCING
    lifts by itself (back to ACTIVE, with a transition saying so) - that is what "daily" means.
  - ``max_drawdown``: ``(high_water - equity) / high_water > max_drawdown`` -> REDUCING; the
    high water is the highest equity observed this session. It does not lift by itself: when a
    daily-loss REDUCING lifts at a new day while the drawdown is exceeded, the one transition
    returned is REDUCING -> REDUCING, caused by ``max_drawdown`` (the caller persists its reason).
* ``strategy_error()`` / ``strategy_ok()`` (after each ``on_data``): the ``max_strategy_errors``-th
  consecutive error -> HALTED (it counts events: "5 consecutive errors -> HALTED" halts on the
  fifth); a clean ``on_data`` resets the count (it does not resume).
* ``operator(state, reason)``: the operator's ``halt`` / ``halt --reducing`` / ``resume`` (read
  from the journal). A resume re-bases the loss limits on the last observed equity: the
  operator has looked at the loss, and the limits measure what happens from there (otherwise
  the next bar would trip them again at once).

An automatic transition only ever tightens the state (ACTIVE -> REDUCING -> HALTED): a loss
limit never turns HALTED into REDUCING. "At" a loss limit passes: the loss must *exceed* it.
This object does no I/O: :meth:`snapshot` / :meth:`restore` give the JSON-able values the
caller persists (in the journal's meta) so a restart resumes the same state, day and high water.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from .config import RiskConfig

_log = logger.bind(component="risk")

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
STATES = (ACTIVE, REDUCING, HALTED)
_RANK = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
#: relative tolerance of "at the limit" comparisons
TOLERANCE = 1e-9


def exceeds(value: float, limit: float) -> bool:
    """``value > limit`` beyond floating-point noise (exactly at the limit passes)."""
    return value > limit + TOLERANCE * max(1.0, abs(limit))


@dataclass(frozen=True, slots=True)
class Transition:
    old: str
    new: str
    why: str
    cause: str  # the limit ("max_daily_loss", ...), "operator" or "new_day"


class TradingState:
    def __init__(self, config: RiskConfig, state: str = ACTIVE, reason: str = "", cause: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"trading state must be one of {', '.join(STATES)}, got {state!r}")
        self.config = config
        self.state, self.reason, self.cause = state, reason, cause
        self.day: Any = None
        self.day_start_equity: float | None = None
        self.high_water: float | None = None
        self.last_equity: float | None = None
        self.consecutive_errors = 0

    # ------------------------------------------------------------------ inputs
    def observe_equity(self, equity: float, now: float, *, day: Any = None) -> Transition | None:
        if day is None:
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
        new_day = None
        if day != self.day:  # the day starts from the last mark before it (the first one ever: this)
            self.day, self.day_start_equity = day, equity if self.last_equity is None else self.last_equity
            if self.state == REDUCING and self.cause == "max_daily_loss":
                new_day = self._move(ACTIVE, f"new trading day {day}: the daily loss limit starts over", "new_day")
        self.last_equity = equity
        if self.high_water is None or equity > self.high_water:
            self.high_water = equity
        moved = self._loss_limits(equity)
        if moved is not None and new_day is not None:  # lifted and tightened at once: one move from the state before
            return Transition(new_day.old, moved.new, moved.why, moved.cause)
        return moved or new_day

    def strategy_error(self) -> Transition | None:
        self.consecutive_errors += 1
        cap = self.config.max_strategy_errors
        if cap is not None and self.consecutive_errors >= cap:
            why = (f"max_strategy_errors: on_data raised {self.consecutive_errors} times in a row "
                   f"(the limit is {cap})")  # fmt: skip
            return self._tighten(HALTED, why, "max_strategy_errors")
        return None

    def strategy_ok(self) -> None:
        self.consecutive_errors = 0

    def operator(self, state: str, reason: str = "") -> Transition | None:
        """The operator set ``state`` (halt, halt --reducing, resume); any direction. A halt or
        halt --reducing in the state a limit already set takes it over: it lifts on resume only
        (a daily loss's REDUCING no longer lifts at the next day), and says the operator's reason."""
        if state not in STATES:
            raise ValueError(f"trading state must be one of {', '.join(STATES)}, got {state!r}")
        if state == self.state != ACTIVE:
            if (self.reason, self.cause) != (reason, "operator"):
                self.reason, self.cause = reason or f"{state} by the operator", "operator"
                _log.warning("trading state {} kept, now the operator's: {}", state, self.reason)
            return None
        if state == ACTIVE:
            self.consecutive_errors = 0
            if self.last_equity is not None:
                self.day_start_equity = self.high_water = self.last_equity
        default = "resumed by the operator" if state == ACTIVE else f"{state} by the operator"
        return self._move(state, reason or default, "operator")

    # ------------------------------------------------------------------ reads
    def daily_loss(self) -> float | None:
        if self.day_start_equity is None or self.last_equity is None:
            return None
        return self.day_start_equity - self.last_equity

    def drawdown(self) -> float | None:
        if not self.high_water or self.last_equity is None or self.high_water <= 0:
            return None
        return (self.high_water - self.last_equity) / self.high_water

    def usage(self) -> list[tuple[str, str, str]]:
        """(limit, configured, current) for the state triggers, for ``status``."""
        c = self.config
        loss, dd = self.daily_loss(), self.drawdown()
        return [
            ("trading_state", self.state, self.reason or "-"),
            ("max_daily_loss", _txt(c.max_daily_loss, ",.2f"), _txt(loss, ",.2f")),
            ("max_drawdown", _txt(c.max_drawdown, ".2%"), _txt(dd, ".2%")),
            ("max_strategy_errors", _txt(c.max_strategy_errors, "d"), str(self.consecutive_errors)),
        ]

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "cause": self.cause, "day": self.day,
                "day_start_equity": self.day_start_equity, "high_water": self.high_water,
                "last_equity": self.last_equity, "consecutive_errors": self.consecutive_errors}  # fmt: skip

    @classmethod
    def restore(cls, config: RiskConfig, saved: dict[str, Any]) -> TradingState:
        self = cls(config, saved.get("state", ACTIVE), saved.get("reason", ""), saved.get("cause", ""))
        self.day = saved.get("day")
        self.day_start_equity = saved.get("day_start_equity")
        self.high_water = saved.get("high_water")
        self.last_equity = saved.get("last_equity")
        self.consecutive_errors = int(saved.get("consecutive_errors", 0))
        return self

    # ------------------------------------------------------------------ transitions
    def _loss_limits(self, equity: float) -> Transition | None:
        c = self.config
        loss = self.daily_loss()
        if c.max_daily_loss is not None and loss is not None and exceeds(loss, c.max_daily_loss):
            why = (f"max_daily_loss: equity {equity:,.2f} is {loss:,.2f} below the day's start "
                   f"{self.day_start_equity:,.2f} > {c.max_daily_loss:,.2f}")  # fmt: skip
            return self._tighten(REDUCING, why, "max_daily_loss")
        dd = self.drawdown()
        if c.max_drawdown is not None and dd is not None and exceeds(dd, c.max_drawdown):
            why = (f"max_drawdown: equity {equity:,.2f} is {dd:.2%} below the high water "
                   f"{self.high_water:,.2f} > {c.max_drawdown:.2%}")  # fmt: skip
            return self._tighten(REDUCING, why, "max_drawdown")
        return None

    def _tighten(self, state: str, why: str, cause: str) -> Transition | None:
        if _RANK[state] <= _RANK[self.state]:
            return None
        return self._move(state, why, cause)

    def _move(self, state: str, why: str, cause: str) -> Transition | None:
        if state == self.state:
            return None
        old, self.state, self.reason, self.cause = self.state, state, why, cause
        (_log.info if state == ACTIVE else _log.error)("trading state {} -> {}: {}", old, state, why)
        return Transition(old, state, why, cause)


def _txt(value: float | None, spec: str) -> str:
    return "none" if value is None else format(value, spec)
