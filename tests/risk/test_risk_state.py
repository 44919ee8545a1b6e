"""TradingState: the loss limits, strategy errors, the operator, day boundaries, persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ml4t_live.risk import (
    ACTIVE,
    HALTED,
    REDUCING,
    RiskConfig,
    TradingState,
    Transition,
)


def _posix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


T = _posix("2026-12-04T15:00:00")


def test_max_daily_loss_under_at_over_then_lifts_on_the_next_day():
    s = TradingState(RiskConfig(max_daily_loss=2_000))
    assert s.observe_equity(100_000.0, T, day="2026-12-04") is None
    assert s.observe_equity(98_001.0, T, day="2026-12-04") is None  # just under
    assert s.observe_equity(98_000.0, T, day="2026-12-04") is None  # at: passes
    t = s.observe_equity(97_999.0, T, day="2026-12-04")  # over
    assert t == Transition(ACTIVE, REDUCING, "max_daily_loss: equity 97,999.00 is 2,001.00 below the day's "
                           "start 100,000.00 > 2,000.00", "max_daily_loss")  # fmt: skip
    assert s.state == REDUCING and s.observe_equity(90_000.0, T, day="2026-12-04") is None  # no repeat
    t = s.observe_equity(90_000.0, T, day="2026-12-07")
    assert (t.old, t.new, t.cause) == (REDUCING, ACTIVE, "new_day")
    assert "new trading day 2026-12-07" in t.why
    assert s.daily_loss() == 0.0
    assert s.observe_equity(88_001.0, T, day="2026-12-07") is None  # a new day's budget
    assert s.observe_equity(87_999.0, T, day="2026-12-07").new == REDUCING


def test_without_a_day_label_the_day_is_the_utc_date_of_now():
    s = TradingState(RiskConfig(max_daily_loss=100))
    s.observe_equity(1_000.0, _posix("2026-12-04T23:59:59"))
    assert s.observe_equity(899.0, _posix("2026-12-04T23:59:59.5")).new == REDUCING
    assert s.observe_equity(899.0, _posix("2026-12-05T00:00:00")).new == ACTIVE
    assert s.day == "2026-12-05"


def test_max_drawdown_from_the_high_water_and_it_does_not_lift_on_a_new_day():
    s = TradingState(RiskConfig(max_drawdown=0.1))
    s.observe_equity(100_000.0, T, day=1)
    s.observe_equity(110_000.0, T, day=1)  # the high water
    assert s.observe_equity(99_001.0, T, day=1) is None  # 9.999%
    assert s.observe_equity(99_000.0, T, day=1) is None  # 10%: at, passes
    t = s.observe_equity(98_999.0, T, day=1)
    assert (t.new, t.cause) == (REDUCING, "max_drawdown")
    assert t.why == "max_drawdown: equity 98,999.00 is 10.00% below the high water 110,000.00 > 10.00%"
    assert s.observe_equity(120_000.0, T, day=2) is None and s.state == REDUCING


def test_a_loss_limit_never_loosens_halted():
    s = TradingState(RiskConfig(max_daily_loss=10), state=HALTED, reason="halted by the operator", cause="operator")
    s.observe_equity(100.0, T, day=1)
    assert s.observe_equity(50.0, T, day=1) is None
    assert (s.state, s.cause) == (HALTED, "operator")
    assert s.observe_equity(50.0, T, day=2) is None and s.state == HALTED  # not a daily-loss state: stays


def test_consecutive_strategy_errors_halt():
    s = TradingState(RiskConfig(max_strategy_errors=3))
    assert s.strategy_error() is None and s.strategy_error() is None  # 2: under
    s.strategy_ok()  # a clean on_data starts the count over
    assert s.strategy_error() is None and s.strategy_error() is None
    t = s.strategy_error()  # 3 in a row: at the limit, which is a count of errors that halts
    assert t == Transition(ACTIVE, HALTED, "max_strategy_errors: on_data raised 3 times in a row (the limit is 3)",
                           "max_strategy_errors")  # fmt: skip
    assert s.strategy_error() is None  # already halted
    s.strategy_ok()
    assert s.state == HALTED  # a clean bar does not resume: the operator does


def test_strategy_errors_without_a_limit_never_halt():
    s = TradingState(RiskConfig(max_strategy_errors=None))
    assert all(s.strategy_error() is None for _ in range(100))


def test_strategy_errors_halt_even_from_reducing():
    s = TradingState(RiskConfig(max_strategy_errors=1), state=REDUCING, cause="max_drawdown")
    assert s.strategy_error().new == HALTED


def test_the_operator_halts_reduces_and_resumes_and_a_resume_rebases_the_loss_limits():
    s = TradingState(RiskConfig(max_daily_loss=1_000, max_drawdown=0.05))
    s.observe_equity(100_000.0, T, day=1)
    assert s.observe_equity(94_000.0, T, day=1).new == REDUCING
    t = s.operator(ACTIVE, "checked the positions")
    assert t == Transition(REDUCING, ACTIVE, "checked the positions", "operator")
    assert s.observe_equity(94_000.0, T, day=1) is None  # measured from the resume now
    assert s.observe_equity(93_001.0, T, day=1) is None
    assert s.observe_equity(92_999.0, T, day=1).cause == "max_daily_loss"
    assert s.operator(HALTED) == Transition(REDUCING, HALTED, "HALTED by the operator", "operator")
    assert s.operator(HALTED) is None
    assert s.operator(REDUCING).new == REDUCING  # the operator may loosen HALTED to REDUCING
    with pytest.raises(ValueError, match="trading state must be one of"):
        s.operator("PAUSED")


def test_a_resume_clears_the_error_count():
    s = TradingState(RiskConfig(max_strategy_errors=2))
    s.strategy_error()
    assert s.strategy_error().new == HALTED
    s.operator(ACTIVE)
    assert s.strategy_error() is None  # one error after the resume: under


def test_snapshot_is_json_and_restore_continues_the_same_day_and_high_water():
    config = RiskConfig(max_daily_loss=1_000, max_drawdown=0.5)
    s = TradingState(config)
    s.observe_equity(10_000.0, T, day="2026-12-04")
    s.observe_equity(9_500.0, T, day="2026-12-04")
    s.strategy_error()
    saved = json.loads(json.dumps(s.snapshot()))
    r = TradingState.restore(config, saved)
    assert r.snapshot() == s.snapshot()
    assert r.observe_equity(9_001.0, T, day="2026-12-04") is None  # the day did not start over
    assert r.observe_equity(8_999.0, T, day="2026-12-04").new == REDUCING
    restored = TradingState.restore(config, json.loads(json.dumps(r.snapshot())))
    assert (restored.state, restored.cause) == (REDUCING, "max_daily_loss")


def test_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="trading state must be one of ACTIVE, REDUCING, HALTED"):
        TradingState(RiskConfig(), state="active")


def test_usage_reports_the_triggers_and_their_current_values():
    s = TradingState(RiskConfig(max_daily_loss=2_000, max_drawdown=0.1))
    rows = {name: (limit, used) for name, limit, used in s.usage()}
    assert rows["max_daily_loss"] == ("2,000.00", "none")  # nothing observed yet
    s.observe_equity(100_000.0, T, day=1)
    s.observe_equity(99_000.0, T, day=1)
    s.strategy_error()
    rows = {name: (limit, used) for name, limit, used in s.usage()}
    assert rows == {
        "trading_state": ("ACTIVE", "-"),
        "max_daily_loss": ("2,000.00", "1,000.00"),
        "max_drawdown": ("10.00%", "1.00%"),
        "max_strategy_errors": ("5", "1"),
    }
