"""The restart's check of a replace chain is made from the order's current Alpaca id.

Real alpaca-py against the simulated Alpaca, at the gateway. A first gateway places t-p (20 AAPL
limit 150, 3 fill a bar), re-prices it once 3 filled (r1 asks 17) and closes; r1 fills while no
gateway runs. A second gateway connects (r1 listed) and, before the restart's read of the chain
(``executions_since``, which hands the walked chain to ``Modifier.check_chain``), modifies the
order again: r2, its replace left pending by ``slow_replace`` while r1 fills on, its check
pending. The runtime refuses such a change until the read has run
(``AwayReads.change_refusal``); this is the gateway's own guard.
"""

from __future__ import annotations

from dataclasses import replace

from alpaca_helpers import config_for
from modify_support import REQUEST
from runtime_support import filling_sim, log_lines, trading_client

from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _orders(sim) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def test_a_modify_made_before_the_chain_read_keeps_its_check(tmp_path):
    """The chain read at the restart ends at r1 (as listed at the connect); the order is r2 by
    then. The check is made from r2 (the chain walked again up to it), against the 20 asked: r2
    is cut down by what r1 filled while its replace was pending. Failed before: the check built
    from the listed chain (t-p replacing, r1 new) replaced the pending check of r2 and found
    nothing: r2 filled its 17, 26 bought."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    second = AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))
    try:
        with log_lines(lines):
            first.connect()
            first.place(REQUEST)
            raw.get_clock()  # t-p fills 3
            first.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))  # r1 asks 17
            first.close()
            raw.get_clock()  # while away: r1 fills 3
            assert _orders(sim) == {"t-p": ("replaced", "20", "3"), "t-p.r1": ("partially_filled", "17", "3")}
            second.connect()
            sim.inject("slow_replace", bars=2)
            second.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))  # r2, pending
            raw.get_clock()  # r1 fills on, its replace pending
            second.asked(replace(REQUEST, limit_price=148.0, filled_quantity=3))
            second.executions_since("t-p", 3.0, 150.0)  # the restart's read of the chain
            for _ in range(8):  # each end of bar checks what is pending
                raw.get_clock()
                second.modifier.check_replaces()
            orders, bought = _orders(sim), sum(f.qty for f in sim.fills())
    finally:
        second.close()
        first.close()
        sim.close()
    assert bought == 20, orders
    assert orders["t-p.r1"][0] == "replaced" and orders["t-p.r2"][0] == "replaced", orders
    r1_filled, r2_filled = float(orders["t-p.r1"][2]), float(orders["t-p.r2"][2])
    assert r1_filled == 6 and orders["t-p.r3"][0] == "filled", orders
    assert float(orders["t-p.r3"][1]) == 20 - 3 - r1_filled - r2_filled, orders  # the cut asks what is left
    assert any("(a modify's, its chain walked again)" in line for line in lines), lines
