"""Many cancels at once through ib_async's pacing, through the real client against the simulated
IB Gateway. ib_async writes at most ``max_requests_per_second`` messages a second and holds the
rest in its queue; each cancel's wait for IB's answer must not run out while the cancel is still
in that queue. A review probe of acece69 (rate 5, ``cancel_wait`` 0.6 s, IB refusing the cancels
10148) got every outcome back as taken (None): the later cancels' waits had ended before they were
written, so the broker would have recorded CANCELLED orders IB still worked.

The pacing spreads the 12 cancels over about 4 s (3 a second), well beyond ``cancel_wait`` (2 s):
without the pacing allowance the cancels written after 2 s time out and come back as taken (7 and
10 of the 12 in two runs with the allowance removed). With it, each cancel's answer has at least
the whole ``cancel_wait`` from its write. A ``cancel_wait`` of 0.6 s left too little for IB's answer
on a loaded 2-core machine: 'o4' and 'o9' (the last of a second's batch, written up to a second
late) came back taken once in 5 runs with the CPUs kept busy; with 2 s, 5 of 5 passed so.
"""

from __future__ import annotations

from ib_helpers import config_for, is_, minute_bars, wait_for
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.errors import CancelRefused
from ml4t_live.events import OrderAccepted
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.ib import IBGateway

N, RATE, WAIT = 12, 3, 2.0


def test_cancels_held_by_the_pacing_get_their_answer_not_a_timeout(ib_log_guard):
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: Submitted")
    sim = SimulatedIBGateway(minute_bars())
    sim.start()
    gw = IBGateway(config_for(sim, cancel_wait=WAIT, max_requests_per_second=RATE))
    try:
        gw.connect()
        ids = [f"o{i}" for i in range(N)]
        for cid in ids:
            gw.place(OrderRequest(cid, "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
        for cid in ids:
            wait_for(gw.events, is_(OrderAccepted, cid), timeout=30)
        sim.inject("cancel_reply", reply="10148", count=N)  # IB refuses every one: the orders work on
        out = gw.cancel_many(ids)
        assert sim.request_count("CancelOrder") == N  # every cancel was written before the answers came back
        taken = [cid for cid, outcome in out.items() if outcome is None]
        assert not taken, f"answered as taken, yet IB refused them: {taken}"
        assert all(isinstance(outcome, CancelRefused) for outcome in out.values()), out
        assert {cid: v.status for cid, v in gw.lookup(ids).items()} == dict.fromkeys(ids, "open")
    finally:
        gw.close()
        sim.close()
