"""A fill made up for an order (the venue said filled, its executions out of reach) and the real
executions arriving after it count once: the order's fills never go beyond what the venue said.

Before, the book trimmed only *reconstructed* executions against the order's applied fills and
kept real ones as they were: executions that came after the made-up fill (IB after a reconnect, a
slow stream) counted the quantity a second time (the position doubled), in the session and again
in every warm restart's replay of the journal.

Settings: tests/engine/test_owed_executions.py's halted limit order (buy 5 at 90) whose cancel the
venue carries out silently while it fills the order, its executions held back. In the session: the
first cancel check (60 s of the fake clock) finds it filled, the reconciliation after the next
one makes its fill up (90 s); the real execution arrives at ``real_at`` (300 s). At a restart: the
first run ends with the order cancelling (60 s), the restart's look-up makes its fill up ("while
away"), and the real execution arrives during the second run. A further restart replays the
journal and must come to the same position."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from ml4t.backtest import BacktestConfig, Order, OrderSide, OrderStatus, OrderType

from ml4t_live.book import Book, made_up_fill_id
from ml4t_live.events import OrderFilled, OrderPartiallyFilled, OrderReplaced
from ml4t_live.venue_broker import VenueBroker
from ml4t_live.venues.alpaca.parsing import made_up_exec_id
from ml4t_live.venues.alpaca.tracker import OrderTracker
from tests.engine.cancel_support import journal_of
from tests.engine.lookup_support import FilledSilently, run_reconciling
from tests.engine.unknown_outcome_support import WHEN
from tests.support.fakes import FakeVenue, bar

ALPACA_DOCS = json.loads((Path(__file__).parents[1] / "resources" / "alpaca" / "alpaca_docs_examples.json").read_text())


@dataclass
class RealLater(FilledSilently):
    """FilledSilently whose held-back execution (the whole order, at 89.5) does arrive, at the end
    of the first bar at or after ``real_at`` seconds of the fake clock. ``cumulative``: it carries
    the order's cumulative quantity (IB, Alpaca); else 0, as a venue that gives none."""

    real_at: float = 300.0
    cumulative: bool = True
    delivered: bool = False

    def end_of_bar(self, timestamp):
        super().end_of_bar(timestamp)
        if not self.delivered and self.looked_up and self.clock.now - 1000.0 >= self.real_at:
            self.delivered = True
            request = self.placed[0]
            self.events.put(OrderFilled(request.client_order_id, "E-real", "AAA", request.side,
                                        request.quantity, 89.5, WHEN, 1.0,
                                        request.quantity if self.cumulative else 0.0))  # fmt: skip


def _ignored(lines, cid):
    return [line for line in lines if cid in line and "E-real" in line and "ignored" in line]


@pytest.mark.parametrize("cumulative", [True, False], ids=["cumulative", "no-cumulative"])
def test_the_real_execution_after_a_fill_made_up_in_the_session_counts_once(tmp_path, cumulative):
    venue = RealLater(fill_on_wait=False, cumulative=cumulative)
    strategy, broker, lines = run_reconciling(venue, tmp_path, bars=15)
    order = strategy.orders[0]
    cid = order.order_id
    assert venue.delivered and venue.looked_up == [[cid], [cid]]  # the check's, the reconciliation's
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 5
    assert broker.book.positions["AAA"].quantity == 5
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1
    said = _ignored(lines, cid)
    assert len(said) == 1 and said[0].startswith("WARNING"), said
    # a warm restart replays the journal (the made-up fill, then the real execution): the same
    strategy, broker, _ = run_reconciling(venue, tmp_path, bars=20)
    assert broker.book.positions["AAA"].quantity == 5
    assert strategy.orders[0].filled_quantity == 5 and len(broker.get_fills()) == 1
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1


def test_the_real_execution_first_arriving_in_the_run_after_the_made_up_fill_counts_once(tmp_path):
    """The fill is made up in the session of run N; its real execution first arrives in run N+1,
    after the warm restart's replay: the replay of the made-up fill ends the order again, so the
    real execution is ignored (with a book that forgot the replayed made-up end at the end of the
    restart, it counted a second time: AAA 10)."""
    venue = RealLater(fill_on_wait=False, real_at=1e9)
    strategy, broker, lines = run_reconciling(venue, tmp_path, bars=15)
    cid = strategy.orders[0].order_id
    assert not venue.delivered and broker.book.positions["AAA"].quantity == 5
    assert not _ignored(lines, cid)
    venue.real_at = 0.0
    strategy, broker, lines = run_reconciling(venue, tmp_path, bars=20)  # E-real comes at the first bar's end
    assert venue.delivered and len(_ignored(lines, cid)) == 1
    assert broker.book.positions["AAA"].quantity == 5 and strategy.orders[0].filled_quantity == 5
    assert journal_of(tmp_path)[1:] == ({"AAA": 5.0}, 1)


@pytest.mark.parametrize("cumulative", [True, False], ids=["cumulative", "no-cumulative"])
def test_the_real_execution_after_a_fill_made_up_at_a_restart_counts_once(tmp_path, cumulative):
    venue = RealLater(fill_on_wait=False, cumulative=cumulative, answer="fail", real_at=1e9)
    strategy, broker, _ = run_reconciling(venue, tmp_path, bars=3)  # its look-up fails: cancelling at the end
    cid = strategy.orders[0].order_id
    assert cid in broker.book.cancelling and not venue.delivered
    venue.answer, venue.real_at = "filled, no executions", 0.0
    strategy, broker, lines = run_reconciling(venue, tmp_path, bars=10)  # the restart makes it up; E-real comes
    assert venue.delivered
    assert any(cid in line and "filled-while-away" not in line and "while away" in line for line in lines)
    assert strategy.orders[0].filled_quantity == 5 and broker.book.positions["AAA"].quantity == 5
    assert len(_ignored(lines, cid)) == 1
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1
    strategy, broker, _ = run_reconciling(venue, tmp_path, bars=15)  # and a restart after it: the same
    assert strategy.orders[0].filled_quantity == 5 and broker.book.positions["AAA"].quantity == 5
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1


def test_a_late_real_execution_after_a_rest_view_fill_counts() -> None:
    """Only the runtime's own made-up end (:func:`~ml4t_live.book.made_up_fill_id`: the venue said
    "filled N", the executions out of reach) makes the book ignore later real executions. An
    Alpaca REST view's fill (the tracker's made-up ``<order id>:<cum>``) does not: order X (10) is
    Alpaca order A, A fills 4; a modify replaces A with B, and A fills 3 more in the GET/PATCH
    race; a REST view of B shows it filled (6 beyond the 4 the replace counted); A's late real
    execution then arrives. The venue filled 13: the book must say so (it said 10, 3 short for
    good, when any reconstructed OrderFilled ended the order for real executions)."""
    book = Book()
    book.add(Order("AAA", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=90.0, order_id="X"))
    book.apply(OrderPartiallyFilled("X", "A-e1", "AAA", OrderSide.BUY, 4, 89.0, WHEN, 0.0, 4))
    book.apply(OrderReplaced("X", limit_price=91.0))
    book.apply(OrderFilled("X", made_up_exec_id("B", 6), "AAA", OrderSide.BUY, 6, 91.0, WHEN, 0.0, 10,
                           reconstructed=True))  # fmt: skip
    book.apply(OrderPartiallyFilled("X", "A-e2", "AAA", OrderSide.BUY, 3, 89.0, WHEN, 0.0, 7))
    assert book.positions["AAA"].quantity == 13 and book.get("X").filled_quantity == 13


def test_a_late_real_execution_after_the_runtimes_made_up_fill_is_ignored_at_book_level() -> None:
    """The runtime's own made-up end (its id made by ``made_up_fill_id``) still stops real
    executions that come after it from counting the order again."""
    book = Book()
    book.add(Order("AAA", OrderSide.BUY, 5, OrderType.LIMIT, limit_price=90.0, order_id="Y"))
    book.apply(OrderFilled("Y", made_up_fill_id("Y"), "AAA", OrderSide.BUY, 5, 90.0, WHEN, 0.0, 5,
                           reconstructed=True))  # fmt: skip
    book.apply(OrderFilled("Y", "E-real", "AAA", OrderSide.BUY, 5, 89.5, WHEN, 1.0, 5))
    assert book.positions["AAA"].quantity == 5 and book.get("Y").filled_quantity == 5


def test_a_replaced_alpaca_orders_late_fill_after_a_rest_view_of_its_replacement_counts() -> None:
    """The Alpaca case through the tracker (the documented payloads,
    tests/resources/alpaca/alpaca_docs_examples.json): doc-1 (100) is Alpaca order A and fills 40;
    a modify replaces it with B (doc-1.r1, for the 60 left); A fills 30 more in the race; a REST
    view of B shows it filled (no execution at hand: the tracker's made-up ``<B id>:60``); A's
    late fill then comes on the stream. The book counts the 130 Alpaca filled."""
    update = ALPACA_DOCS["partial_then_fill"][0]
    a1, a2 = "0c5e4b9a-0000-4000-8000-0000000000a1", "0c5e4b9a-0000-4000-8000-0000000000a2"
    a = {**update["order"]}
    b = {**a, "id": "4f1e1d6c-0000-4000-8000-00000000000b", "client_order_id": "doc-1.r1", "qty": "60",
         "filled_qty": "60", "filled_avg_price": "179.5", "status": "filled", "replaces": a["id"]}  # fmt: skip
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.alias("doc-1.r1", "doc-1")
    book = Book()
    book.add(Order("AAPL", OrderSide.BUY, 100, order_id="doc-1"))
    events = tracker.on_trade_update(TradeUpdate(**{**update, "execution_id": a1}))
    tracker.carry_over(a["id"], b["id"])
    events += tracker.on_order_snapshot(AlpacaOrder(**b))
    late = {**update, "execution_id": a2, "qty": "30", "price": "179.2",
            "order": {**a, "filled_qty": "70", "filled_avg_price": "179.12"}}  # fmt: skip
    events += tracker.on_trade_update(TradeUpdate(**late))
    for event in events:
        book.apply(event)
    made_up = [e for e in events if isinstance(e, OrderFilled) and e.reconstructed]
    assert len(made_up) == 1 and made_up[0].quantity == 60  # the REST view of B
    assert [e.exec_id for e in events if isinstance(e, OrderPartiallyFilled)] == [a1, a2]
    assert book.positions["AAPL"].quantity == 130 and book.get("doc-1").filled_quantity == 130


def test_an_execution_that_applies_nothing_makes_no_latency_row() -> None:
    """The latency table has one row per fill the book applied: a REST view re-reporting a part
    already applied (nothing new) makes none (it made a second row of the part's quantity)."""
    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="lat")
    broker.connect(BacktestConfig())
    broker.begin_bar(bar(WHEN, {"AAA": 100.0}))
    order = broker.submit_order("AAA", 10)
    cid = order.order_id
    venue.events.put(OrderPartiallyFilled(cid, "E1", "AAA", OrderSide.BUY, 4, 100.0, WHEN, 1.0, 4))
    venue.events.put(OrderPartiallyFilled(cid, made_up_exec_id("V1", 4), "AAA", OrderSide.BUY, 4, 100.0, WHEN,
                                          0.0, 4, reconstructed=True))  # fmt: skip
    broker.settle(0)
    assert order.filled_quantity == 4
    assert [row["quantity"] for row in broker.take_latency()] == [4.0]
