"""The rails on the IB venue path, through the real ib_async client against the simulated IB:
what a refusal must never leave behind at the venue."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from ib_helpers import START, config_for
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed
from tests.support.risk_probe import OneBracket, probe_bars


def run_on_ib(sim, strategy: Strategy, strategy_id: str, minutes: int, risk: dict | None = None, **engine) -> None:
    """``strategy`` on AAA minute bars from the simulated IB for ``minutes``, through IBBroker."""
    broker = IBBroker(config_for(sim), strategy_id=strategy_id, risk=risk)
    feed = IBFeed(config_for(sim), ["AAA"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, **engine).run()


def _run_bracket(sim, per_minute: int) -> tuple[OneBracket, set[str]]:
    strategy = OneBracket()
    run_on_ib(sim, strategy, "bracket", 3, {"max_orders_per_minute": per_minute})
    return strategy, {r.order_ref for r in sim.orders_received}


def test_a_bracket_the_order_rate_cannot_take_whole_is_refused_whole(sim_factory):
    # 12 a minute -> a burst cap of ceil(12 / 6) = 2 in any second: the three orders of one
    # bracket cannot all leave (its stop-loss was refused after its entry had left: unprotected)
    strategy, received = _run_bracket(sim_factory(probe_bars(START, ccc_ages=False)), 12)
    entry, tp, sl = strategy.bracket
    assert [o.status for o in (entry, tp, sl)] == [OrderStatus.REJECTED] * 3
    assert entry.rejection_code == "max_orders_per_minute"
    assert "+ the 3 of a bracket > the burst cap of ceil(12 / 6) = 2 per second" in entry.rejection_reason
    assert {tp.rejection_code, sl.rejection_code} == {"bracket_entry_refused"}
    assert not {entry.order_id, tp.order_id, sl.order_id} & received


@pytest.mark.parametrize("per_minute", [13, 18])  # burst caps of 3: the bracket just fits
def test_a_bracket_the_order_rate_can_take_leaves_whole(sim_factory, ib_log_guard, per_minute):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # the end of the run cancels the exit left working
    strategy, received = _run_bracket(sim_factory(probe_bars(START, ccc_ages=False)), per_minute)
    entry, tp, sl = strategy.bracket
    assert entry.status is OrderStatus.FILLED
    assert {entry.order_id, tp.order_id, sl.order_id} <= received


def operator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


class HaltedWithAWorkingLimit(Strategy):
    """A working limit on bar 1; on bar 2 IB will refuse the next cancel (10148, the order
    unchanged) and the operator halts the strategy from another process. Records the limit's
    status each bar."""

    def __init__(self, sim) -> None:
        self.sim, self.n, self.limit, self.seen = sim, 0, None, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=96.0)
        if self.n == 2:
            self.sim.inject("cancel_reply", reply="10148")
            self.halt = operator("halt", "--strategy-id", "halter", "--reason", "desk says stop")
        self.seen.append(self.limit.status)


def test_a_halt_whose_cancel_ib_refused_tries_again_until_the_order_is_gone(sim_factory, ib_log_guard):
    for expected in (r"Error 10148, reqId \d+", r"Error 202, reqId \d+", "trading state ACTIVE -> HALTED"):
        ib_log_guard.expect(expected)
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = HaltedWithAWorkingLimit(sim)
    run_on_ib(sim, strategy, "halter", 6, open_orders_at_end="keep")
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    # bar 3: HALTED's cancel is refused by IB (the order still works there); bar 4 tries again
    assert strategy.seen[:3] == [OrderStatus.PENDING] * 3
    assert strategy.seen[3:] == [OrderStatus.CANCELLED] * 3
    assert {o.order_ref: o.status for o in sim.orders}[strategy.limit.order_id] == "Cancelled"


class BuyThenHaltAndFlatten(Strategy):
    """Bar 1: buy 12 AAA. Bar 3: the operator halts and flattens from another process; the
    closing order's fill is reported late, so the order works (for the runtime) through several
    HALTED bars."""

    def __init__(self, sim) -> None:
        self.sim, self.n, self.held = sim, 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 12)
        if self.n == 3:
            self.sim.inject("delay_fills", seconds=3.0, count=1)
            self.halt = operator("halt", "--flatten", "--strategy-id", "flat", "--reason", "desk: flatten")
        position = broker.get_position("AAA")
        self.held.append(position.quantity if position is not None else 0.0)


def test_the_operators_flatten_is_not_cancelled_by_the_halt_it_came_with(sim_factory, ib_log_guard):
    ib_log_guard.expect("trading state ACTIVE -> HALTED")
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = BuyThenHaltAndFlatten(sim)
    # a short fill barrier: the bars go on while the closing order's fill is still unreported
    run_on_ib(sim, strategy, "flat", 7, open_orders_at_end="keep", settle_timeout=0.5)
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    assert strategy.held[1:3] == [12.0] * 2
    # HALTED had nothing of the strategy's to cancel; its retries must leave the flatten's order alone
    assert sim.request_count("CancelOrder") == 0
    assert [o.status for o in sim.orders if o.action == "SELL"] == ["Filled"]


class ShrinkAPartlyFilledOrder(Strategy):
    """Bar 1: a limit buy of 100 AAA, its fill split in two (50 now, 50 at the next bar).
    Bar 2: partly filled, the strategy shrinks it to 60: IB refuses (its rest is executing);
    with ``then_buy``, it buys that many more in the same bar."""

    def __init__(self, sim, then_buy: float = 0.0) -> None:
        self.sim, self.then_buy, self.n, self.entry, self.more, self.seen = sim, then_buy, 0, None, None, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.sim.inject("partial_fill", parts=2)
            self.entry = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=100.0)
        if self.n == 2:
            self.changed = broker.update_order(self.entry.order_id, quantity=60)
            if self.then_buy:
                self.more = broker.submit_order("AAA", self.then_buy)
        self.seen.append((self.entry.quantity, self.entry.filled_quantity))


def test_a_change_ib_refused_puts_the_order_back_as_ib_works_it(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 201, reqId \d+: Order rejected - reason:order \d+ cannot be replaced")
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = ShrinkAPartlyFilledOrder(sim)
    run_on_ib(sim, strategy, "shrink", 4)
    assert strategy.changed is True  # sent (IB answers a modify later)
    assert strategy.seen[1] == (60, 50)  # taken at once, as the backtest does
    # IB refused it (201): from the next bar the order is IB's again, 100 (what the rails count)
    assert strategy.seen[2:] == [(100, 100), (100, 100)]
    assert strategy.entry.status is OrderStatus.FILLED


class GrowAfterTheHalt(Strategy):
    """A working limit on bar 1; on bar 2 the operator halts the strategy from another process,
    then the strategy grows its working limit from 10 to 50."""

    def __init__(self) -> None:
        self.n, self.limit, self.grown = 0, None, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=96.0)
        if self.n == 2:
            self.halt = operator("halt", "--strategy-id", "grower", "--reason", "desk says stop")
            self.grown = broker.update_order(self.limit.order_id, quantity=50)
            self.quantity_then = self.limit.quantity


def test_a_change_right_after_an_operators_halt_is_refused(sim_factory, ib_log_guard):
    for expected in (r"Error 202, reqId \d+", "trading state ACTIVE -> HALTED"):
        ib_log_guard.expect(expected)
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = GrowAfterTheHalt()
    run_on_ib(sim, strategy, "grower", 4)
    assert strategy.halt.returncode == 0, strategy.halt.stderr
    assert strategy.grown is False and strategy.quantity_then == 10  # refused: HALTED
    assert [o.total_quantity for o in sim.orders if o.order_ref == strategy.limit.order_id] == [10]


def test_a_shrink_ib_may_still_refuse_counts_the_order_as_it_was_until_ib_answered(sim_factory, ib_log_guard):
    ib_log_guard.expect(r"Error 201, reqId \d+: Order rejected - reason:order \d+ cannot be replaced")
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = ShrinkAPartlyFilledOrder(sim, then_buy=80)
    run_on_ib(sim, strategy, "shrink", 4, {"max_position_notional": 15_000})
    assert strategy.changed is True  # sent; IB's refusal comes after update_order returned
    # the entry still counts 100: 100 + 80 at ~100 is over 15,000, so the buy never reaches IB
    assert strategy.more.status is OrderStatus.REJECTED
    assert strategy.more.rejection_code == "max_position_notional", strategy.more.rejection_reason
    assert strategy.more.order_id not in {o.order_ref for o in sim.orders_received}
    assert [o.total_quantity for o in sim.orders] == [100.0]


class ResumeThenHaltAgain(Strategy):
    """Bar 1: a resting limit buy. Bar 2: the operator halts (it is cancelled at bar 3). Bar 3:
    the operator resumes, the strategy places a second limit (it leaves: ACTIVE), and the operator
    halts again, all within the bar."""

    def __init__(self) -> None:
        self.n, self.first, self.second, self.seen = 0, None, None, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.first = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=96.0)
        if self.n == 2:
            self.halts = [operator("halt", "--strategy-id", "rh", "--reason", "desk: stop")]
        if self.n == 3:
            self.resumed = operator("resume", "--strategy-id", "rh", "--reason", "desk: go on")
            self.second = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=96.0)
            self.halts.append(operator("halt", "--strategy-id", "rh", "--reason", "desk: stop again"))
        self.seen.append(self.second.status if self.second is not None else None)


def test_a_halt_right_after_a_resume_cancels_what_the_resume_let_out(sim_factory, ib_log_guard):
    for expected in (r"Error 202, reqId \d+", "trading state"):
        ib_log_guard.expect(expected)
    sim = sim_factory(probe_bars(START, ccc_ages=False))
    strategy = ResumeThenHaltAgain()
    run_on_ib(sim, strategy, "rh", 6, open_orders_at_end="keep")
    assert strategy.resumed.returncode == 0 and all(h.returncode == 0 for h in strategy.halts)
    assert strategy.seen[2] is OrderStatus.PENDING  # it left while ACTIVE
    assert strategy.seen[3:] and all(s is OrderStatus.CANCELLED for s in strategy.seen[3:]), strategy.seen
    assert {o.order_ref: o.status for o in sim.orders}[strategy.second.order_id] == "Cancelled"
