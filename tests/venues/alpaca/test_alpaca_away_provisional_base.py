"""A replacement working at a warm restart whose chain walk gets no answer, filling while the walk
is unread: what it fills counts on top of what the book holds of the whole chain.

test_alpaca_away_retry_made_up.py's scenario (20 AAPL limit, 3 filled, re-priced: r1 filled 3 in
run 1) with no bar while away, the restart's walk failing (``lookup_error``, 2 reads of 2 tries),
every activities read failing and the trade updates late: r1 fills 3 more, reported as a REST view
of r1 (a made-up execution). Before, the tracker adopted r1 with base 0: the made-up part's
cumulative quantity was r1's own 6, the book (the original's 3 and r1's 3) held 6 and dropped it as
already applied; the later walk brought nothing back (book 17, Alpaca 20). Real alpaca-py against
the simulated Alpaca.
"""

from __future__ import annotations

from runtime_support import BuyThenReprice, filling_sim, run_runtime

ATTEMPTS = 2  # run 2's max_request_attempts: what one read retries


def test_a_fill_of_a_replacement_whose_chain_is_unread_reaches_the_book(tmp_path):
    sim = filling_sim(14)
    lines: list[str] = []
    try:
        run_runtime(sim, tmp_path, 3, [], BuyThenReprice(), strategy_id="awayr")
        (cid,) = [o["client_order_id"] for o in sim.orders() if ".r" not in o["client_order_id"]]
        sim.inject("lookup_error", count=2 * ATTEMPTS)  # the restart's walk and the first read again
        sim.inject("delay_trade_updates", seconds=1.5)
        sim.fail_activities(1000)
        second = run_runtime(sim, tmp_path, 5, lines, BuyThenReprice(), strategy_id="awayr",
                             max_request_attempts=ATTEMPTS)
        venue = sum(v.qty for v in sim.fills())
    finally:
        sim.close()
    assert any(f"what order {cid} filled while away was read at last" in line for line in lines), lines
    assert second.book.get(cid).filled_quantity == venue == second.book.positions["AAPL"].quantity
