"""A modify of a submit of unknown outcome the watcher is reporting, whose chain filled part on
the order a replace left behind: the replacement asks for what is left of the whole chain.

Through the real alpaca-py client against SimulatedAlpaca, fills in parts over bars (a volume
participation limit: 3 a bar), the trade stream silent. t-a (buy 10, limit 150: marketable) is of
unknown outcome; it fills 3, then another client replaces it with t-a.r1 (7 more). The watcher
claims t-a and is reporting the chain (held on its read of t-a's executions, as in
test_alpaca_unknown_claim.py) when the strategy modifies t-a.
"""

from __future__ import annotations

import threading

from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import drain
from runtime_support import filling_sim, trading_client
from unknown_support import WAIT, WatcherTick, limit, unknown_limit

from ml4t_live.events import OrderFilled, OrderPartiallyFilled
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_modify_waiting_for_the_watchers_report_asks_for_what_the_chain_left() -> None:
    sim = filling_sim(12)
    gw: AlpacaGateway | None = None
    try:
        gw = unknown_limit(sim, 150.0)
        raw = trading_client(sim)
        raw.get_clock()  # a bar: t-a fills 3
        first = raw.get_order_by_client_id("t-a")
        assert float(first.filled_qty) == 3
        r1 = raw.replace_order_by_id(first.id, ReplaceOrderRequest(qty=7, limit_price=151.0,
                                                                   client_order_id="t-a.r1"))  # fmt: skip
        tick = WatcherTick(gw)
        errors: list[BaseException] = []
        gate = gw.stream.unknown.waiting  # set when the modify waits for the report (or is done)

        def modify() -> None:
            try:
                gw.modify(limit(152.0))
            except BaseException as exc:  # noqa: BLE001  (asserted below)
                errors.append(exc)
            finally:
                gate.set()

        engine = threading.Thread(target=modify, name="test-engine-modify")
        engine.start()
        try:
            assert gate.wait(WAIT), "the modify neither waited for the watcher's report nor ended"
        finally:
            tick.done()
            engine.join(WAIT + 10)
        assert not engine.is_alive() and not errors, errors
        ((venue_id, form),) = [(v, f) for v, f in sim.replaces_received() if f.client_order_id != "t-a.r1"]
        # failed with 7bbe62b's wait removed: qty 10 (t-a's 3, not counted yet, asked for again)
        assert (venue_id, form.client_order_id, form.qty, form.limit_price) == (str(r1.id), "t-a.r2", 7, 152.0)
        for _ in range(3):
            raw.get_clock()  # 3 more bars: t-a.r2 fills its 7
        orders = {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}
        assert orders == {"t-a": ("replaced", "10", "3"), "t-a.r1": ("replaced", "7", "0"),
                          "t-a.r2": ("filled", "7", "7")}  # fmt: skip
        assert gw.stream.session.call(gw.stream.resync) > 0
        fills = [e for e in drain(gw.events) if isinstance(e, OrderPartiallyFilled | OrderFilled)]
        assert [f.exec_id for f in fills] == [v.execution_id for v in sim.fills()]  # each once
        assert fills[-1].cumulative_quantity == 10 and isinstance(fills[-1], OrderFilled)
    finally:
        if gw is not None:
            gw.close()
        sim.close()
