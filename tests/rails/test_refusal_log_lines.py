"""A refusal is logged once per limit and bar as a WARNING, the rest of that bar at DEBUG (a
HALTED strategy ordering many symbols must not flood a ``-q`` log); the journal and the
summary still count every one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar
from tests.support.market import make_prices

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
ASSETS = ["AAA", "BBB", "CCC", "DDD"]


@pytest.fixture
def refusal_lines():
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG",
                      filter=lambda r: "refused" in r["message"])  # fmt: skip
    yield lines
    logger.remove(sink)


class OrdersTooMuch(Strategy):
    """Every bar: 7 of each asset (over max_order_quantity = 5) and one short sale (allow_short)."""

    def __init__(self) -> None:
        self.orders = []

    def on_data(self, timestamp, data, context, broker):
        for asset in sorted(data):
            self.orders.append(broker.submit_order(asset, 7))
        self.orders.append(broker.submit_order(min(data), -1))


def test_the_shadow_logs_each_limits_first_refusal_of_a_bar_as_a_warning(refusal_lines):
    strategy = OrdersTooMuch()
    shadow = ShadowBroker(BacktestConfig(), risk={"max_order_quantity": 5, "allow_short": False})
    result = LiveEngine(strategy, shadow, ReplayFeed(make_prices(3, ASSETS)), session_dir=False).run()
    assert [o.status for o in strategy.orders] == [OrderStatus.REJECTED] * 15
    assert result.metrics["num_risk_refusals"] == 15
    warnings = [m for level, m in refusal_lines if level == "WARNING"]
    debug = [m for level, m in refusal_lines if level == "DEBUG"]
    assert len(warnings) == 6 and len(debug) == 9, refusal_lines  # 3 bars x 2 limits; 3 x 3 more quantity
    assert sum("max_order_quantity:" in m for m in warnings) == 3 and sum("allow_short" in m for m in warnings) == 3
    assert all("(more max_order_quantity refusals this bar: DEBUG)" in m for m in warnings
               if "max_order_quantity:" in m)  # fmt: skip


def test_a_venue_run_logs_each_limits_first_refusal_of_a_bar_as_a_warning(refusal_lines, tmp_path):
    strategy = OrdersTooMuch()
    feed = ListFeed([bar(T0 + timedelta(minutes=i), dict.fromkeys(ASSETS, 100.0)) for i in range(3)])
    broker = VenueBroker(FakeVenue(fill_on_wait=True), strategy_id="loud", state_dir=tmp_path,
                         risk={"max_order_quantity": 5, "allow_short": False})  # fmt: skip
    result = LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.5).run()
    assert [o.status for o in strategy.orders] == [OrderStatus.REJECTED] * 15
    assert result.metrics["num_risk_refusals"] == 15
    warnings = [m for level, m in refusal_lines if level == "WARNING"]
    assert len(warnings) == 6 and len(refusal_lines) == 15, refusal_lines
