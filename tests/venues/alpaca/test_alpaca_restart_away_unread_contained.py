"""A change Alpaca took just before a kill -9 that the journal never recorded (a grow 20 -> 30:
``after_change``), then a warm restart whose read of what the order filled while away never gets
an answer (every look-up by client order id answers 503 for the whole run), so the chain is never
walked and the restart's check of it against the book's 20 is never made.

The listing alone shows the listed replacement (``qty`` 27) asks more than the book's whole
order: the restart cancels it at once (no cut can be sized safely without the read: the
replacement fills on between the listing and a cut's read, which the restart's provisional count
of the chain does not hold): the strategy's order ends cancelled with what the book holds of it
(here 6 of the 9 bought: the replacement's 3 while away are never read), as the WARNING says.
Failed before: the replacement kept buying: 30 bought, the book's order of 20 with 27 filled,
only the reads' WARNINGs. Real alpaca-py against the simulated Alpaca, through the runtime and its
journal (change_crash_support.py's run 1).
"""

from __future__ import annotations

import pytest
from change_crash_support import NEVER, crash_at_change, venue_orders
from crash_support import ResizeOnceThenReprice
from ml4t.backtest import OrderStatus
from runtime_support import filling_sim, run_runtime


@pytest.mark.parametrize("grown", [30.0, 23.0])
def test_a_crashed_grow_whose_away_read_never_answers_is_cut_down_to_the_book(tmp_path, grown):
    """``grown`` 23: the replacement asks 20, the book's order, and its own 3 filled while away
    equal the book's 3 of the original: failed before with 23 bought (3 - 3 = 0 before it, 0 +
    20 <= 20: left working, no WARNING)."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, grown)  # (a bar while away: the replacement fills 3)
        sim.inject("lookup_error", status=503, count=400)
        second = run_runtime(sim, tmp_path, 19, lines, ResizeOnceThenReprice(grown, NEVER), strategy_id="resize")
        orders = venue_orders(sim)
        bought = sum(f.qty for f in sim.fills())
    finally:
        sim.close()
    (cid,) = [c for c in orders if ".r" not in c]
    order = second.book.get(cid)
    assert bought <= 20 and orders[f"{cid}.r1"][0] == "canceled", (bought, orders)
    assert order.quantity == 20 and order.filled_quantity <= bought, (order.quantity, order.filled_quantity)
    # the book's order ends cancelled with what the book holds (run 1's 3, the 3 the stream reported
    # since the restart), not the 3 the replacement bought while away: no read ever succeeded
    assert order.status is OrderStatus.CANCELLED and (order.filled_quantity, bought) == (6, 9), order
    (contained,) = [line for line in lines if "asks more than the book's order" in line]
    asks = f"{grown - 3:g} on top of at least 3 filled before it"  # (the book's 3, all of the original)
    assert contained.startswith("WARNING") and asks in contained, contained
    assert "cancelled" in contained and "the book's order is 20" in contained, contained
    assert "ends cancelled with what the book holds of it" in contained and "until a read succeeds" in contained
    (external,) = [line for line in lines if "end of run reconciliation: external AAPL" in line]
    assert "fills of its own the journal lacks" in external and "never traded by it" not in external, external
