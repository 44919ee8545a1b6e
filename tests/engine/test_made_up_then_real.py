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

from dataclasses import dataclass

import pytest
from ml4t.backtest import OrderStatus

from ml4t_live.events import OrderFilled
from tests.engine.test_cancel_resend import journal_of
from tests.engine.test_owed_executions import FilledSilently, _run
from tests.engine.test_unknown_lookup import WHEN


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
    strategy, broker, lines = _run(venue, tmp_path, bars=15)
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
    strategy, broker, _ = _run(venue, tmp_path, bars=20)
    assert broker.book.positions["AAA"].quantity == 5
    assert strategy.orders[0].filled_quantity == 5 and len(broker.get_fills()) == 1
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1


@pytest.mark.parametrize("cumulative", [True, False], ids=["cumulative", "no-cumulative"])
def test_the_real_execution_after_a_fill_made_up_at_a_restart_counts_once(tmp_path, cumulative):
    venue = RealLater(fill_on_wait=False, cumulative=cumulative, answer="fail", real_at=1e9)
    strategy, broker, _ = _run(venue, tmp_path, bars=3)  # its look-up fails: cancelling at the end
    cid = strategy.orders[0].order_id
    assert cid in broker.book.cancelling and not venue.delivered
    venue.answer, venue.real_at = "filled, no executions", 0.0
    strategy, broker, lines = _run(venue, tmp_path, bars=10)  # the restart makes it up; E-real comes
    assert venue.delivered
    assert any(cid in line and "filled-while-away" not in line and "while away" in line for line in lines)
    assert strategy.orders[0].filled_quantity == 5 and broker.book.positions["AAA"].quantity == 5
    assert len(_ignored(lines, cid)) == 1
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1
    strategy, broker, _ = _run(venue, tmp_path, bars=15)  # and a restart after it: the same
    assert strategy.orders[0].filled_quantity == 5 and broker.book.positions["AAA"].quantity == 5
    _, positions, fills = journal_of(tmp_path)
    assert positions == {"AAA": 5.0} and fills == 1
