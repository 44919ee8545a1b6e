"""A bug inside a gateway's single ``cancel`` (not the venue's answer; Alpaca's path, and every
repeat of a cancel on a gateway without ``cancel_many``) must neither end the run nor be swallowed,
as one inside IB's ``cancel_many`` (tests/engine/test_cancel_many_bug.py): the runtime's cancel it
hit leaves its order cancelling (CANCELLED for the strategy) with its first check due at once, and
a repeat it hit counts as a failed try, tried again at the next check. Before, the exception went
out of ``cancel_one`` and failed the run (a halt's cancels, the end of the run, a cancel check).

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar; the next bar (t=30 s of the fake clock) cancels its 3 working limit orders, one
``cancel`` each; each bar moves the clock on 30 s."""

from __future__ import annotations

from ml4t.backtest import OrderStatus

from ml4t_live.venue_rails import HALT_CANCEL
from tests.engine.cancel_support import run
from tests.engine.cancel_venues import BugOnCancel


def _said(lines, cid, level, words):
    return [line for line in lines if line.startswith(level) and cid in line and words in line]


def test_a_runtime_cancel_that_raises_a_bug_leaves_its_order_cancelling_and_the_next_check_sends_it_again(tmp_path):
    venue = BugOnCancel(fill_on_wait=False, lost=0, bug_at=1)
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep")
    ids = [o.order_id for o in strategy.orders]
    assert venue.times[:3] == [30.0, 30.0, 30.0] and venue.cancelled[:2] == ids[1:]  # the halt's 3
    assert venue.cancelled[2:] == [ids[0]] and venue.times[3] == 60.0  # the first check, at once
    assert len(_said(lines, ids[0], "ERROR", "raised TypeError")) == 1, lines
    assert len(_said(lines, ids[0], "WARNING", "raised a bug (TypeError)")) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED and o.cancellation_reason == HALT_CANCEL for o in strategy.orders)
    assert broker.left_at_venue == [] and not broker.book.cancelling  # the repeat was taken


def test_a_repeated_cancel_that_raises_a_bug_is_a_failed_try_and_tried_again(tmp_path):
    venue = BugOnCancel(fill_on_wait=False, lost=1, bug_at=2)
    strategy, broker, lines = run(venue, 6, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    # the halt's cancel (30 s) is lost; its repeat at the first check (60 s) raises the bug; the
    # next check (120 s) sends it again and the venue confirms it
    assert venue.times == [30.0, 60.0, 120.0], venue.times
    assert len(_said(lines, cid, "ERROR", "raised TypeError")) == 1, lines
    assert len(_said(lines, cid, "WARNING", "repeated cancel of")) == 1, lines
    assert strategy.orders[0].status is OrderStatus.CANCELLED
    assert broker.left_at_venue == [] and not broker.book.cancelling
