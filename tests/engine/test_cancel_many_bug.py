"""A bug inside a gateway's ``cancel_many`` (not the venue's answer) must neither take the other
orders' cancels with it nor end the run, nor be swallowed: the order it hit is cancelling (CANCELLED
for the strategy: the cancel was asked for), its first check is due at once, and the check sends the
cancel again while the venue lists it working. Before, the bug went out of ``cancel_each`` and
failed the run (a halt's cancels, the end of the run, ``cancel-all``).

Same setting as tests/engine/test_cancel_many.py: the operator halts the strategy during its first
bar; the next bar cancels its 3 working limit orders in one ``cancel_many``."""

from __future__ import annotations

from dataclasses import dataclass

from ml4t.backtest import OrderStatus

from ml4t_live.errors import CancelUnsure
from ml4t_live.venue_rails import HALT_CANCEL
from tests.engine.test_cancel_many import BatchVenue
from tests.engine.test_cancel_resend_bounds import run


@dataclass
class OneBug(BatchVenue):
    """BatchVenue whose first batch gives the second order CancelUnsure (the IB adapter's answer
    for an order whose cancel raised a bug): nothing was sent for it, the venue works it on."""

    bugged: bool = False

    def cancel_many(self, client_order_ids):
        if not self.bugged:
            self.bugged = True
            first, second, *rest = client_order_ids
            out = super().cancel_many([first, *rest])
            unsure = CancelUnsure(f"cancel of {second} raised KeyError: 'permId' (a bug in the IB adapter)")
            unsure.__cause__ = KeyError("permId")
            return {**out, second: unsure}
        return super().cancel_many(client_order_ids)


def test_an_order_whose_cancel_raised_a_bug_is_cancelling_and_its_cancel_sent_again_at_the_next_check(tmp_path):
    venue = OneBug(fill_on_wait=False, lost=0)
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep")
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches[0] == [ids[0], ids[2]] and venue.batches[1] == [ids[1]], venue.batches
    assert all(o.status is OrderStatus.CANCELLED and o.cancellation_reason == HALT_CANCEL for o in strategy.orders)
    said = [line for line in lines if ids[1] in line and "raised a bug (KeyError)" in line]
    assert len(said) == 1 and said[0].startswith("WARNING"), lines
    assert broker.left_at_venue == [] and not broker.book.cancelling  # the repeat was taken


def test_a_batch_that_raises_a_bug_fails_no_run_and_each_order_is_followed(tmp_path):
    venue = BatchVenue(fill_on_wait=False, lost=0, whole=TypeError("'NoneType' object is not subscriptable"))
    strategy, broker, lines = run(venue, 4, tmp_path, n=3, end="keep")
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches == [ids, ids]  # the halt's batch (the bug), then the next check sends them again
    errors = [line for line in lines if line.startswith("ERROR") and "raised TypeError" in line]
    assert len(errors) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED for o in strategy.orders)
    assert broker.left_at_venue == [] and not broker.book.cancelling
