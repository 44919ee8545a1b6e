"""The rails on the IB venue path, through the real ib_async client against the simulated IB:
what a refusal must never leave behind at the venue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ib_helpers import START, config_for
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.venues.ib import IBBroker, IBFeed
from tests.support.risk_probe import probe_bars


class OneBracket(Strategy):
    """One bracket on the first bar (a market entry with its take-profit and stop-loss)."""

    def __init__(self) -> None:
        self.n = 0
        self.bracket = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.bracket = broker.submit_bracket("AAA", 10, take_profit=104.0, stop_loss=97.0)


def _run_bracket(sim, per_minute: int) -> tuple[OneBracket, set[str]]:
    strategy = OneBracket()
    broker = IBBroker(config_for(sim), strategy_id="bracket", risk={"max_orders_per_minute": per_minute})
    feed = IBFeed(config_for(sim), ["AAA"], bar_size="1 min", end=START + timedelta(minutes=3))
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False).run()
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
