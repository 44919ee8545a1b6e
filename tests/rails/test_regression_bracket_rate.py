"""A bracket leaves whole or not at all: the order-rate limit is asked for its three orders
before its entry (an exit leg refused after the entry left would leave the entry unprotected).
In shadow here; through the real ib_async client in ``tests/venues/ib/test_ib_rails_orders.py``."""

from __future__ import annotations

from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from tests.support.market import aaa_minutes
from tests.support.risk_probe import OneBracket


def _shadow(per_minute: int) -> tuple[OneBracket, dict]:
    strategy = OneBracket()
    result = LiveEngine(strategy, ShadowBroker(BacktestConfig(), risk={"max_orders_per_minute": per_minute}),
                        ReplayFeed(aaa_minutes([100.0] * 3)), session_dir=False).run()  # fmt: skip
    return strategy, result.metrics


def test_in_shadow_a_bracket_over_the_burst_cap_is_refused_whole():
    strategy, metrics = _shadow(12)  # a burst cap of 2 a second
    entry, tp, sl = strategy.bracket
    assert [o.status for o in (entry, tp, sl)] == [OrderStatus.REJECTED] * 3
    assert entry.rejection_code == "max_orders_per_minute"
    assert metrics["risk_refusals"] == {"max_orders_per_minute": 1, "bracket_entry_refused": 2}


def test_in_shadow_a_bracket_at_the_burst_cap_leaves_whole():
    strategy, _ = _shadow(13)  # a burst cap of 3 a second
    entry, tp, sl = strategy.bracket
    assert entry.status is OrderStatus.FILLED and tp.status is sl.status is OrderStatus.PENDING


class BuyThenBracketInReducing(Strategy):
    """Bar 1: buy 100 AAA; the price falls, the daily loss trips REDUCING; bar 4: a bracket that
    would add 10 more."""

    def __init__(self) -> None:
        self.n, self.bracket = 0, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
        if self.n == 4:
            self.bracket = broker.submit_bracket("AAA", 10, take_profit=200.0, stop_loss=10.0, validate_prices=False)


def test_in_reducing_a_bracket_that_adds_risk_is_refused_as_reducing_not_for_the_order_rate():
    strategy = BuyThenBracketInReducing()
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0),
                          risk={"max_daily_loss": 500, "max_orders_per_minute": 12})  # fmt: skip
    result = LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0, 100.0, 80.0, 80.0, 80.0])),
                        session_dir=False).run()  # fmt: skip
    assert result.metrics["trading_state"] == "REDUCING"
    entry = strategy.bracket[0]
    assert entry.rejection_code == "reducing", entry.rejection_reason
    assert result.metrics["risk_refusals"] == {"reducing": 1, "bracket_entry_refused": 2}
