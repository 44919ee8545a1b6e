"""A cancel that was sent but never confirmed survives a restart as "cancelling", not as "closed".

The first run cancels a working limit order (the end-of-run policy, an operator's halt, or the
strategy's own ``cancel_order``) and the venue never acts on that cancel (lost on the way); the
run ends without a confirmation (``keep``: a killed process leaves the journal so). The restart,
from the same journal, replays without divergence, finds the order still working at the venue and
sends its cancel again; the venue's answer (cancelled, or filled instead) ends it, exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from loguru import logger
from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import ConnectionFailed
from ml4t_live.journal.operator_access import read_only, set_trading_state
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_venues import LosesFirstCancel
from tests.support.fakes import ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


class OneLimit(Strategy):
    """A limit buy on its first bar; ``cancel_at``: the strategy cancels it itself at that bar;
    ``halt``: the operator halts the strategy during its first bar."""

    def __init__(self, cancel_at=None, halt=None):
        self.n = 0
        self.cancel_at = cancel_at
        self.halt = halt

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.order = broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0)
            if self.halt is not None:
                set_trading_state(self.halt, "HALTED", "operator")
        if self.n == self.cancel_at:
            assert broker.cancel_order(self.order.order_id)


def run(strategy, venue, n, state_dir, end):
    broker = VenueBroker(venue, strategy_id="cs", state_dir=state_dir)
    feed = ListFeed([bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)])
    LiveEngine(strategy, broker, feed, session_dir=False, settle_timeout=0.1, open_orders_at_end=end).run()
    return broker


def first_run(how, venue, tmp_path):
    """The cancel is made and journaled, the venue loses it; returns the order's client id. The
    end of run sends an unanswered cancel once more before it ends: the venue loses both."""
    venue.lost = 2 if how == "end of run" else 1
    path = tmp_path / "fake-DU0001-cs.journal"
    kw = {"cancel_at": 2} if how == "strategy" else {"halt": path} if how == "halt" else {}
    strategy = OneLimit(**kw)
    broker = run(strategy, venue, 3, tmp_path, "cancel" if how == "end of run" else "keep")
    cid = strategy.order.order_id
    assert venue.cancelled == [cid] * venue.lost and strategy.order.status is OrderStatus.CANCELLED
    assert [o.order_id for o in broker.left_at_venue] == [cid]  # unconfirmed when the run ended
    return cid, OneLimit(**{**kw, "halt": None})


def journal_of(tmp_path):
    journal = read_only(tmp_path / "fake-DU0001-cs.journal")
    try:
        return journal.intents(), journal.positions(), journal.fill_count()
    finally:
        journal.close()


HOW = ["end of run", "halt", "strategy"]


@pytest.mark.parametrize("how", HOW)
def test_a_lost_cancel_is_sent_again_after_a_restart_and_the_order_ends_cancelled(how, tmp_path):
    venue = LosesFirstCancel(fill_on_wait=False)
    cid, second = first_run(how, venue, tmp_path)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        broker = run(second, venue, 5, tmp_path, "cancel")  # no divergence: it would raise
    finally:
        logger.remove(sink)
    assert venue.cancelled == [cid] * (venue.lost + 1), "the restart did not send the lost cancel again"
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines), lines
    assert second.order.status is OrderStatus.CANCELLED and second.order.filled_quantity == 0
    assert broker.left_at_venue == [] and not broker.book.cancelling
    intents, positions, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled" and positions == {}


@pytest.mark.parametrize("how", HOW)
def test_a_fill_that_beats_the_repeated_cancel_is_applied_once(how, tmp_path):
    venue = LosesFirstCancel(fill_on_wait=False, fill_instead=True)
    cid, second = first_run(how, venue, tmp_path)
    broker = run(second, venue, 5, tmp_path, "cancel")
    assert venue.cancelled == [cid] * (venue.lost + 1)
    assert second.order.status is OrderStatus.FILLED and second.order.filled_quantity == 5
    assert broker.get_position("AAA").quantity == 5 and venue.positions["AAA"].quantity == 5
    intents, positions, fills = journal_of(tmp_path)
    assert intents[cid]["status"] == "filled" and positions == {"AAA": 5} and fills == 1
    assert broker.left_at_venue == []


def test_a_part_filled_while_the_cancel_was_lost_keeps_the_order_open_in_the_journal(tmp_path):
    venue = LosesFirstCancel(fill_on_wait=False, partial_first=True)
    cid, second = first_run("halt", venue, tmp_path)
    intents, positions, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "partial" and positions == {"AAA": 2}  # not ended: never confirmed
    broker = run(second, venue, 5, tmp_path, "cancel")
    assert venue.cancelled == [cid] * (venue.lost + 1)
    assert second.order.status is OrderStatus.CANCELLED and second.order.filled_quantity == 2
    assert broker.get_position("AAA").quantity == 2
    intents, positions, fills = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled" and positions == {"AAA": 2} and fills == 1


def test_a_repeated_cancel_that_fails_is_tried_again_at_the_next_reconciliation(tmp_path):
    venue = LosesFirstCancel(fill_on_wait=False)
    cid, second = first_run("end of run", venue, tmp_path)
    venue.raise_on["cancel"] = ConnectionFailed("not connected")  # the restart's cancel fails
    broker = run(second, venue, 5, tmp_path, "cancel")
    assert "cancel" not in venue.raise_on and venue.cancelled == [cid] * (venue.lost + 1)  # failed, then sent
    assert second.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
