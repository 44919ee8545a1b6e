"""Shadow parity: LiveEngine + ShadowBroker + ReplayFeed gives exactly the backtest's fills and equity.

Each strategy is an ordinary ml4t.backtest Strategy (the four shipped templates, a
TargetWeightExecutor strategy, brackets, position rules), run once through ``Engine.run()`` and
once through ``LiveEngine`` on the same bars and the same config.
"""

from __future__ import annotations

import pytest
from ml4t.backtest import BacktestConfig, DataFeed, Engine

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.events import BarClosed
from tests.support.fakes import ListFeed
from tests.support.market import make_context, make_prices, make_signals
from tests.support.strategies import (
    Brackets,
    LongShort,
    MACrossover,
    MeanReversion,
    Momentum,
    RiskRules,
    Signals,
)

ASSETS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
PRICES = make_prices(400, ASSETS)
SIGNALS = make_signals(PRICES)
CONTEXT = make_context(PRICES)

STRATEGIES = {
    "signal_following": Signals,
    "momentum": Momentum,
    "mean_reversion": MeanReversion,
    "long_short": LongShort,
    "target_weights": MACrossover,
    "bracket": Brackets,
    "position_rules": RiskRules,
}
PRESETS = {
    "default": lambda: BacktestConfig(),
    "realistic": lambda: BacktestConfig.from_preset("realistic"),
    "backtrader": lambda: BacktestConfig.from_preset("backtrader"),
}


def fill_key(fill):
    return (fill.asset, fill.side, fill.quantity, fill.price, fill.timestamp, fill.commission)


def run_both(strategy_cls, config):
    backtest = Engine(
        DataFeed(prices_df=PRICES, signals_df=SIGNALS, context_df=CONTEXT), strategy_cls(), config
    ).run()
    live = LiveEngine(
        strategy_cls(),
        ShadowBroker(config),
        ReplayFeed(PRICES, signals_df=SIGNALS, context_df=CONTEXT),
        session_dir=False,
    ).run()
    return backtest, live


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_fills_and_equity_match_the_backtest(name, preset):
    backtest, live = run_both(STRATEGIES[name], PRESETS[preset]())

    assert len(backtest.fills) > 0, f"{name} made no trades: the comparison would prove nothing"
    assert [fill_key(f) for f in live.fills] == [fill_key(f) for f in backtest.fills]
    assert live.equity_curve == backtest.equity_curve
    assert live.metrics["num_orders"] == backtest.metrics["num_orders"]
    assert live.metrics["num_rejected_orders"] == backtest.metrics["num_rejected_orders"]
    assert live.metrics["final_value"] == pytest.approx(backtest.metrics["final_value"], rel=1e-12)


def test_position_rules_really_exit_through_the_rules():
    backtest, live = run_both(RiskRules, BacktestConfig())
    reasons = {f.exit_reason for f in live.fills if f.exit_reason}
    assert reasons & {"stop_loss", "trailing_stop"}, reasons
    assert [f.exit_reason for f in live.fills] == [f.exit_reason for f in backtest.fills]


def test_bracket_children_cancel_their_sibling():
    _, live = run_both(Brackets, BacktestConfig())
    cancelled = [o for o in live.orders if o.status.name == "CANCELLED" and o.parent_id]
    assert cancelled, "no bracket sibling was cancelled: the OCO path was not exercised"


def test_long_short_rejections_match_in_a_cash_account():
    backtest, live = run_both(LongShort, BacktestConfig())
    assert backtest.metrics["num_rejected_orders"] > 0  # shorts refused in a cash account
    assert [o.rejection_reason for o in live.rejected_orders] == [
        o.rejection_reason for o in backtest.rejected_orders
    ]


@pytest.mark.parametrize("name", ["signal_following", "position_rules"])
def test_plain_dict_bars_fill_like_the_datafeed_payload(name):
    """A venue feed delivers plain dicts, not the DataFeed's payload with its pre-extracted
    price views: ShadowBroker then builds those views itself, and fills exactly the same."""
    feed = DataFeed(prices_df=PRICES, signals_df=SIGNALS, context_df=CONTEXT)
    plain = [
        BarClosed(ts, {asset: dict(row) for asset, row in data.items()}, dict(context))
        for ts, data, context in feed
    ]
    assert not hasattr(plain[0].data, "_prices")  # the fallback path really is taken
    config = BacktestConfig.from_preset("realistic")
    live = LiveEngine(STRATEGIES[name](), ShadowBroker(config), ListFeed(plain), session_dir=False).run()
    backtest, _ = run_both(STRATEGIES[name], config)

    assert len(backtest.fills) > 0
    assert [fill_key(f) for f in live.fills] == [fill_key(f) for f in backtest.fills]
    assert live.equity_curve == backtest.equity_curve
