"""A quantity change Alpaca took just before a kill -9, which the journal never recorded.

Real alpaca-py against the simulated Alpaca, through the runtime and its journal. Run 1 (a child
process) places 20 AAPL limit 150 (marketable; 3 fill a bar) and, at the first bar with a fill,
changes its quantity; it dies (``after_change``: ``os._exit(137)`` as ``kill -9``) right after
Alpaca answered the PATCH: Alpaca's chain asks the new quantity, the journal holds 20. Run 2
restarts warm on the same journal; its replay reaches the interrupted bar, where the strategy
makes the change again (refused: what the order filled while away is not read yet), and later
re-prices the order.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_support import ResizeOnceThenReprice
from runtime_support import filling_sim, run_runtime, trading_client

from ml4t_live.sim.alpaca import SimulatedAlpaca
from tests.support.child_process import run_script

_RUN_1 = """
import sys
from datetime import timedelta
sys.path.insert(0, sys.argv[1])
from alpaca_helpers import SESSION_OPEN, config_for
from crash_support import ResizeOnceThenReprice
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

class Venue:  # (config_for reads these of the simulator)
    key_id, secret_key, base_url = sys.argv[2:5]

cfg = config_for(Venue)
broker = AlpacaBroker(cfg, strategy_id="resize", state_dir=sys.argv[5])
feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=10))
LiveEngine(ResizeOnceThenReprice(float(sys.argv[6]), int(sys.argv[7])), broker, feed, config=BacktestConfig(), session_dir=False,
           settle_timeout=0.5, open_orders_at_end="keep").run()
"""


def _orders(sim: SimulatedAlpaca) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


#: a re-price past the end of run 2 (never made)
NEVER = 99


@pytest.mark.parametrize(
    ("new_qty", "repeated", "reprice_min", "bars_away"),
    [(10.0, True, 4, 1), (30.0, True, 8, 1), (10.0, False, 4, 1), (30.0, True, NEVER, 6)],
    ids=["shrink", "grow", "shrink-not-repeated", "grow-long-away"],
)
def test_a_change_alpaca_took_before_the_crash_is_taken_into_the_book(
    tmp_path, new_qty, repeated, reprice_min, bars_away
):
    """The restart's read of the chain finds Alpaca asking ``new_qty`` in all where the book holds
    20: the change is taken from Alpaca (one WARNING), the book's order (the strategy's) shows it,
    the chain is checked against it, and the later re-price asks what is left of it. Without the
    replay making the change again (``repeated`` False) the chain's own total is taken. Failed
    before: the book kept 20 and the chain was checked against it; shrink: the re-price asked
    what was left of 20 again (20 bought of the 10 asked); grow: the check read the 10 more as a
    race with the crashed modify's read and cut the chain down (20 bought of the 30 asked).
    ``grow-long-away``: r1 fills 20 in all while away, the 20 the book held: the change is applied
    before those fills (failed with it applied after them: the order read filled at 20, then
    'filled after it was filled locally')."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        killed = run_script(_RUN_1, str(Path(__file__).parent), sim.key_id, sim.secret_key, sim.base_url,
                            str(tmp_path), str(new_qty), str(reprice_min), failpoint="after_change")  # fmt: skip
        assert killed.returncode == 137, killed.stderr[-3000:]
        (cid,) = [c for c in _orders(sim) if ".r" not in c]
        assert _orders(sim) == {cid: ("replaced", "20", "3"), f"{cid}.r1": ("new", f"{new_qty - 3:g}", "0")}
        for _ in range(bars_away):
            trading_client(sim).get_clock()  # a bar while away: r1 fills 3
        strategy = ResizeOnceThenReprice(new_qty, reprice_min, resized=not repeated)
        second = run_runtime(sim, tmp_path, 19, lines, strategy, strategy_id="resize")
        bought, orders = sum(v.qty for v in sim.fills()), _orders(sim)
    finally:
        sim.close()
    assert bought == new_qty, (orders, lines)
    taken = [line for line in lines if "the change made before the crash is taken from Alpaca" in line]
    assert len(taken) == 1 and taken[0].startswith("WARNING"), lines
    assert ("as the restart's replay asked it again" in taken[0]) is repeated, taken
    order = second.book.get(cid)
    assert strategy.order is order and order.quantity == new_qty and order.filled_quantity == new_qty
    assert reprice_min == NEVER or ("reprice", True) in strategy.answers, strategy.answers
    assert not [line for line in lines if "filled after it was filled locally" in line], lines
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL")) or "more between" in line], lines
