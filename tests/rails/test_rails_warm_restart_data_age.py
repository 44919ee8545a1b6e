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


def _bars(arrived_ago: float | None, first: int = 0, count: int = 3):
    """``count`` bars as a live feed delivers them, which arrived ``arrived_ago`` seconds ago
    (None: without an arrival time, as a recorded source's)."""
    made = [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(first, first + count)]
    if arrived_ago is None:
        return made
    return [replace(b, received_at=time.monotonic() - arrived_ago) for b in made]


def _run(where: str, strategy: Strategy, bars: list, state_dir, venue: FakeVenue) -> None:
    if where == "venue":
        broker = VenueBroker(venue, strategy_id="age", state_dir=state_dir, risk=RISK)
        LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.1,
                   open_orders_at_end="keep").run()  # fmt: skip
    else:
        broker = ShadowBroker(BacktestConfig(initial_cash=100_000.0, calendar=None), state_dir=state_dir, risk=RISK)
        LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, strategy_id="age").run()


def _restart(where: str, end: tuple[OrderSide, float], arrived_ago: float | None, state_dir, *,
             old_journal: bool = False, new_bars: int = 0) -> BuysThenEnds:  # fmt: skip
    """Run, keep the journal, restart the same strategy with a feed that has ``new_bars`` new
    bars (arriving now)."""
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
    _run(where, strategy, _bars(0.0, first=3, count=new_bars) if new_bars else [], state_dir, venue)
    assert strategy.seen == 3 + new_bars  # the first three bars came from the journal
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


@pytest.mark.parametrize("where", ["venue", "shadow"])
def test_bars_without_an_arrival_time_keep_their_recorded_clock_after_a_restart(where, tmp_path):
    """Bars that came without ``received_at`` (a recorded source's, scripted ones) are journaled
    as such, not as unknown: the restart's ``on_end`` buy is judged on the recorded clock and
    passes, as it did in the run that journaled them."""
    buy = _restart(where, (OrderSide.BUY, 1), None, tmp_path).order
    assert buy.rejection_code is None, buy.rejection_reason


@pytest.mark.parametrize("where", ["venue", "shadow"])
@pytest.mark.parametrize("old_journal", [False, True])
def test_a_live_bar_after_the_replay_is_what_the_end_of_the_run_judges(where, old_journal, tmp_path):
    """Replayed bars 600 s old (or of unknown age), then a live bar: ``on_end``'s buy is judged
    on the live bar's prices and passes; the replayed arrival does not outlive the replay."""
    buy = _restart(where, (OrderSide.BUY, 1), 600.0, tmp_path, old_journal=old_journal, new_bars=1).order
    assert buy.rejection_code is None, buy.rejection_reason
