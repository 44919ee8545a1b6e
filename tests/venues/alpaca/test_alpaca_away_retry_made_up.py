"""A chain unreadable at a warm restart, read again after the trade stream reported more fills of
the listed order, with the activities unreadable too: the part made up for what filled while away
reaches the book whole.

test_alpaca_away_chain_retry.py's scenario (20 AAPL limit, 3 filled, re-priced: r1 filled 3 in run
1 and 3 while away; the restart's walk gets no answer), every activities read failing, and r1
filling 3 more (the stream) before the first reconciliation reads the chain again. Before, the
read was computed against the last listing and the made-up part's cumulative quantity (what the
chain showed at the restart) was not beyond the book's (the stream's fill included): the book
trimmed it as already applied (9 where Alpaca had 12). Real alpaca-py against the simulated Alpaca.
"""

from __future__ import annotations

from runtime_support import BuyThenReprice, filling_sim, repriced_then_away, run_runtime

ATTEMPTS = 2  # run 2's max_request_attempts: what one read retries


def test_a_made_up_part_read_after_stream_fills_is_not_trimmed(tmp_path):
    sim = filling_sim(14)
    lines: list[str] = []
    try:
        cid = repriced_then_away(sim, tmp_path, BuyThenReprice())  # a bar while away
        sim.inject("lookup_error", count=ATTEMPTS)  # the restart's walk from the order under our id
        sim.fail_activities(1000)
        second = run_runtime(sim, tmp_path, 5, lines, BuyThenReprice(), strategy_id="awayr", max_request_attempts=ATTEMPTS)
        venue = sum(v.qty for v in sim.fills())
    finally:
        sim.close()
    assert any(f"what order {cid} filled while away was read at last" in line for line in lines), lines
    assert second.book.get(cid).filled_quantity == venue == second.book.positions["AAPL"].quantity
