"""An Alpaca order still working at a warm restart that filled partly while no runtime ran: the
part filled while away reaches the book once, under Alpaca's execution id. Real alpaca-py against
the simulated Alpaca; the market order fills 3 of its 10 a bar (a volume participation limit)."""

from __future__ import annotations

import pytest
from runtime_support import (
    BuyOnce,
    filling_sim,
    reported_external,
    run_runtime,
    trading_client,
)


def run(sim, state_dir, minutes, lines, **kw):
    return run_runtime(sim, state_dir, minutes, lines, BuyOnce(10), strategy_id="away", **kw)


def restarted(tmp_path, unreadable=False):
    """Run 1 ends with the order 3 filled; 3 more fill while away (it still works); run 2 restarts
    warm (its read of the activities failing every attempt if ``unreadable``) and fills the rest.
    (run 2's broker, the order's id, the execution made while away, Alpaca's fills, run 2's log)."""
    # 0.3% of a bar's ~1000 shares: the order fills 3, 3, 3, 1 over four bars
    sim = filling_sim(12)
    lines: list[str] = []
    try:
        first = run(sim, tmp_path, 2, [])
        (cid,) = [o["client_order_id"] for o in sim.orders()]
        assert first.book.get(cid).filled_quantity == 3
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("partially_filled", "3")]
        trading_client(sim).get_clock()  # a bar while away
        (away,) = sim.fills()[1:]
        assert (away.qty, away.cum_qty, away.leaves_qty) == (3, 6, 4)  # still working at the restart
        if unreadable:
            sim.fail_activities(2, status=503)
        second = run(sim, tmp_path, 5, lines, max_request_attempts=2)
        venue = sim.fills()
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("filled", "10")]
    finally:
        sim.close()
    return second, cid, away, venue, lines


def test_a_part_filled_while_away_reaches_the_book_once_with_alpacas_execution_id(tmp_path):
    second, cid, away, venue, lines = restarted(tmp_path)
    order = second.book.get(cid)
    assert order.filled_quantity == 10  # failed before: 7 (the 3 filled while away were missing)
    assert [f.quantity for f in second.book.fills] == [3, 3, 3, 1]  # each execution once
    assert [f.price for f in second.book.fills] == [v.price for v in venue]
    assert second.book.positions["AAPL"].quantity == 10
    assert all(second.book.seen(v.execution_id) for v in venue)
    applied = [line for line in lines if "happened while away" in line]
    assert len(applied) == 1 and away.execution_id in applied[0] and cid in applied[0], applied
    assert not reported_external(lines) and not second.own.differences, lines
    assert not any("made-up" in line for line in lines), lines


def test_unreadable_activities_give_the_part_filled_while_away_a_made_up_id_never_lose_it(tmp_path):
    second, cid, away, _venue, lines = restarted(tmp_path, unreadable=True)
    assert second.book.get(cid).filled_quantity == 10
    assert [f.quantity for f in second.book.fills] == [3, 3, 3, 1]
    assert second.book.fills[1].price == pytest.approx(away.price)  # from the average fill prices
    made_up = f"{away.order_id}:6"
    assert second.book.seen(made_up) and not second.book.seen(away.execution_id)
    assert any(line.startswith("WARNING") and "made-up execution id" in line and made_up in line
               for line in lines), lines  # fmt: skip
    assert not reported_external(lines) and not second.own.differences, lines
