"""The gate's shortcuts never change an answer: the no-trip band of the loss limits against the
full state machine on a random equity path; the market clock of a replay."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from ml4t_live.risk import RiskConfig, RiskGate, TradingState


def test_the_no_trip_band_gives_the_transitions_of_the_full_check():
    config = RiskConfig(max_daily_loss=800.0, max_drawdown=0.02)
    rng = random.Random(7)
    gate, plain = RiskGate(config), TradingState(config)
    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    equity = 100_000.0
    seen = []
    for i in range(5_000):
        ts = t0 + timedelta(minutes=i * 7)  # several days
        equity += rng.gauss(0, 60)
        gate.open_bar(ts)
        moved = gate.observe_equity(equity)
        expected = plain.observe_equity(equity, ts.timestamp(), day=ts.date().isoformat())
        assert (moved and (moved.old, moved.new, moved.cause)) == (expected and (expected.old, expected.new, expected.cause))
        seen.append(gate.state.state)
        if i % 700 == 699:  # the operator resumes now and then
            gate.operator("ACTIVE", "resume")
            plain.operator("ACTIVE", "resume")
    assert {"ACTIVE", "REDUCING"} <= set(seen)  # the path did trip and lift


def test_the_order_rate_reads_the_market_clock_in_a_replay():
    gate = RiskGate(RiskConfig(max_orders_per_minute=6))  # burst 1 per second
    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    codes = []
    for i in range(8):  # one order per recorded minute, replayed as fast as possible
        gate.open_bar(t0 + timedelta(minutes=i))
        refusal = gate.check("AAA", __import__("ml4t.backtest", fromlist=["OrderSide"]).OrderSide.BUY, 1, None,
                             None, None, open_orders=0)  # fmt: skip
        codes.append(refusal and refusal.code)
    assert codes == [None] * 8  # a minute apart on the market clock: never a burst


def test_a_bad_risk_table_and_contradictory_halt_options_are_configuration_errors(tmp_path):
    session = tmp_path / "s.toml"
    session.write_text("[risk]\nmax_order_notionl = 5\n")
    run = subprocess.run([sys.executable, "-m", "ml4t_live", "run", "ml4t_live.examples:DemoMomentum", "--config",
                          str(session), "--no-session"], capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert run.returncode == 2 and "unknown key 'max_order_notionl' in [risk]" in run.stderr, run.stderr
    halt = subprocess.run([sys.executable, "-m", "ml4t_live", "halt", "--strategy-id", "x", "--reducing",
                           "--flatten"], capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert halt.returncode == 2 and "--reducing and --flatten do not go together" in halt.stderr
