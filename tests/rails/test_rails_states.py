"""The trading state moves by itself (daily loss, drawdown, repeated strategy errors) and by the
operator (``ml4t-live halt --reducing`` / ``--flatten`` / ``resume`` from another process); the
strategy keeps running, its orders are refused with the reason, and the state survives a restart."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.journal import journal_path
from ml4t_live.journal.operator_access import read_only
from ml4t_live.shadow import ShadowBroker
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar
from tests.support.market import aaa_minutes

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def operator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ml4t_live", *args], capture_output=True, text=True, timeout=60, check=False)


def meta(sid: str) -> dict:
    journal = read_only(journal_path(None, "fake", "DU0001", sid))
    try:
        return {k: journal.meta(k) for k in ("trading_state", "trading_state_reason", "risk_state", "risk_usage")}
    finally:
        journal.close()


class BuyThenTry(Strategy):
    """Buys 100 on bar 1; from bar ``try_from`` on, tries a buy of 10 and a sell of 10 each bar."""

    def __init__(self, try_from: int = 4) -> None:
        self.n, self.try_from = 0, try_from
        self.buys, self.sells = [], []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n >= self.try_from:
            self.buys.append(broker.submit_order("AAA", 10))
            self.sells.append(broker.submit_order("AAA", 10, OrderSide.SELL))


def test_a_daily_loss_moves_to_reducing_the_run_goes_on_and_the_next_day_starts_over():
    day1 = [bar(T0 + timedelta(minutes=i), {"AAA": p}) for i, p in enumerate([100, 100, 90, 90, 90])]
    day2 = [bar(T0 + timedelta(days=1, minutes=i), {"AAA": 90.0}) for i in range(3)]
    strategy = BuyThenTry()
    broker = VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="loser", risk={"max_daily_loss": 500})
    result = LiveEngine(strategy, broker, ListFeed(day1 + day2), session_dir=False, settle_timeout=0.5).run()
    # bar 3 closes at 90: 100 shares lost 1,000 > 500 -> REDUCING from bar 4 on
    day1_buys, day2_buys = strategy.buys[:2], strategy.buys[2:]
    assert [o.rejection_code for o in day1_buys] == ["reducing", "reducing"]
    assert "trading is REDUCING (max_daily_loss: equity" in day1_buys[0].rejection_reason
    assert all(o.status is OrderStatus.FILLED for o in strategy.sells[:2])  # exits still leave
    # the first bar of day 2 still trades REDUCING (its mark starts the new day), then ACTIVE
    assert day2_buys[0].rejection_code == "reducing" and day2_buys[1].status is OrderStatus.FILLED
    assert result.metrics["trading_state"] == "ACTIVE" and result.metrics["risk_refusals"] == {"reducing": 3}


def test_a_drawdown_in_shadow_moves_to_reducing_and_stays():
    prices = [100.0, 100.0, 100.0, 97.0, 94.0, 94.0, 110.0]
    frame = aaa_minutes(prices)
    strategy = BuyThenTry(try_from=6)
    config = BacktestConfig(initial_cash=10_000.0)
    result = LiveEngine(strategy, ShadowBroker(config, risk={"max_drawdown": 0.05}), ReplayFeed(frame),
                        session_dir=False).run()  # fmt: skip
    # 100 shares from 100 to 94: equity 10,000 -> 9,400 = 6% below the high water > 5%
    assert [o.rejection_code for o in strategy.buys] == ["reducing", "reducing"]
    assert "max_drawdown" in strategy.buys[0].rejection_reason
    assert result.metrics["trading_state"] == "REDUCING"  # a drawdown does not lift by itself


class Flaky(Strategy):
    def __init__(self) -> None:
        self.n = 0
        self.orders = []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if 2 <= self.n <= 4:
            raise RuntimeError(f"bad state on bar {self.n}")
        if self.n >= 5:
            self.orders.append(broker.submit_order("AAA", 1))


def test_repeated_strategy_errors_halt_trading_and_the_state_survives_a_restart():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Flaky()
    bars = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(6)]
    broker = VenueBroker(venue, strategy_id="flaky", risk={"max_strategy_errors": 3})
    result = LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.5,
                        error_policy="log").run()  # fmt: skip
    assert strategy.limit.status is OrderStatus.CANCELLED and venue.cancelled == [strategy.limit.order_id]
    assert [o.rejection_code for o in strategy.orders] == ["halted", "halted"]
    assert result.metrics["trading_state"] == "HALTED" and result.metrics["num_strategy_errors"] == 3
    saved = meta("flaky")
    assert saved["trading_state"] == "HALTED" and "max_strategy_errors" in saved["trading_state_reason"]
    assert json.loads(saved["risk_state"])["state"] == "HALTED"  # the clean bars after reset the count only
    assert {row["limit"] for row in json.loads(saved["risk_usage"])} >= {"max_strategy_errors", "max_daily_loss"}
    again = Flaky()  # the restart replays 6 bars and starts HALTED: bar 7's order is refused too
    more = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(7)]
    LiveEngine(again, VenueBroker(venue, strategy_id="flaky", risk={"max_strategy_errors": 3}), ListFeed(more),
               session_dir=False, settle_timeout=0.5, error_policy="log").run()  # fmt: skip
    assert again.orders[-1].rejection_code == "halted" and "max_strategy_errors" in again.orders[-1].rejection_reason


class Holder(Strategy):
    """Buys 100 on bar 1 and leaves a limit working; asks the operator for ``command`` on bar 3;
    then buys 1 and sells 1 on every bar."""

    def __init__(self, command: tuple[str, ...] = ()) -> None:
        self.command, self.n = command, 0
        self.buys, self.sells, self.answer = [], [], None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
            self.limit = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == 3 and self.command:
            self.answer = operator(*self.command)
        if self.n >= 4:
            self.buys.append(broker.submit_order("AAA", 1))
            self.sells.append(broker.submit_order("AAA", 1, OrderSide.SELL))


def test_halt_reducing_from_another_process_lets_only_exits_leave():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Holder(("halt", "--reducing", "--strategy-id", "holder", "--reason", "desk says reduce"))
    bars = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(5)]
    LiveEngine(strategy, VenueBroker(venue, strategy_id="holder"), ListFeed(bars), session_dir=False,
               settle_timeout=0.5).run()  # fmt: skip
    assert strategy.answer.returncode == 0 and "ACTIVE -> REDUCING" in strategy.answer.stdout, strategy.answer.stderr
    assert [o.rejection_code for o in strategy.buys] == ["reducing", "reducing"]
    assert "desk says reduce" in strategy.buys[0].rejection_reason
    assert all(o.status is OrderStatus.FILLED for o in strategy.sells)
    assert strategy.limit.cancellation_reason == "end of run"  # REDUCING kept it working until the end


def test_halt_flatten_closes_what_the_strategy_owns_and_a_restart_replays_it():
    venue = FakeVenue(fill_on_wait=True)
    strategy = Holder(("halt", "--flatten", "--strategy-id", "holder", "--reason", "fat finger"))
    bars = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(5)]
    result = LiveEngine(strategy, VenueBroker(venue, strategy_id="holder"), ListFeed(bars), session_dir=False,
                        settle_timeout=0.5).run()  # fmt: skip
    assert strategy.answer.returncode == 0, strategy.answer.stderr
    assert "closes every position it owns" in strategy.answer.stdout
    assert venue.cancelled == [strategy.limit.order_id]
    closing = [r for r in venue.placed if r.side is OrderSide.SELL]
    assert [(r.asset, r.quantity, r.order_type) for r in closing] == [("AAA", 100.0, OrderType.MARKET)]
    assert "AAA" not in venue.positions  # flat at the venue
    assert [o.rejection_code for o in strategy.buys + strategy.sells] == ["halted"] * 4
    assert result.metrics["trading_state"] == "HALTED" and meta("holder")["trading_state"] == "HALTED"
    sent = len(venue.placed)

    # a restart replays the journal (the runtime's closing order included: no divergence), starts
    # HALTED, and sends nothing; after resume the next bar trades
    again = Holder()
    more = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(6)]
    broker = VenueBroker(venue, strategy_id="holder")
    LiveEngine(again, broker, ListFeed(more), session_dir=False, settle_timeout=0.5).run()
    assert len(venue.placed) == sent and again.buys[-1].rejection_code == "halted"
    assert broker.book.positions.get("AAA") is None or broker.book.positions["AAA"].quantity == 0
    resumed = operator("resume", "--strategy-id", "holder")
    assert resumed.returncode == 0 and "HALTED -> ACTIVE" in resumed.stdout, resumed.stderr
    third = Holder()
    LiveEngine(third, VenueBroker(venue, strategy_id="holder"),
               ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(7)]),
               session_dir=False, settle_timeout=0.5).run()  # fmt: skip
    assert third.buys[-1].status is OrderStatus.FILLED  # bar 7 trades again


class LimitThenBuy(Strategy):
    """Bar 1: a buy limit far below the market (it keeps working); from bar ``buy_from``: a buy of 60."""

    def __init__(self, buy_from: int = 99) -> None:
        self.n, self.buy_from, self.buys = 0, buy_from, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n >= self.buy_from:
            self.buys.append(broker.submit_order("AAA", 60))


def test_after_a_warm_restart_the_working_orders_still_count_against_the_limits():
    venue = FakeVenue(fill_on_wait=True)
    risk = {"max_position_notional": 15_000}  # 100 working + 60 = 160 x 100 > 15,000
    first = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(2)]
    LiveEngine(LimitThenBuy(), VenueBroker(venue, strategy_id="lim", risk=risk), ListFeed(first), session_dir=False,
               settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    again = LimitThenBuy(buy_from=3)
    more = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(3)]
    LiveEngine(again, VenueBroker(venue, strategy_id="lim", risk=risk), ListFeed(more), session_dir=False,
               settle_timeout=0.5, open_orders_at_end="keep").run()  # fmt: skip
    assert [o.rejection_code for o in again.buys] == ["max_position_notional"]
    assert "AAA 160 x 100.00" in again.buys[0].rejection_reason


class BuyLater(Strategy):
    """Buys 50 on bar 1 and tries a buy of 120 on the last bar."""

    def __init__(self, last: int) -> None:
        self.n, self.last, self.late = 0, last, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 50)
        if self.n == self.last:
            self.late = broker.submit_order("AAA", 120)


def test_each_bar_s_marked_equity_reaches_the_shadow_s_rails():
    """No loss limit: every equity is in the band, and the mark still hands it to the gate (the
    exposure limit divides by it) and to the trading state (what a resume re-bases on)."""
    prices = [100.0, 100.0, 80.0, 50.0, 50.0]
    frame = aaa_minutes(prices)
    strategy = BuyLater(last=len(prices))
    broker = ShadowBroker(BacktestConfig(initial_cash=10_000.0), risk={"max_gross_exposure": 1.0})
    LiveEngine(strategy, broker, ReplayFeed(frame), session_dir=False).run()
    # 50 bought at 100, now 50: equity 7,500; 50 x 50 + 120 x 50 = 8,500 > 7,500 (the initial
    # 10,000 would have let it pass)
    assert strategy.late.rejection_code == "max_gross_exposure"
    assert "7,500" in strategy.late.rejection_reason
    gate = broker.rails.gate
    assert gate.equity == gate.state.last_equity == 7_500.0


class FlattenedThenSells(Strategy):
    """Buys 100 on bar 1; the operator runs ``halt --flatten`` during bar 2 and ``resume``
    during bar 4; bar 6 sells 100 (a short: the flatten closed the position)."""

    def __init__(self, state_dir) -> None:
        self.state_dir, self.n, self.sell, self.commands = str(state_dir), 0, None, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        command = {2: ("halt", "--flatten", "--reason", "news"), 4: ("resume",)}.get(self.n)
        if command:
            self.commands.append(operator(*command, "--strategy-id", "flat", "--state-dir", self.state_dir))
        if self.n == 6:
            self.sell = broker.submit_order("AAA", 100, OrderSide.SELL)


def test_the_operators_flatten_in_shadow_moves_the_position_the_rails_judge_on(tmp_path):
    """The flatten's own order passes no rail, but the rails follow it: once it fills they know
    the position is closed, so a later sale is a short (here a margin account would let it
    through: the rails are what refuse it)."""
    frame = aaa_minutes([100.0] * 7)
    config = BacktestConfig(initial_cash=100_000.0, allow_short_selling=True, allow_leverage=True)
    strategy = FlattenedThenSells(tmp_path)
    shadow = ShadowBroker(config, risk={"allow_short": False}, state_dir=tmp_path)
    LiveEngine(strategy, shadow, ReplayFeed(frame), session_dir=False, strategy_id="flat").run()
    assert all(c.returncode == 0 for c in strategy.commands), [c.stderr for c in strategy.commands]
    assert strategy.sell.rejection_code == "allow_short"
    assert not shadow.strategy_broker.positions  # flat: closed by the flatten, never shorted
