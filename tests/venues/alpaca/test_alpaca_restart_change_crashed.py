"""A change Alpaca took just before a kill -9, which the journal never recorded.

Real alpaca-py against the simulated Alpaca, through the runtime and its journal. Run 1 (a child
process) places 20 AAPL (3 fill a bar) and, at the first bar with a fill, changes the order; it
dies (``after_change``: ``os._exit(137)`` as ``kill -9``) right after Alpaca answered the PATCH:
Alpaca's chain asks the new terms, the journal holds the old ones. Run 2 restarts warm on the same
journal; its replay reaches the interrupted bar, where the strategy makes the change again: refused
(what the order filled while away is not read yet), so the strategy's order keeps the book's terms.
The restart's check of the chain is made against them: Alpaca is brought back to them, so the
venue, the book and the strategy's view agree.
"""

from __future__ import annotations

import pytest
from change_crash_support import (
    HERE,
    NEVER,
    RESIZE_RUN_1,
    crash_at_change,
    error_lines,
    venue_orders,
)
from crash_support import ResizeOnceThenReprice, TrailBuyThenChange
from runtime_support import filling_sim, run_runtime, trading_client

from ml4t_live.sim.alpaca import SimulatedAlpaca
from tests.support.child_process import run_script


def _crash_then_restart(sim: SimulatedAlpaca, tmp_path, strategy, args: list[str], bars_away: int,
                        lines: list[str]):  # fmt: skip
    """Run 1 (``args``) killed at ``after_change``, ``bars_away`` bars, then run 2 (``strategy``):
    the bought quantity, Alpaca's orders, our order's id and run 2's broker."""
    killed = run_script(RESIZE_RUN_1, HERE, sim.key_id, sim.secret_key, sim.base_url, str(tmp_path), *args,
                        failpoint="after_change")  # fmt: skip
    assert killed.returncode == 137, killed.stderr[-3000:]
    for _ in range(bars_away):
        trading_client(sim).get_clock()  # a bar while away
    second = run_runtime(sim, tmp_path, 19, lines, strategy, strategy_id="resize")
    orders = venue_orders(sim)
    (cid,) = [c for c in orders if ".r" not in c]
    return sum(v.qty for v in sim.fills()), orders, cid, second


@pytest.mark.parametrize(
    ("new_qty", "reprice_min", "bars_away"),
    [(10.0, 4, 1), (30.0, 4, 1), (30.0, NEVER, 3)],
    ids=["shrink", "grow", "grow-3-away"],
)
def test_a_change_alpaca_took_before_the_crash_is_undone_to_the_book(tmp_path, new_qty, reprice_min, bars_away):
    """The restart's read of the chain finds Alpaca asking ``new_qty`` in all where the book holds
    20; the replay's change was refused, so the strategy's order asks 20: the chain is brought back
    to 20 (one WARNING), the later re-price asks what is left of 20, and 20 are bought. Failed
    with the change taken from Alpaca into the book (39761b5): the book's order asked 10 / 30."""
    sim = filling_sim(20)
    lines: list[str] = []
    strategy = ResizeOnceThenReprice(new_qty, reprice_min)
    try:
        bought, orders, cid, second = _crash_then_restart(sim, tmp_path, strategy, [str(new_qty), str(reprice_min)],
                                                          bars_away, lines)  # fmt: skip
    finally:
        sim.close()
    order = second.book.get(cid)
    assert strategy.order is order and order.quantity == 20 and order.filled_quantity == 20, (orders, lines)
    assert bought == 20 and second.book.positions["AAPL"].quantity == 20, (orders, lines)
    assert ("resize", False) in strategy.answers, strategy.answers  # (the replay's change refused)
    assert reprice_min == NEVER or ("reprice", True) in strategy.answers, strategy.answers
    said = [line for line in lines if "20 last recorded" in line or "20 were last recorded" in line]
    assert said and said[0].startswith("WARNING") and "before a crash" in said[0], lines
    assert not [line for line in lines if "taken from Alpaca" in line or "filled after it was filled" in line]
    assert not error_lines(lines), lines


@pytest.mark.parametrize("new_qty", [18.0, 10.0])
def test_a_shrink_outraced_by_a_fill_before_the_crash_buys_no_more_than_the_book(tmp_path, new_qty):
    """The crashed shrink's PATCH stays pending while the old order fills 3 more (the reviewer's
    probe): Alpaca's chain asks 20 - 3 + 3 more than the journal's 20 less the shrink. The check
    against the book's 20 leaves 20 bought, the book's order at 20 filled 20. [10.0] failed with
    the change taken from Alpaca (39761b5): the book's order took 10 (10.0 == 20); [18.0] passed
    there too (the book's 20 was picked as the larger fitting ask) and stays as the cut's guard."""
    sim = filling_sim(20)
    lines: list[str] = []
    strategy = ResizeOnceThenReprice(new_qty, NEVER)
    try:
        sim.inject("slow_replace", bars=2)
        bought, orders, cid, second = _crash_then_restart(sim, tmp_path, strategy, [str(new_qty), str(NEVER)], 1,
                                                          lines)  # fmt: skip
    finally:
        sim.close()
    order = second.book.get(cid)
    assert order.quantity == 20 and order.filled_quantity == 20 == bought, (orders, lines)
    assert second.book.positions["AAPL"].quantity == 20, (orders, lines)
    assert not error_lines(lines), lines


def test_a_trailing_stops_change_outraced_at_the_crash_buys_no_more_than_the_book(tmp_path):
    """A buy trailing stop of 20 (trail 1) whose trail change to 0.5 is outraced by a fill, then
    killed at after_change (the reviewer's probe): the chain asks 3 more than the book's 20 at
    another trail. It is cut down to the book's terms: 20 bought, the book's order untouched (no
    stop price written into it: Alpaca's is the trailing level). Failed before: the chain's own
    total taken (23 bought of 20), the trailing level written into the book's stop_price."""
    sim = filling_sim(20)
    lines: list[str] = []
    strategy = TrailBuyThenChange()
    try:
        sim.inject("slow_replace", bars=2)
        bought, orders, cid, second = _crash_then_restart(sim, tmp_path, strategy, ["trail"], 1, lines)
    finally:
        sim.close()
    order = second.book.get(cid)
    assert bought == 20 and order.quantity == 20 and order.filled_quantity == 20, (orders, lines)
    assert order.stop_price is None and order.trail_amount == 1.0, (order.stop_price, order.trail_amount)
    assert strategy.answers == [False], strategy.answers
    assert not error_lines(lines), lines


def test_a_bring_back_that_cannot_be_made_before_the_replacement_fills_is_an_error(tmp_path):
    """A review probe of fedf6b1: the crashed shrink to 10 is to be brought back to the book's 20,
    but every PATCH gets no answer (503) until the replacement has filled its 7: the chain bought 10
    where the book holds 20. Said as an ERROR (the venue and the book disagree), and the lines on
    the way say the chain asks less, not "too much". Failed before: WARNINGs only, the last one
    "... brought back to them: it is filled already: nothing to cut"."""
    sim = filling_sim(20)
    lines: list[str] = []
    strategy = ResizeOnceThenReprice(10.0, NEVER)
    try:
        crash_at_change(sim, tmp_path, 10.0)
        sim.inject("replace_error", status=503, count=20)
        run_runtime(sim, tmp_path, 19, lines, strategy, strategy_id="resize")
        bought = sum(v.qty for v in sim.fills())
    finally:
        sim.close()
    assert bought == 10
    errors = error_lines(lines)
    assert any("could not be brought back to the terms last recorded (20)" in e and "the chain filled 10" in e
               and "the venue and the book disagree" in e for e in errors), lines  # fmt: skip
    assert not [line for line in lines if "too much" in line], lines


def test_a_plain_restart_of_a_trailing_stop_whose_trail_was_changed_sends_nothing(tmp_path):
    """A review probe of fedf6b1: run 1 changes a trailing stop's trail and ends normally (the
    change journaled), run 2 restarts warm: Alpaca's stop price moves with the market, its trail is
    the book's, so nothing is brought back (a mutant comparing the stop price: a needless PATCH,
    t-...r2, "at other prices ... brought back")."""
    sim = filling_sim(20, participation=0.001)
    lines: list[str] = []
    try:
        first = run_script(RESIZE_RUN_1, HERE, sim.key_id, sim.secret_key, sim.base_url, str(tmp_path), "trail")
        assert first.returncode == 0, first.stderr[-3000:]
        replaced_in_run_1 = [c for c in venue_orders(sim) if ".r" in c]
        run_runtime(sim, tmp_path, 19, lines, TrailBuyThenChange(), strategy_id="resize")
        orders = venue_orders(sim)
    finally:
        sim.close()
    assert replaced_in_run_1 and [c for c in orders if ".r" in c] == replaced_in_run_1, orders
    assert not [line for line in lines if "brought back" in line], lines


def test_a_fill_racing_the_bring_back_is_said_as_the_bring_backs_race(tmp_path):
    """Crashed shrink 20 -> 15 (r1 asks 12); at run 2's bring-back PATCH the replay moves on one bar
    first (step_before_replace), so r1 fills 3 between the bring-back's read and its replace: the
    bring-back's replacement is cut by them, the WARNING naming the bring-back's read. Failed before:
    "between the last cut's read and its replace" (no cut was made)."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 15.0)
        sim.inject("step_before_replace", count=1)
        second = run_runtime(sim, tmp_path, 19, lines, ResizeOnceThenReprice(15.0, NEVER), strategy_id="resize")
        orders = venue_orders(sim)
        (cid,) = [c for c in orders if ".r" not in c]
        bought, order = sum(v.qty for v in sim.fills()), second.book.get(cid)
    finally:
        sim.close()
    assert bought == 20 and order.quantity == 20 and order.filled_quantity == 20, (orders, lines)
    raced = [line for line in lines if "filled 3 more between" in line]
    assert len(raced) == 1 and "between the bring-back's read and its replace" in raced[0], lines
    assert not error_lines(lines), lines
