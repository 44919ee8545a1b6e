"""The repeats of unanswered cancels leave together through a gateway's ``cancel_many`` (IB's),
each order's outcome handled as its single repeat's, within the check's budget.

Same setting as tests/engine/test_cancel_many.py: the operator halts the strategy during its first
bar and the next bar (t=30 s) cancels its 3 working limit orders in one ``cancel_many`` call; the
venue (FakeVenue with a ``cancel_many``) takes those cancels and loses them (the orders keep
working, listed). The checks after 30 s send them again: before, one ``cancel`` at a time, each
waiting for IB's answer (a silent IB: one ``cancel_wait`` each, the in-run budget letting only a
few out, the end of a run waiting N of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml4t.backtest import OrderStatus

from tests.engine.cancel_support import run
from tests.engine.cancel_venues import BatchVenue
from tests.engine.fake_clock import Clock


@dataclass
class LosesBatches(BatchVenue):
    """The first ``lose`` batches' cancels are taken and lost (the orders keep working, listed);
    later batches follow ``script`` (BatchVenue's). Each batch takes ``wait`` seconds of ``timer``
    (IB's one ``cancel_wait`` for the whole batch when IB stays silent)."""

    lose: int = 1
    wait: float = 2.0
    timer: Clock = field(default_factory=Clock)

    def cancel_many(self, client_order_ids: list[str]) -> dict[str, Exception | None]:
        self.timer.now += self.wait
        if len(self.batches) >= self.lose:
            return super().cancel_many(client_order_ids)
        self.batches.append(list(client_order_ids))
        return dict.fromkeys(client_order_ids, None)


def _lines(lines: list[str], cid: str, text: str, level: str = "WARNING") -> list[str]:
    return [line for line in lines if line.startswith(level) and cid in line and text in line]


def test_one_checks_repeats_go_in_one_call_each_outcome_handled_as_a_single_repeat(tmp_path):
    venue = LosesBatches(fill_on_wait=False, lost=0, script={0: "fill", 2: "fail"})
    strategy, broker, lines = run(venue, 5, tmp_path, n=3, end="keep")
    filled, taken, failed = strategy.orders
    ids = [o.order_id for o in strategy.orders]
    # the halt's batch (t=30, lost); the check at t=60: the 3 repeats in ONE call (before: one
    # ``cancel`` each, venue.batches == [ids]); the failed one again at its next check (t=120)
    assert venue.batches == [ids, ids, [failed.order_id]], venue.batches
    assert venue.times == []  # no single cancel
    # refused (the order filled first): said once, the fill applied once, followed no more
    assert len(_lines(lines, filled.order_id, "the cancel asked again (1 of at most 5) was refused")) == 1, lines
    assert filled.status is OrderStatus.FILLED and filled.filled_quantity == 5.0
    assert broker.book.positions["AAA"].quantity == 5.0
    # taken: the venue's confirmation ended it
    assert len(_lines(lines, taken.order_id, "cancel asked again (1 of at most 5;")) == 1, lines
    assert taken.status is OrderStatus.CANCELLED
    # failed: warned once, a try (not logged as sent), tried again at its next check and taken
    assert len(_lines(lines, failed.order_id, f"the repeated cancel of {failed.order_id} failed")) == 1, lines
    assert len(_lines(lines, failed.order_id, "cancel asked again (1 of at most 5;")) == 1, lines
    assert failed.status is OrderStatus.CANCELLED
    assert venue.cancelled == [taken.order_id, failed.order_id]
    assert broker.left_at_venue == [] and not broker.book.cancelling and not broker.cancel_resends.failed


def test_a_check_sends_one_batch_of_at_most_at_once_and_carries_the_rest_when_its_budget_is_spent(tmp_path):
    venue = LosesBatches(fill_on_wait=False, lose=99, wait=6.0)  # each batch spends the 5 s budget
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep", timer=venue.timer, at_once=2)
    a, b, c = (o.order_id for o in strategy.orders)
    # halt (t=30); t=60: a batch of 2, c carried; t=90: c; the end (t=120): a and b, 60 s after their check
    assert venue.batches == [[a, b, c], [a, b], [c], [a, b]], venue.batches
    carried = [line for line in lines if "carried to the next check" in line]
    assert len(carried) == 1 and c in carried[0] and a not in carried[0], carried
    assert [o.order_id for o in broker.left_at_venue] == [a, b, c]


def test_the_end_of_a_run_sends_every_batch_whatever_the_budget(tmp_path):
    venue = LosesBatches(fill_on_wait=False, lose=99, wait=6.0)
    strategy, broker, lines = run(venue, 2, tmp_path, n=3, end="cancel", timer=venue.timer, at_once=2, after=100.0)
    a, b, c = (o.order_id for o in strategy.orders)
    # the halt's batch (t=30), none due in the run (after=100 s); the end's final check: both
    # batches, though the first spent the budget
    assert venue.batches == [[a, b, c], [a, b], [c]], venue.batches
    assert not [line for line in lines if "carried to the next check" in line]
    for cid in (a, b, c):
        assert len(_lines(lines, cid, "(end of run) was never confirmed")) == 1, lines
    assert [o.order_id for o in broker.left_at_venue] == [a, b, c]
