"""A fill applied under a made-up execution id at one warm restart, then seen under Alpaca's own
execution id at the next, counts once.

Restart N cannot read the FILL activities: the part the order filled while away is applied as
``<order id>:<cumulative qty>``. The order then ends while no runtime runs; restart N+1 finds it
no longer listed and looks it up by client order id (a fresh adapter), and Alpaca's activities
now list every execution under its real id, the one restart N made up among them. Real
alpaca-py against the simulated Alpaca; the market order of 20 fills 3 a bar.
"""

from __future__ import annotations

from runtime_support import BuyOnce, filling_sim, run_runtime, trading_client


def run(sim, state_dir, minutes, lines, **kw):
    return run_runtime(sim, state_dir, minutes, lines, BuyOnce(20), strategy_id="twice", max_request_attempts=2, **kw)


def test_a_made_up_fill_then_its_real_execution_id_at_the_next_restart_counts_once(tmp_path):
    sim = filling_sim(16)
    lines: list[str] = []
    try:
        clock = trading_client(sim).get_clock
        first = run(sim, tmp_path, 2, [])
        (cid,) = [o["client_order_id"] for o in sim.orders()]
        assert first.book.get(cid).filled_quantity == 3
        clock()  # a bar while away: 3 more
        (away,) = sim.fills()[1:]
        sim.fail_activities(2, status=503)  # restart N cannot read them
        second = run(sim, tmp_path, 2, [])
        made_up = f"{away.order_id}:6"
        assert second.book.get(cid).filled_quantity == 12 and second.book.seen(made_up)  # (6 more in run 2)
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("partially_filled", "12")]
        for _ in range(3):
            clock()  # the order ends while away: 3, 3 and 2 more
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("filled", "20")]
        third = run(sim, tmp_path, 10, lines)  # restart N+1: it is not listed, it is looked up
        venue = sim.fills()
    finally:
        sim.close()
    order = third.book.get(cid)
    assert order.filled_quantity == 20  # failed before: 23 (the made-up 3 again under its real id)
    assert third.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in third.book.fills] == [v.qty for v in venue] == [3, 3, 3, 3, 3, 3, 2]
    assert third.book.seen(made_up) and not third.book.seen(away.execution_id)
    assert all(third.book.seen(v.execution_id) for v in venue[2:])  # the later ones under their real ids
