"""A strategy hook that raises leaves no order behind (``ml4t.backtest`` rolls back what it did):
the shadow's rails forget the orders it placed and read the positions it moved again, so a
rolled-back buy never covers a short sale and a rolled-back fill never makes a sale look
reducing."""

from __future__ import annotations

from ml4t.backtest import BacktestConfig, ExecutionMode, OrderSide, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from tests.support.market import aaa_minutes


class BuyRaiseThenSell(Strategy):
    """Bar 1: buys 100, then raises. Bar 3: sells 50 (a short, once the buy is undone)."""

    def __init__(self) -> None:
        self.n, self.sell = 0, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 100)
            raise RuntimeError("after the order")
        if self.n == 3:
            self.sell = broker.submit_order("AAA", 50, OrderSide.SELL)


def run(strategy, config: BacktestConfig, risk: dict, shadow_kwargs: dict | None = None) -> ShadowBroker:
    shadow = ShadowBroker(config, risk=risk, **(shadow_kwargs or {}))
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 5)), session_dir=False, error_policy="log").run()
    return shadow


def test_a_rolled_back_buy_does_not_cover_a_short_sale():
    strategy = BuyRaiseThenSell()
    shadow = run(strategy, BacktestConfig(initial_cash=100_000.0), {"allow_short": False})
    assert strategy.sell.rejection_code == "allow_short"  # the rails' refusal, not the backtest's
    assert "position 0 - 50 would be -50" in strategy.sell.rejection_reason
    assert shadow.rails.gate.exposure.assets["AAA"].working_buy == 0.0


def test_a_rolled_back_fill_does_not_make_a_sale_reducing():
    config = BacktestConfig(initial_cash=100_000.0, execution_mode=ExecutionMode.SAME_BAR, immediate_fill=True)
    strategy = BuyRaiseThenSell()
    shadow = run(strategy, config, {"allow_short": False})
    assert not shadow.strategy_broker.positions  # the backtest undid the fill
    assert strategy.sell.rejection_code == "allow_short"
    assert shadow.rails.gate.exposure.assets["AAA"].quantity == 0.0


class ChangeRaiseThenLook(Strategy):
    """Bar 1: a limit buy of 100 far below the market. Bar 2: changes it to 300, then raises.
    Bar 3: reads what the rails count as working."""

    def __init__(self, shadow: ShadowBroker) -> None:
        self.shadow, self.n, self.order, self.seen = shadow, 0, None, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.order = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == 2:
            assert broker.update_order(self.order.order_id, quantity=300)
            raise RuntimeError("after the change")
        if self.n == 3:
            self.seen = self.shadow.rails.gate.exposure.assets["AAA"].working_buy


def test_a_rolled_back_change_counts_the_order_as_it_was():
    """(The next bar's settle reads the order as the backtest restored it.)"""
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0), risk={"max_position_notional": 1e9})
    strategy = ChangeRaiseThenLook(shadow)
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 5)), session_dir=False, error_policy="log").run()
    assert strategy.order.quantity == 100  # the backtest undid the change
    assert strategy.seen == 100.0


def followed(shadow: ShadowBroker) -> dict:
    """What the rails follow: {order id: (side, what it has left, an exit leg)}; and per asset
    (position, working buy, working sell)."""
    exposure = shadow.rails.gate.exposure
    return ({oid: (o.side.value, left, view is None) for oid, (o, left, _, view) in exposure._followed.items()},
            {a: (v.quantity, v.working_buy, v.working_sell) for a, v in exposure.assets.items()})  # fmt: skip


class BracketThenRaise(Strategy):
    """Bar 1: a bracket (a limit entry below the market), then raises. Each bar: what the rails follow."""

    def __init__(self, shadow: ShadowBroker) -> None:
        self.shadow, self.n, self.seen = shadow, 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_bracket("AAA", 10, take_profit=200.0, stop_loss=50.0, entry_type=OrderType.LIMIT,
                                  entry_limit=90.0)  # fmt: skip
            raise RuntimeError("after the bracket")
        self.seen.append(followed(self.shadow))


def test_a_rolled_back_bracket_is_not_followed():
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0), risk={"allow_short": False})
    strategy = BracketThenRaise(shadow)
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 5)), session_dir=False, error_policy="log").run()
    assert not shadow.strategy_broker.orders
    assert strategy.seen[0] == ({}, {"AAA": (0.0, 0.0, 0.0)})


class ReuseAfterRaise(Strategy):
    """Bar 1: a limit buy of 100 (working). Bar 2: a limit buy of 10 and a cancel of the first,
    then raises. Bar 3: a limit sell of 5 (it takes the id the undone buy had)."""

    def __init__(self, shadow: ShadowBroker) -> None:
        self.shadow, self.n, self.seen = shadow, 0, {}

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.first = broker.submit_order("AAA", 100, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == 2:
            broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=50.0)
            broker.cancel_order(self.first.order_id)
            raise RuntimeError("after the order and the cancel")
        if self.n == 3:
            self.sell = broker.submit_order("AAA", 5, OrderSide.SELL, order_type=OrderType.LIMIT, limit_price=200.0)
            self.seen = followed(self.shadow)


def test_an_undone_cancel_keeps_the_order_working_and_a_reused_id_is_a_new_order():
    shadow = ShadowBroker(BacktestConfig(initial_cash=100_000.0), risk={"max_open_orders": 10})
    strategy = ReuseAfterRaise(shadow)
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 5)), session_dir=False, error_policy="log").run()
    assert strategy.sell.order_id == "ORD-2"  # the undone buy's id
    # the first buy works again (its cancel was undone); the sell is the only other order
    assert strategy.seen == ({strategy.first.order_id: ("buy", 100.0, False), "ORD-2": ("sell", 5.0, False)},
                             {"AAA": (0.0, 100.0, 5.0)})  # fmt: skip
