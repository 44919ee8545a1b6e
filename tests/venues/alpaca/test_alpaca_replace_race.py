"""A fill of the old order between a modify's read and Alpaca's replace does not over-trade.

Alpaca's replace is a new order for the PATCH's ``qty`` while the old order's fills stand
(alpacahq/Alpaca-API#165). The modify reads the order (GET), then PATCHes ``qty`` = total -
filled so far; a fill of the old order after that read stands, and the replacement asks for it
again. Real alpaca-py against the simulated Alpaca, through the runtime: the limit order of 20
(marketable) fills 3 a bar (a volume participation limit); once it has filled 3 the strategy
re-prices it, and ``step_before_replace`` moves the replay on one bar when the PATCH arrives, so
the old order fills 3 more before it is replaced (6 in all) while the PATCH asked for 17.
"""

from __future__ import annotations

from dataclasses import replace

from alpaca_helpers import collect, config_for, of
from ml4t.backtest import OrderSide, OrderType
from runtime_support import BuyThenReprice, filling_sim, log_lines, run_runtime

from ml4t_live.events import OrderCancelled, OrderFilled, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_fill_between_the_modifys_read_and_the_replace_is_not_asked_for_again(tmp_path):
    sim = filling_sim(16)
    lines: list[str] = []
    try:
        sim.inject("step_before_replace")
        broker = run_runtime(sim, tmp_path, 14, lines, BuyThenReprice(), strategy_id="race")
        venue = sim.fills()
        orders = {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}
        replaces = sim.replaces_received()
    finally:
        sim.close()
    (cid,) = [c for c in orders if ".r" not in c]
    # the modify's PATCH asked for 17 (3 filled when it read the order), the old order ended with 6
    assert [form.qty for _, form in replaces] == [17, 14]
    assert orders[cid] == ("replaced", "20", "6")
    # failed before: r1 ("filled", "17", "17"), 23 bought for an order of 20
    assert orders[f"{cid}.r1"] == ("replaced", "17", "0")  # cut down at once: nothing filled yet
    assert orders[f"{cid}.r2"] == ("filled", "14", "14")
    assert sum(v.qty for v in venue) == 20
    order = broker.book.get(cid)
    assert order.filled_quantity == 20 and broker.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in broker.book.fills] == [v.qty for v in venue]
    assert all(broker.book.seen(v.execution_id) for v in venue)  # each under Alpaca's id, once
    assert len(broker.book.fills) == len(venue)
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == 1 and "between the modify's read and its replace" in warned[0] and cid in warned[0], lines
    assert "cut down to the 14 left" in warned[0]


def test_a_replacement_the_race_leaves_nothing_to_is_cancelled():
    """The runtime's book says t-p (10, limit 150: marketable) filled 4 while Alpaca's order says
    none (a replacement adopted after a restart carries only its own fills): the modify PATCHes
    qty 6, and the old order fills 6 (a volume participation limit: 6 a bar) before Alpaca
    replaces it. 4 + 6 is the total: the replacement of 6 is cancelled before it trades.
    Failed before: t-p.r1 stayed working for 6 more (16 for an order of 10)."""
    sim = filling_sim(12, participation=0.006)
    gw = AlpacaGateway(config_for(sim, order_poll_interval=30.0), is_ours=lambda c: c.startswith("t-"))
    lines: list[str] = []
    try:
        with log_lines(lines):
            gw.connect()
            request = OrderRequest("t-p", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=150.0)
            gw.place(request)
            sim.inject("step_before_replace")
            gw.modify(replace(request, limit_price=149.0, filled_quantity=4))
            assert [form.qty for _, form in sim.replaces_received()] == [6]
            orders = {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}
            assert orders == {"t-p": ("replaced", "10", "6"), "t-p.r1": ("canceled", "6", "0")}
            seen = collect(gw.events, lambda s: bool(of(OrderCancelled, s, "t-p")))
            (fill,) = [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]
            assert (fill.exec_id, fill.quantity) == (sim.fills()[0].execution_id, 6)
            warned = [line for line in lines if line.startswith("WARNING") and "t-p" in line]
            assert len(warned) == 1 and "cancelled, nothing is left" in warned[0], lines
    finally:
        gw.close()
        sim.close()
