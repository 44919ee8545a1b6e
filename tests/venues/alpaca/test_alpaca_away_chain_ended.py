"""A replacement whose chain cannot be read at a warm restart and that the trade stream then
reports filled (so the book no longer has it open) before the read is tried again: what it filled
while away still reaches the book.

Run 1 as in test_alpaca_replacement_away.py (20 AAPL limit, 3 filled, re-priced: r1 filled 3 of
its 17); four bars pass while away (r1 at 15), the restart's walk of the chain gets no answer (the
``lookup_error`` fault), then run 2's first bar fills r1's last 2 (the stream's OrderFilled ends
the order in the book) before the first reconciliation reads the chain again. Before, the entry
was dropped once the order was no longer open: the 12 filled while away never reached the book
(8 in the book, 20 at Alpaca) and the reconciliation called the difference external. Real
alpaca-py against the simulated Alpaca.
"""

from __future__ import annotations

import pytest
from alpaca_helpers import collect, inject, of
from runtime_support import (
    BuyThenReprice,
    filling_sim,
    reported_external,
    repriced_then_away,
    run_runtime,
    trading_client,
)
from unknown_support import limit

from ml4t_live.errors import VenueError
from ml4t_live.events import OrderCancelled
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

ATTEMPTS = 2  # run 2's max_request_attempts: what one read retries


def test_a_chain_read_again_after_the_stream_ended_the_order_still_brings_its_fills_while_away(tmp_path):
    sim = filling_sim(14)
    lines: list[str] = []
    try:
        cid = repriced_then_away(sim, tmp_path, BuyThenReprice(), bars_away=4)
        assert trading_client(sim).get_order_by_client_id(f"{cid}.r1").filled_qty == "15"
        sim.inject("lookup_error", count=ATTEMPTS)  # the restart's walk from the order under our id
        second = run_runtime(sim, tmp_path, 11, lines, BuyThenReprice(), strategy_id="awayr",
                             max_request_attempts=ATTEMPTS)  # fmt: skip
        venue = sim.fills()
    finally:
        sim.close()
    order = second.book.get(cid)
    assert sum(v.qty for v in venue) == 20
    assert order.filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
    assert all(second.book.seen(v.execution_id) for v in venue)
    assert any(f"what order {cid} filled while away was read at last" in line for line in lines), lines
    assert not reported_external(lines) and not second.own.differences, lines


def test_an_order_the_last_listing_left_out_is_read_from_its_view_kept_or_is_unknown(
    sim: SimulatedAlpaca, gateway: AlpacaGateway
) -> None:
    """``executions_since`` of an order the last snapshot did not list: from the view listed
    when its chain could not be read (kept until a walk succeeds), else a VenueError (unknown).
    Before, it answered [] (nothing filled) for any order not in the last listing."""
    gateway.place(limit(50.0))
    gateway.modify(limit(51.0))  # replaced by t-a.r1 (working)
    gateway.snapshot()  # lists t-a.r1 under t-a
    inject(sim, "lookup_error", count=4)  # max_request_attempts: the walk gets no answer
    with pytest.raises(VenueError):
        gateway.executions_since("t-a", 0.0)
    gateway.cancel("t-a")
    collect(gateway.events, lambda seen: bool(of(OrderCancelled, seen, "t-a")))
    gateway.snapshot()  # no longer lists it
    assert gateway.executions_since("t-a", 0.0) == []  # from the view kept: the walk succeeds
    with pytest.raises(VenueError, match="did not list order t-a"):  # read: the view is gone
        gateway.executions_since("t-a", 0.0)
