"""A modify the warm restart's replay sends again, on the bar a kill -9 interrupted.

Real alpaca-py against the simulated Alpaca, through the runtime and its journal. Run 1 (a child
process) places 20 AAPL limit 150 (marketable; 3 fill a bar), re-prices it to 149 once 3 filled,
and dies (``after_change``: ``os._exit(137)`` as ``kill -9``) right after Alpaca answered the
PATCH, before the journal recorded the change: Alpaca shows the order replaced (3 filled) and
``<ours>.r1`` asking 17. While no runtime runs, r1 fills on. Run 2 restarts warm on the same
journal: its replay reaches the interrupted bar, where the strategy asks the change again.
"""

from __future__ import annotations

from pathlib import Path

from runtime_support import BuyThenReprice, filling_sim, run_runtime, trading_client

from ml4t_live.sim.alpaca import SimulatedAlpaca
from tests.support.child_process import run_script

_RUN_1 = """
import sys
from datetime import timedelta
sys.path.insert(0, sys.argv[1])
from alpaca_helpers import SESSION_OPEN, config_for
from runtime_support import BuyThenReprice
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

class Venue:  # (config_for reads these of the simulator)
    key_id, secret_key, base_url = sys.argv[2:5]

cfg = config_for(Venue)
broker = AlpacaBroker(cfg, strategy_id="replayed", state_dir=sys.argv[5])
feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=10))
LiveEngine(BuyThenReprice(), broker, feed, config=BacktestConfig(), session_dir=False,
           settle_timeout=0.5, open_orders_at_end="keep").run()
"""


def _orders(sim: SimulatedAlpaca) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def _killed_after_the_reprice(sim: SimulatedAlpaca, state_dir: Path) -> str:
    """Run 1, killed right after Alpaca answered the re-price's PATCH; our id of the order."""
    killed = run_script(_RUN_1, str(Path(__file__).parent), sim.key_id, sim.secret_key, sim.base_url,
                        str(state_dir), failpoint="after_change")  # fmt: skip
    assert killed.returncode == 137, killed.stderr[-3000:]
    (cid,) = [c for c in _orders(sim) if ".r" not in c]
    assert _orders(sim) == {cid: ("replaced", "20", "3"), f"{cid}.r1": ("new", "17", "0")}
    return cid


def test_the_replayed_change_waits_for_the_read_of_what_filled_while_away(tmp_path):
    """r1 filled 3 while away (6 in all). The replay's change of the order is refused (what it
    filled while away is not read yet: a PATCH then asks 17 where 14 are left); the restart's
    check of the chain finds nothing asked twice but r1 at 149 where the book (the strategy's
    order, its change refused) holds 150: r1 is brought back to 150 by a PATCH asking what is left.
    The replace of that PATCH is pending 2 bars (slow_replace), r1 filling on meanwhile: its check
    cuts the new replacement down; the strategy's change asked again meanwhile is refused (that
    check is not made yet) until it is. Failed before: the replayed change
    PATCHed r1 (asking 14; its replace pending while r1 filled 6 more), and the restart's check of
    the chain (built from the order listed at the connect, r1) replaced the pending check of that
    PATCH: nothing cut r2, 26 bought. With the check fixed and the change not refused: 20 bought,
    but the PATCH was sized before the read of what r1 filled while away (no refusal logged)."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        cid = _killed_after_the_reprice(sim, tmp_path)
        trading_client(sim).get_clock()  # a bar while away: r1 fills 3
        assert _orders(sim)[f"{cid}.r1"] == ("partially_filled", "17", "3")
        sim.inject("slow_replace", bars=2)  # the next PATCH's replace stays pending 2 bars
        second = run_runtime(sim, tmp_path, 14, lines, BuyThenReprice(), strategy_id="replayed")
        venue, orders = sim.fills(), _orders(sim)
        replaces = [form.qty for _, form in sim.replaces_received()]
    finally:
        sim.close()
    assert sum(v.qty for v in venue) == 20, (orders, replaces)
    assert replaces[0] == 17 and replaces[1] <= 14, replaces  # (the second asks what is left of 20)
    (back,) = [line for line in lines if "brought back to them" in line]
    assert back.startswith("WARNING") and "asks 20 in all where 20 were last recorded, at other prices" in back
    assert any(f"change of {cid} refused: what it filled while away is not read yet" in line
               for line in lines), lines  # fmt: skip
    order = second.book.get(cid)
    assert order.filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in second.book.fills] == [v.qty for v in venue]
    # a modify waiting for the bring-back's replace to be checked is a WARNING (ChangeDeferred), no ERROR
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines
