"""Parity: SimExchange driven bar by bar fills exactly like ml4t.backtest's Engine.run().

The same order script is submitted by a backtest Strategy (in on_start for bar -1, else in
on_data of bar i) and to the exchange while bar i is current; fills, final order statuses and
the final account must be identical.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ml4t.backtest import BacktestConfig, DataFeed, Engine, OrderSide, OrderStatus, OrderType, Strategy
from ml4t.backtest.config import ExecutionPrice
from ml4t.backtest.types import ExecutionMode
from tests.sim.core.simcore_support import drive, make_bars

from ml4t_live.sim.matching import SimExchange, SimOrderSpec

N_BARS = 8
ASSETS = ("AAA", "BBB")

PRESETS = ("realistic", "backtrader", "zipline", "lean", "vectorbt", "ibkr_us_stocks_fixed")
CONFIGS = {
    "default": lambda: BacktestConfig(calendar=None, initial_cash=20_000.0),
    **{
        name: (lambda name=name: _with_cash(BacktestConfig.from_preset(name), 20_000.0))
        for name in PRESETS
    },
    "same_bar_close": lambda: BacktestConfig(
        calendar=None,
        initial_cash=20_000.0,
        execution_mode=ExecutionMode.SAME_BAR,
        execution_price=ExecutionPrice.CLOSE,
    ),
}

_STATUS = {
    OrderStatus.FILLED: {"filled"},
    OrderStatus.REJECTED: {"rejected"},
    OrderStatus.CANCELLED: {"canceled"},
    OrderStatus.PENDING: {"new", "partially_filled"},
}


def _with_cash(config: BacktestConfig, cash: float) -> BacktestConfig:
    config.initial_cash = cash
    return config


class ScriptStrategy(Strategy):
    """Submits ``script[i]`` in on_data of bar i (``script[-1]`` in on_start)."""

    def __init__(self, script: dict[int, list[SimOrderSpec]]) -> None:
        self.script = script
        self.bar = -1

    def _submit(self, broker, bar: int) -> None:
        for s in self.script.get(bar, []):
            broker.submit_order(
                s.asset, s.quantity, s.side, s.order_type, s.limit_price, s.stop_price, s.trail_amount
            )

    def on_start(self, broker) -> None:
        self._submit(broker, -1)

    def on_data(self, timestamp, data, context, broker) -> None:
        self.bar += 1
        self._submit(broker, self.bar)


def _closes(bars) -> dict[tuple[int, str], float]:
    out = {}
    for i, ts in enumerate(sorted(set(bars["timestamp"].to_list()))):
        for row in bars.filter(bars["timestamp"] == ts).iter_rows(named=True):
            out[(i, row["asset"])] = row["close"]
    return out


def _build_script(raw, bars) -> dict[int, list[SimOrderSpec]]:
    closes = _closes(bars)
    script: dict[int, list[SimOrderSpec]] = {}
    for bar, asset, buy, qty, kind, offset in raw:
        ref = closes[(max(bar, 0), asset)]
        side = OrderSide.BUY if buy else OrderSide.SELL
        away = 1 + offset if buy else 1 - offset  # limit below (buy) / above (sell) the market
        toward = 1 - offset if buy else 1 + offset  # stop above (buy) / below (sell)
        kw: dict = {}
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            kw["limit_price"] = round(ref / away if kind is OrderType.LIMIT else ref / toward * 1.01, 2)
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
            kw["stop_price"] = round(ref / toward, 2)
        if kind is OrderType.TRAILING_STOP:
            kw["trail_amount"] = round(ref * max(offset, 0.005), 2)
        script.setdefault(bar, []).append(SimOrderSpec(asset, side, float(qty), kind, **kw))
    return script


def _backtest(config: BacktestConfig, bars, script):
    engine = Engine(DataFeed(prices_df=bars), ScriptStrategy(script), config)
    result = engine.run()
    return engine.broker, result


def _assert_parity(config_name: str, raw, seed: int) -> None:
    bars = make_bars(N_BARS, ASSETS, seed=seed)
    script = _build_script(raw, bars)
    broker, result = _backtest(CONFIGS[config_name](), bars, script)
    exchange = SimExchange(CONFIGS[config_name]())
    drive(exchange, bars, script)

    expected = [
        (int(f.order_id.removeprefix("ORD-")), f.asset, f.side, f.quantity, f.price, f.timestamp, f.commission)
        for f in result.fills
    ]
    got = [
        (x.order_id, x.asset, x.side, x.quantity, x.price, x.timestamp, x.commission)
        for x in exchange.executions
    ]
    assert got == expected
    bt_orders = {int(o.order_id.removeprefix("ORD-")): o for o in broker.orders}
    assert set(bt_orders) == set(exchange.orders)
    for order_id, bt in bt_orders.items():
        assert exchange.orders[order_id].status in _STATUS[bt.status], (order_id, bt)
    assert math.isclose(exchange.cash, broker.cash, abs_tol=1e-9)
    assert math.isclose(exchange.equity, result.metrics["final_value"], abs_tol=1e-6)
    assert exchange.positions == {a: (p.quantity, p.entry_price) for a, p in broker.positions.items()}


# A fixed script covering every order type, buys and sells, and a cash rejection.
FIXED = [
    (-1, "AAA", True, 50, OrderType.MARKET, 0.0),
    (0, "BBB", True, 100, OrderType.LIMIT, 0.01),
    (0, "AAA", True, 10, OrderType.MOC, 0.0),
    (1, "AAA", False, 20, OrderType.STOP, 0.02),
    (1, "BBB", True, 30, OrderType.STOP_LIMIT, 0.01),
    (2, "AAA", False, 30, OrderType.TRAILING_STOP, 0.02),
    (2, "BBB", True, 5000, OrderType.MARKET, 0.0),  # far beyond the cash: rejected at fill time
    (3, "AAA", False, 10, OrderType.LIMIT, 0.01),
    (4, "BBB", False, 40, OrderType.MARKET, 0.0),
    (5, "AAA", True, 15, OrderType.MOC, 0.0),
]


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_fixed_script_matches_backtest(config_name: str) -> None:
    _assert_parity(config_name, FIXED, seed=3)


def test_fixed_script_has_fills_and_a_cash_rejection() -> None:
    bars = make_bars(N_BARS, ASSETS, seed=3)
    exchange = SimExchange(CONFIGS["default"]())
    drive(exchange, bars, _build_script(FIXED, bars))
    statuses = [o.status for o in exchange.orders.values()]
    assert statuses.count("filled") >= 5
    rejected = [o for o in exchange.orders.values() if o.status == "rejected"]
    assert [o.spec.quantity for o in rejected] == [5000.0]
    assert "insufficient" in (rejected[0].reject_reason or "").lower()


_order = st.tuples(
    st.integers(-1, N_BARS - 2),
    st.sampled_from(ASSETS),
    st.booleans(),
    st.integers(1, 150),
    st.sampled_from(list(OrderType)),
    st.floats(0.0, 0.05),
)


@settings(max_examples=25, deadline=None)
@given(raw=st.lists(_order, min_size=1, max_size=12), seed=st.integers(0, 50))
@pytest.mark.parametrize("config_name", ["default", "realistic", "backtrader", "same_bar_close"])
def test_random_scripts_match_backtest(config_name: str, raw, seed: int) -> None:
    _assert_parity(config_name, raw, seed)
