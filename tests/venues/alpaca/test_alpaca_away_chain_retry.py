"""A replacement working at a warm restart whose chain cannot be read at the restart: read again
at the next reconciliation, never taken as "nothing filled while away".

The scenario of test_alpaca_replacement_away.py (20 AAPL limit, 3 filled, re-priced: r1 filled 3
in run 1 and 3 while away), but at run 2's restart Alpaca answers the chain walk's first read
(``GET /v2/orders:by_client_order_id``) 503 for every attempt (the ``lookup_error`` fault). Before,
the walk's failure was a WARNING and an empty answer, read once: the 3 filled while away never
reached the book (9 at the second re-price instead of 12), and the tracker never learnt what r1's
predecessor filled (``continues``). Real alpaca-py against the simulated Alpaca.
"""

from __future__ import annotations

from runtime_support import (
    REPRICE_AGAIN,
    BuyThenReprice,
    filling_sim,
    repriced_then_away,
    run_runtime,
)

ATTEMPTS = 2  # run 2's max_request_attempts: what one read retries


def test_a_chain_unreadable_at_the_restart_is_read_at_the_next_reconciliation(tmp_path):
    sim = filling_sim(14)
    lines: list[str] = []
    strategy = BuyThenReprice(reprice_again_at=REPRICE_AGAIN)
    try:
        cid = repriced_then_away(sim, tmp_path, BuyThenReprice(REPRICE_AGAIN))  # a bar while away
        away = sim.fills()[-1]
        assert (away.client_order_id, away.cum_qty) == (f"{cid}.r1", 6)
        sim.inject("lookup_error", count=ATTEMPTS)  # the restart's walk from the order under our id
        second = run_runtime(sim, tmp_path, 11, lines, strategy, strategy_id="awayr", max_request_attempts=ATTEMPTS)
        venue = sim.fills()
        final = {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}
    finally:
        sim.close()
    assert strategy.filled_at_second == 12
    assert final[f"{cid}.r2"] == ("filled", "8", "8")  # r2 asked for what was left
    assert second.book.get(cid).filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in second.book.fills] == [v.qty for v in venue] == [3, 3, 3, 3, 3, 3, 2]
    assert all(second.book.seen(v.execution_id) for v in venue)
    assert any(line.startswith("WARNING") and f"could not read what order {cid} filled while away" in line
               for line in lines), lines  # fmt: skip
    assert any(f"what order {cid} filled while away was read at last" in line for line in lines), lines
