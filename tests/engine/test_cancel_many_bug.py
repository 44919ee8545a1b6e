"""A bug inside a gateway's ``cancel_many`` (not the venue's answer) must neither take the other
orders' cancels with it nor end the run, nor be swallowed: the order it hit is cancelling (CANCELLED
for the strategy: the cancel was asked for), its first check is due at once, and the check sends the
cancel again while the venue lists it working. Before, the bug went out of ``cancel_each`` and
failed the run (a halt's cancels, the end of the run, ``cancel-all``).

Same setting as tests/engine/test_cancel_many.py (the operator halts the strategy during its first
bar; the next bar cancels its 3 working limit orders in one ``cancel_many``), but each bar moves the
fake clock on 10 s, not 30 s: a cancel's first check is due 30 s after it (``RESEND_AFTER``), and
"at once" (the next bar's check) can be told from it. Or no halt: the end of the run cancels."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml4t.backtest import OrderStatus, OrderType, Strategy

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.errors import CancelUnsure, VenueError
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venue_broker import VenueBroker
from ml4t_live.venue_rails import HALT_CANCEL
from tests.engine.cancel_support import drive
from tests.engine.cancel_venues import BatchVenue


@dataclass
class TimedBatches(BatchVenue):
    """BatchVenue that notes the (fake) time of each batch."""

    batch_times: list[float] = field(default_factory=list)

    def cancel_many(self, client_order_ids):
        self.batch_times.append(self.clock.now - 1000.0)
        return super().cancel_many(client_order_ids)


class Limits(Strategy):
    """3 limit buys (never reached) on the first bar, then (``halt``) the operator halts the
    strategy; each bar moves the clock on 10 s."""

    def __init__(self, journal, clock, halt: bool) -> None:
        self.journal, self.clock, self.halt = journal, clock, halt
        self.orders = []

    def on_data(self, timestamp, data, context, broker):
        if not self.orders:
            self.orders = [broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=90.0 - i)
                           for i in range(3)]  # fmt: skip
            if self.halt:
                set_trading_state(self.journal, "HALTED", "operator")
        self.clock.now += 10.0


def run(venue, tmp_path, *, halt: bool = True, end: str = "keep"):
    strategy = Limits(tmp_path / "fake-DU0001-cr.journal", venue.clock, halt)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)  # first check 30 s after a cancel
    return strategy, broker, drive(strategy, broker, 6, end)


def _unsure_warnings(lines, cid, bug):
    return [line for line in lines if line.startswith("WARNING") and f"the cancel of {cid} raised a bug ({bug})"
            in line and "it is cancelling" in line]  # fmt: skip


def _asked_again(lines, cid):
    return [line for line in lines if line.startswith("WARNING") and cid in line
            and "cancel asked again (1 of at most 5" in line]  # fmt: skip


@dataclass
class OneBug(TimedBatches):
    """BatchVenue whose first batch gives the second order CancelUnsure (the IB adapter's answer
    for an order whose cancel raised a bug): nothing was sent for it, the venue works it on."""

    bugged: bool = False

    def cancel_many(self, client_order_ids):
        if not self.bugged:
            self.bugged = True
            first, second, *rest = client_order_ids
            out = super().cancel_many([first, *rest])
            unsure = CancelUnsure.of_bug(f"cancel of {second} raised KeyError: 'permId' (a bug in the IB adapter)",
                                         KeyError("permId"))  # fmt: skip
            return {**out, second: unsure}
        return super().cancel_many(client_order_ids)


def test_cancel_unsure_of_a_bug_says_the_text_and_keeps_the_bug_as_its_cause():
    bug = TypeError("'NoneType' object is not subscriptable")
    unsure = CancelUnsure.of_bug("cancel of b2 raised TypeError: ...; whether it was sent is unknown", bug)
    assert str(unsure) == "cancel of b2 raised TypeError: ...; whether it was sent is unknown"
    assert unsure.__cause__ is bug and isinstance(unsure, VenueError)


def test_an_order_whose_cancel_raised_a_bug_is_cancelling_and_its_cancel_sent_again_at_the_next_check(tmp_path):
    venue = OneBug(fill_on_wait=False, lost=0)
    strategy, broker, lines = run(venue, tmp_path)
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches[0] == [ids[0], ids[2]] and venue.batches[1] == [ids[1]], venue.batches
    assert venue.batch_times[:2] == [10.0, 20.0]  # the halt's; the next bar's check, not 30 s later
    assert all(o.status is OrderStatus.CANCELLED and o.cancellation_reason == HALT_CANCEL for o in strategy.orders)
    assert len(_unsure_warnings(lines, ids[1], "KeyError")) == 1, lines
    assert len(_asked_again(lines, ids[1])) == 1, lines  # a followed cancel's repeat, not the halt's next call
    assert broker.left_at_venue == [] and not broker.book.cancelling  # the repeat was taken


def test_a_batch_that_raises_a_bug_fails_no_run_and_each_order_is_followed(tmp_path):
    venue = TimedBatches(fill_on_wait=False, lost=0, whole=TypeError("'NoneType' object is not subscriptable"))
    strategy, broker, lines = run(venue, tmp_path)
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches == [ids, ids]  # the halt's batch (the bug), then the next check sends them again
    assert venue.batch_times == [10.0, 20.0]  # at once, not 30 s later
    errors = [line for line in lines if line.startswith("ERROR") and "raised TypeError" in line]
    assert len(errors) == 1, lines
    for cid in ids:
        assert len(_unsure_warnings(lines, cid, "TypeError")) == 1, lines
        assert len(_asked_again(lines, cid)) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED and o.cancellation_reason == HALT_CANCEL for o in strategy.orders)
    assert broker.left_at_venue == [] and not broker.book.cancelling


def test_a_batch_that_raises_a_bug_at_the_end_of_the_run_is_asked_again_there_not_left_working(tmp_path):
    venue = TimedBatches(fill_on_wait=False, lost=0, whole=TypeError("'NoneType' object is not subscriptable"))
    strategy, broker, lines = run(venue, tmp_path, halt=False, end="cancel")
    ids = [o.order_id for o in strategy.orders]
    assert venue.batches == [ids, ids]  # the end's batch (the bug), then its final check sends them again
    for cid in ids:
        assert len(_unsure_warnings(lines, cid, "TypeError")) == 1, lines
    assert all(o.status is OrderStatus.CANCELLED for o in strategy.orders)
    assert broker.left_at_venue == [] and not broker.book.cancelling
