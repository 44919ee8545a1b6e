"""A warm restart whose read of what a listed order filled while away fails: the listed order is
cancelled when it asks more than the book's order, counting as filled before it the book's
fills less the listed order's own fills the journal holds (its executions journaled under its
venue order id), not less what the venue lists it filled.

Before, the base was ``book filled - listed own filled``: a replacement the journal never
recorded (a grow the venue took just before a kill -9) that filled while away hid the book's
fills of the order it replaced (3 - 3 = 0, 0 + 20 <= 20: left working, 23 bought of 20), and a
listing lagging a fill the journal holds made a correctly sized order look too big (2 - 0 + 4 >
5: cancelled). The orders before the listed one: partial fills and a chain of three, the "at
least N filled before it" number said (mutant M1 of review rev-awayfix, ``before = 0``, passed
every test before). A real journal (SQLite in tmp_path) and Book; the gateway is a stand-in for
the remote side whose reads all fail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ml4t.backtest import Order, OrderSide, OrderType

from ml4t_live.book import Book
from ml4t_live.errors import VenueError
from ml4t_live.events import OrderPartiallyFilled
from ml4t_live.journal import Journal
from ml4t_live.protocols import VenueOrder
from ml4t_live.restart_reads import AwayReads

T = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
CID = "s-b1"


class _Unreadable:
    """The venue's side: every read of what the order filled while away fails; cancels taken."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.told: dict[str, float] = {}

    def executions_since(self, cid, filled, avg_price=None):
        raise VenueError("no answer (503)")

    def cancel(self, cid):
        self.cancelled.append(cid)

    def holds_own(self, cid, quantity):
        self.told[cid] = quantity


@pytest.fixture
def journal(tmp_path):
    j = Journal.open(tmp_path / "j.sqlite")
    yield j
    j.close()


def _restart(journal: Journal, quantity: float, fills: list[tuple[str, float]], listed: VenueOrder):
    """The book's order ``quantity`` with ``fills`` (venue order id, quantity) applied and
    journaled, then the restart's read of ``listed``, failing."""
    book = Book()
    book.add(Order(asset="AAA", side=OrderSide.BUY, quantity=quantity, order_type=OrderType.LIMIT,
                   limit_price=50.0, order_id=CID))  # fmt: skip
    cumulative = 0.0
    for i, (venue_id, qty) in enumerate(fills):
        cumulative += qty
        event = OrderPartiallyFilled(CID, f"x{i}", "AAA", OrderSide.BUY, qty, 50.0, T, cumulative_quantity=cumulative,
                                     venue_order_id=venue_id)  # fmt: skip
        book.apply(event)
        journal.append_event(1, event)
    gateway = _Unreadable()
    reads = AwayReads(gateway, book, lambda e: None, journal=lambda: journal)
    assert reads.read_at_restart([listed]) is True  # (the read failed: tried again)
    return gateway


def _listed(venue_id: str, quantity: float, own_filled: float) -> VenueOrder:
    return VenueOrder(CID, venue_id, "AAA", OrderSide.BUY, quantity, own_filled, OrderType.LIMIT, "open", 50.0)


def _warning(logs):
    (warning,) = [m for level, m in logs if level == "WARNING" and "asks more than the book's order" in m]
    return warning


def test_a_change_never_journaled_whose_replacement_filled_while_away_is_cancelled(journal, logs):
    """Original filled 3 (journaled); a grow 20 -> 23 the journal never recorded: its replacement
    asks 20 and filled 3 while away. None of the book's 3 are the replacement's own: at least 3
    before it, 3 + 20 > 20. Failed before: 3 - 3 = 0, left working."""
    gateway = _restart(journal, 20, [("A0", 3)], _listed("A1", 20, 3))
    assert gateway.cancelled == [CID]
    assert "20 on top of at least 3 filled before it; the book's order is 20" in _warning(logs)
    assert gateway.told == {CID: 0.0}  # (the gateway's provisional base: 3 - 0)


def test_a_listing_lagging_a_journaled_fill_leaves_a_correctly_sized_order_working(journal, logs):
    """Book order 5 with 2 filled: the original 1, its replacement (asks 4) 1, streamed and
    journaled; the listing lags that fill (0 of 4). The journal holds 1 of the replacement: 1
    before it, 1 + 4 = 5. Failed before: 2 - 0 + 4 = 6 > 5, cancelled."""
    gateway = _restart(journal, 5, [("A0", 1), ("A1", 1)], _listed("A1", 4, 0))
    assert gateway.cancelled == []
    assert gateway.told == {CID: 1.0}


def test_partial_fills_of_a_chain_of_three_count_before_the_listed_order(journal, logs):
    """Book order 10: A0 filled 2, A1 3, then A2 (journaled 1 of its own) listed asking 6, 2 of
    its own filled: at least 5 before it, 5 + 6 > 10: cancelled, the number said."""
    gateway = _restart(journal, 10, [("A0", 2), ("A1", 3), ("A2", 1)], _listed("A2", 6, 2))
    assert gateway.cancelled == [CID]
    assert "6 on top of at least 5 filled before it; the book's order is 10" in _warning(logs)


def test_a_chain_of_three_asking_the_book_s_order_is_left_working(journal, logs):
    gateway = _restart(journal, 10, [("A0", 2), ("A1", 3), ("A2", 1)], _listed("A2", 5, 2))
    assert gateway.cancelled == []


def test_a_re_reported_execution_of_the_listed_order_counts_once(journal, logs):
    """Book order 8: A0 filled 2, A1 (listed asking 6, 2 of its own) 2, journaled twice (a
    reconstructed re-report of the same cumulative span, which the book ignored): 2 of its own,
    not 4; at least 2 before it, 2 + 6 = 8: left working. (The re-report is journaled after the
    fills it re-reports, as the runtime's book met it: the warm restart rebuilds the book from the
    journal in that order.)"""
    fills = [("A0", 2, 2, False), ("A1", 2, 4, False), ("A1", 2, 4, True)]
    gateway, book = _restart_with(journal, 8, fills, _listed("A1", 6, 2))
    assert book.get(CID).filled_quantity == 4
    assert gateway.cancelled == []
    assert gateway.told == {CID: 2.0}


def test_a_partly_new_re_report_of_the_listed_order_credits_only_what_the_book_applied(journal, logs):
    """Review rev-awayfix3 (p_partial.py). Book order 10: A0 filled 2, A1 1 and 1 under real ids,
    then a REST view of A1 at cumulative 5 with quantity 3, of which the book applies only the 1
    beyond its 4. A1 is listed asking 9 (a grow the journal never recorded): A1's own are 3, not
    5; at least 2 before it, 2 + 9 > 10: cancelled. (Crediting the view's whole quantity: 0
    before it, left working while the chain asks 11 of 10.)"""
    fills = [("A0", 2, 2, False), ("A1", 1, 3, False), ("A1", 1, 4, False), ("A1", 3, 5, True)]
    gateway, book = _restart_with(journal, 10, fills, _listed("A1", 9, 3))
    assert book.get(CID).filled_quantity == 5
    assert gateway.cancelled == [CID]
    assert "9 on top of at least 2 filled before it; the book's order is 10" in _warning(logs)


def test_an_execution_s_venue_order_id_is_journaled(journal):
    event = OrderPartiallyFilled(CID, "x", "AAA", OrderSide.BUY, 1, 50.0, T, cumulative_quantity=1,
                                 venue_order_id="A7")  # fmt: skip
    journal.append_event(1, event)
    (back,) = journal.fill_events([CID])
    assert back.venue_order_id == "A7"


def _restart_with(journal: Journal, quantity: float, fills, listed: VenueOrder):
    """As :func:`_restart`, the executions given as the runtime journals them: (venue order id,
    quantity, cumulative quantity in the count base the runtime used then, reconstructed)."""
    book = Book()
    book.add(Order(asset="AAA", side=OrderSide.BUY, quantity=quantity, order_type=OrderType.LIMIT,
                   limit_price=50.0, order_id=CID))  # fmt: skip
    for i, (venue_id, qty, cumulative, reconstructed) in enumerate(fills):
        event = OrderPartiallyFilled(CID, f"x{i}", "AAA", OrderSide.BUY, qty, 50.0, T, cumulative_quantity=cumulative,
                                     reconstructed=reconstructed, venue_order_id=venue_id)  # fmt: skip
        book.apply(event)
        journal.append_event(1, event)
    gateway = _Unreadable()
    reads = AwayReads(gateway, book, lambda e: None, journal=lambda: journal)
    assert reads.read_at_restart([listed]) is True  # (the read failed: tried again)
    return gateway, book


def test_a_second_restart_counts_the_listed_order_s_fills_the_book_applied(journal, logs):
    """Review rev-awayfix2 (p_span.py case B). Book order 10: A0 filled 2, replaced (journaled)
    by A1 asking 8; killed; A1 fills 3 while away. Restart 2: the provisional base 2, the walk
    503, the stream reports A1's 4th on it (cumulative 6); the next read brings A1's 1..3 at 4, 5,
    6 (shifted by the fill since the restart); A1's 5th on the real base (7). Killed; restart 3
    lists A1 (8 asked, 5 filled), its read failing. The book holds 7: A0's 2 and A1's 5, so 2
    before A1, 2 + 8 = 10: left working, A1's own 5 told as the provisional base. Failed before
    (the span of A1's cumulative quantities, 7 - 3 = 4 mixing count bases): at least 3 before
    it, 3 + 8 > 10: cancelled."""
    fills = [("A0", 2, 2, False), ("A1", 1, 6, False), ("A1", 1, 4, False), ("A1", 1, 5, False),
             ("A1", 1, 6, False), ("A1", 1, 7, False)]  # fmt: skip
    gateway, book = _restart_with(journal, 10, fills, _listed("A1", 8, 5))
    assert book.get(CID).filled_quantity == 7
    assert gateway.cancelled == []
    assert gateway.told == {CID: 5.0}


def test_a_gap_between_journaled_spans_is_not_counted_as_the_listed_order_s(journal, logs):
    """p_span.py case A: A0 filled 1; a grow never journaled replaced it by A1 asking 20; A1's
    fills the book got, journaled on provisional bases (cumulative 4, then 7), with fills the book
    never got between them. The book holds 3 (A0's 1, A1's 2): at least 1 before A1, 1 + 20 > 20:
    cancelled, A1's own 2 told. (The span rule counted 7 - 3 = 4 of A1's own: 3 - 4 < 0 before it.)"""
    gateway, book = _restart_with(journal, 20, [("A0", 1, 1, False), ("A1", 1, 4, False), ("A1", 1, 7, False)],
                                  _listed("A1", 20, 6))  # fmt: skip
    assert book.get(CID).filled_quantity == 3
    assert gateway.cancelled == [CID]
    assert gateway.told == {CID: 2.0}


def test_an_old_journal_s_executions_count_as_the_listed_order_s_up_to_what_it_lists_filled(journal, logs):
    """A journal written before executions carried their Alpaca id: book order 10, 3 filled,
    journaled without an id; Alpaca lists the order (never replaced) asking 10, 3 filled. Those 3
    are its own: 0 before it, 0 + 10 = 10: left working, 3 told. (Mutant E of review rev-awayfix2,
    the unattributed executions not counted, passed every test: 3 + 10 > 10, cancelled.)"""
    gateway = _restart(journal, 10, [("", 3)], _listed("A0", 10, 3))
    assert gateway.cancelled == [] and gateway.told == {CID: 3.0}


def test_an_old_journal_s_executions_count_at_most_what_the_listed_order_lists_filled(journal, logs):
    """The same journal; Alpaca lists a replacement asking 9 with 1 filled of its own: at most 1
    of the 3 counts as its own, at least 2 before it, 2 + 9 > 10: cancelled."""
    gateway = _restart(journal, 10, [("", 3)], _listed("A1", 9, 1))
    assert gateway.cancelled == [CID] and gateway.told == {CID: 1.0}
    assert "9 on top of at least 2 filled before it; the book's order is 10" in _warning(logs)
