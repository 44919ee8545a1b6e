"""A warm restart's check of a replace chain of two replaces (the first carried out, the second
pending when the run stops): the check counts the fills of the orders before the old one.

Real alpaca-py against the simulated Alpaca, through the runtime and its journal. The limit order
of 20 (marketable, 3 fill a bar) is re-priced once it has filled (r1), and again once it has filled
more (r2), that replace left pending by ``slow_replace`` 4 bars while r1 fills on; run 1 stops
with r2's check pending, run 2 restarts warm on the same journal.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca_helpers import SESSION_OPEN
from ml4t.backtest import OrderType, Strategy
from runtime_support import filling_sim, run_runtime

from ml4t_live.sim.alpaca import SimulatedAlpaca


class TwoReprices(Strategy):
    """20 AAPL limit 150 on the session's second bar; re-priced to 149 once it has filled, then to
    148 once it has filled more (``arm`` called just before that second change)."""

    def __init__(self, arm) -> None:
        self.arm, self.order, self.first, self.second = arm, None, None, False

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.LIMIT, limit_price=150.0)
        elif self.order is None:
            return
        elif self.first is None and self.order.filled_quantity > 0:
            if broker.update_order(self.order.order_id, limit_price=149.0):
                self.first = self.order.filled_quantity
        elif self.first is not None and not self.second and self.order.filled_quantity > self.first:
            self.arm()
            self.second = broker.update_order(self.order.order_id, limit_price=148.0)


def _orders(sim: SimulatedAlpaca) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def test_the_second_replace_pending_at_the_restart_is_checked_with_the_first_ones_fills(tmp_path):
    """r1 (17) carried out, r2 (14) pending when run 1 stops, r1 filling on meanwhile: the
    restart's check cuts r2 down by what r1 filled after the second modify's read, counting the
    3 the first order filled before r1 (``before``): 20 bought. Under a mutant of check_chain
    that leaves ``before`` out it fails 23 == 20 (no test reached a chain of two replaces)."""
    sim = filling_sim(20)
    armed: list[int] = []

    def arm() -> None:  # (once: the replay's repeat of that change is answered from the journal)
        if not armed:
            armed.append(1)
            sim.inject("slow_replace", bars=4)

    lines: list[str] = []
    try:
        run_runtime(sim, tmp_path, 4, [], TwoReprices(arm), strategy_id="two")
        (cid,) = [c for c in _orders(sim) if ".r" not in c]
        at_stop = _orders(sim)  # (r2 asked 14: r1 had filled 3 at the second modify's read)
        assert at_stop[cid] == ("replaced", "20", "3") and at_stop[f"{cid}.r2"] == ("pending_new", "14", "0")
        assert at_stop[f"{cid}.r1"][:2] == ("pending_replace", "17"), at_stop
        second = run_runtime(sim, tmp_path, 14, lines, TwoReprices(arm), strategy_id="two")
        venue, orders = sim.fills(), _orders(sim)
        replaces = [form.qty for _, form in sim.replaces_received()]
    finally:
        sim.close()
    assert sum(v.qty for v in venue) == 20, orders
    r1_filled, r2_filled = float(orders[f"{cid}.r1"][2]), float(orders[f"{cid}.r2"][2])
    assert orders[f"{cid}.r1"][0] == "replaced" and r1_filled > 3, orders  # it filled on, its replace pending
    assert orders[f"{cid}.r2"][0] == "replaced", orders
    assert replaces[:2] == [17, 14] and replaces[2:] == [20 - 3 - r1_filled - r2_filled], replaces  # what is left
    assert orders[f"{cid}.r3"][0] == "filled", orders
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == 1 and f"asks {r1_filled - 3:g} more than the 20 last recorded" in warned[0], lines
    assert second.book.get(cid).filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
