"""``max_data_age`` at the end of a run: ``on_end`` may come long after the last bar (a feed that
stalled ends the run), and an order placed there is judged on prices that old.

The rails' market clock starts at a bar's first order; ``on_end`` placing the first order after
the last bar read its prices as fresh (age ~0) however long ago the bar had arrived. Here the last
bar arrived 10 minutes ago (``received_at``, as a live feed sets it); ``max_data_age = "2m"``
refuses a buy placed in ``on_end``. Through
FakeVenue (tests/support/fakes.py) and the shadow broker.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.errors import ConnectionFailed
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
RISK = {"max_data_age": "2m"}


class BuysAtTheEnd(Strategy):
    def __init__(self) -> None:
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        pass

    def on_end(self, broker):
        self.order = broker.submit_order("AAA", 1)


def _bars(waited: float):
    bars = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(3)]
    return bars[:-1] + [replace(bars[-1], received_at=time.monotonic() - waited)]


@pytest.mark.parametrize("where", ["venue", "shadow"])
@pytest.mark.parametrize(("waited", "refused"), [(600.0, "max_data_age"), (1.0, None)])
def test_an_on_end_order_is_judged_on_how_long_ago_the_last_bar_arrived(where, waited, refused, tmp_path):
    strategy = BuysAtTheEnd()
    broker = (VenueBroker(FakeVenue(), strategy_id="age", state_dir=tmp_path, risk=RISK) if where == "venue"
              else ShadowBroker(BacktestConfig(), risk=RISK))  # fmt: skip
    LiveEngine(strategy, broker, ListFeed(_bars(waited)), session_dir=False, settle_timeout=0.1).run()
    assert strategy.order.rejection_code == refused, strategy.order.rejection_reason
    if refused:
        assert strategy.order.status is OrderStatus.REJECTED


def test_a_run_failing_between_bars_judges_on_end_on_the_gates_own_bar(tmp_path):
    """A review probe of 82052cf: the arrival time was taken when the next bar opened, before the
    fill barrier; the barrier failed, on_end ran on the previous bar's prices (10 minutes old)
    with the new bar's arrival time, and the buy left."""
    now = time.monotonic()
    bars = [replace(bar(T0 + timedelta(minutes=10 * i), {"AAA": 100.0}), received_at=now - 600 * (2 - i))
            for i in range(3)]  # fmt: skip
    strategy = BuysAtTheEnd()
    broker = VenueBroker(FakeVenue(), strategy_id="age", state_dir=tmp_path, risk=RISK)
    settle, calls = broker.settle, []

    def failing_settle(timeout):  # the third bar's fill barrier: the venue is lost
        calls.append(timeout)
        if len(calls) == 3:
            raise ConnectionFailed("venue lost during the fill barrier")
        return settle(timeout)

    broker.settle = failing_settle
    with pytest.raises(ConnectionFailed):
        LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.1).run()
    assert strategy.order.rejection_code == "max_data_age", strategy.order.rejection_reason
