"""``max_data_age`` at the end of a warm restart that ends before any new bar: ``on_end``'s
orders are judged on the replayed last bar's prices, as old as the time since that bar arrived
in the run that journaled it.

Replayed bars carried no arrival time, so the rails' end-of-run clock stayed where the replay
left it and read the last replayed price as fresh (age ~0) however long ago it had arrived: a
buy placed in ``on_end`` left although the price was ten minutes old. The journal now keeps each
bar's arrival (wall-clock time); a journal from before that holds no arrival, and an unknown age
refuses new risk. Through FakeVenue (tests/support/fakes.py) and the shadow broker: the first run
buys on its first bar and ends with the journal kept; the restart's feed has no new bar.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, Strategy

from ml4t_live import LiveEngine, ShadowBroker
from ml4t_live.journal import journal_path
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
RISK = {"max_data_age": "2m"}


class BuysThenEnds(Strategy):
    """Buys 10 on its first bar; ``on_end`` places ``end`` (side, quantity), if any."""

    def __init__(self, end: tuple[OrderSide, float] | None = None) -> None:
        self.end = end
        self.seen = 0
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == 1:
            broker.submit_order("AAA", 10)

    def on_end(self, broker):
        if self.end is not None:
            self.order = broker.submit_order("AAA", self.end[1], self.end[0])


def _bars(arrived_ago: float):
    """Three bars as a live feed delivers them, which arrived ``arrived_ago`` seconds ago."""
    received = time.monotonic() - arrived_ago
    return [replace(bar(T0 + timedelta(minutes=i), {"AAA": 100.0}), received_at=received) for i in range(3)]


def _run(where: str, strategy: Strategy, bars: list, state_dir, venue: FakeVenue) -> None:
    if where == "venue":
        broker = VenueBroker(venue, strategy_id="age", state_dir=state_dir, risk=RISK)
        LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.1,
                   open_orders_at_end="keep").run()  # fmt: skip
    else:
        broker = ShadowBroker(BacktestConfig(initial_cash=100_000.0, calendar=None), state_dir=state_dir, risk=RISK)
        LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, strategy_id="age").run()


def _restart(where: str, end: tuple[OrderSide, float], arrived_ago: float, state_dir, *,
             old_journal: bool = False) -> BuysThenEnds:  # fmt: skip
    """Run, keep the journal, restart the same strategy with a feed that has no new bar."""
    venue = FakeVenue()
    _run(where, BuysThenEnds(), _bars(arrived_ago), state_dir, venue)
    if old_journal:  # as a journal written before the bars' arrivals were kept
        path = (journal_path(state_dir, "fake", venue.account_id, "age") if where == "venue"
                else journal_path(state_dir, "shadow", "list", "age"))  # fmt: skip
        db = sqlite3.connect(path)
        try:
            db.execute("ALTER TABLE bars DROP COLUMN arrived")
            db.commit()
        finally:
            db.close()
    strategy = BuysThenEnds(end)
    _run(where, strategy, [], state_dir, venue)
    assert strategy.seen == 3  # the three bars came from the journal
    return strategy


@pytest.mark.parametrize("where", ["venue", "shadow"])
@pytest.mark.parametrize(("arrived_ago", "refused"), [(600.0, "max_data_age"), (1.0, None)])
def test_an_on_end_buy_after_a_restart_is_judged_on_when_the_replayed_bar_arrived(where, arrived_ago, refused,
                                                                                   tmp_path):  # fmt: skip
    buy = _restart(where, (OrderSide.BUY, 1), arrived_ago, tmp_path).order
    assert buy.rejection_code == refused, buy.rejection_reason
    if refused:
        assert buy.status is OrderStatus.REJECTED and "s old > 120 s" in buy.rejection_reason


@pytest.mark.parametrize("where", ["venue", "shadow"])
@pytest.mark.parametrize("old_journal", [False, True])
def test_an_on_end_sell_that_reduces_passes_on_prices_of_any_age(where, old_journal, tmp_path):
    sell = _restart(where, (OrderSide.SELL, 5), 600.0, tmp_path, old_journal=old_journal).order
    assert sell.rejection_code is None, sell.rejection_reason
    assert sell.status is not OrderStatus.REJECTED


@pytest.mark.parametrize("where", ["venue", "shadow"])
def test_a_journal_without_arrivals_opens_and_reads_the_replayed_prices_age_as_unknown(where, tmp_path):
    """The bars arrived a second ago, but the journal does not say so: unknown, never fresh."""
    buy = _restart(where, (OrderSide.BUY, 1), 1.0, tmp_path, old_journal=True).order
    assert buy.status is OrderStatus.REJECTED and buy.rejection_code == "max_data_age"
    assert "age of the last AAA price is unknown" in buy.rejection_reason
