"""The runtime's many cancels through a gateway's ``cancel_many`` (one call, the waits overlapping:
IB's adapter), handled per order as one ``cancel`` each would be.

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar and the next bar cancels its 3 working limit orders; the venue (FakeVenue with a
``cancel_many``) answers the batch as scripted: the first order filled before its cancel (refused,
its fill queued), the second's cancel taken and confirmed at once (IB's answer came while the batch
waited), the third's failed (the bridge call timed out); or the whole batch fails.
"""

from __future__ import annotations

from ml4t.backtest import OrderStatus

from ml4t_live.errors import BridgeTimeout
from ml4t_live.venue_rails import HALT_CANCEL
from tests.engine.cancel_support import run
from tests.engine.cancel_venues import BatchVenue


def _failed_warnings(lines, cid):
    return [line for line in lines if line.startswith("WARNING") and f"cancel of {cid} failed" in line]


def test_one_batch_a_fill_a_confirmed_cancel_and_a_failure_each_handled_as_a_single_cancel(tmp_path):
    venue = BatchVenue(fill_on_wait=False, lost=0, script={0: "fill", 2: "fail"})
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep")
    filled, taken, failed = strategy.orders
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches == [ids, [failed.order_id]]  # the halt's one call; the failed one at the next bar
    assert venue.cancelled == [taken.order_id, failed.order_id]  # no single cancel, no repeat
    assert filled.status is OrderStatus.FILLED and filled.filled_quantity == 5.0
    assert broker.book.positions["AAA"].quantity == 5.0
    assert any(filled.order_id in line and "its own events say how it ended" in line for line in lines), lines
    # the runtime's cancel, recorded before the refusal's drain applied IB's confirmation (which
    # came in the same batch): before, the first order's drain ended it as "Cancelled at IB"
    assert taken.status is OrderStatus.CANCELLED and taken.cancellation_reason == HALT_CANCEL
    assert failed.status is OrderStatus.CANCELLED and len(_failed_warnings(lines, failed.order_id)) == 1
    assert broker.left_at_venue == [] and not broker.book.cancelling


def test_a_batch_that_fails_as_a_whole_leaves_every_order_working_and_tried_again(tmp_path):
    venue = BatchVenue(fill_on_wait=False, lost=0, whole=BridgeTimeout("ib-session: did not finish within 8s"))
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep")
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches == [ids, ids]  # failed (never taken as cancelled), then tried again together
    for cid in ids:
        assert len(_failed_warnings(lines, cid)) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED and o.cancellation_reason == HALT_CANCEL for o in strategy.orders)
    assert broker.left_at_venue == [] and not broker.book.cancelling
