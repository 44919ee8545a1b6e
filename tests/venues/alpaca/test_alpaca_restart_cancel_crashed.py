"""A cancel Alpaca took just before a kill -9, which the journal never recorded.

Real alpaca-py against the simulated Alpaca, through the runtime and its journal. Run 1 (a child
process) places 20 AAPL limit 150 (marketable; 3 fill a bar) and cancels it at the first bar with
a fill; it dies (``after_cancel``: ``os._exit(137)`` as ``kill -9``) right after Alpaca took the
DELETE: Alpaca shows the order canceled with 3 filled, the journal holds no cancel. Run 2
restarts warm on the same journal: the venue no longer lists the order working; the replay
reaches the interrupted bar, where the strategy cancels again and Alpaca answers 422 (the order
is already canceled).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alpaca_helpers import SESSION_OPEN
from change_crash_support import RESIZE_RUN_1
from crash_support import CancelAtFirstFill
from ml4t.backtest import OrderStatus, OrderType, Strategy
from runtime_support import filling_sim, run_runtime, trading_client

from tests.support.child_process import run_script

_RUN_1 = """
import sys
from datetime import timedelta
sys.path.insert(0, sys.argv[1])
from alpaca_helpers import SESSION_OPEN, config_for
from crash_support import CancelAtFirstFill
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

class Venue:  # (config_for reads these of the simulator)
    key_id, secret_key, base_url = sys.argv[2:5]

cfg = config_for(Venue)
broker = AlpacaBroker(cfg, strategy_id="cancelled", state_dir=sys.argv[5])
feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=10))
LiveEngine(CancelAtFirstFill(), broker, feed, config=BacktestConfig(), session_dir=False,
           settle_timeout=0.5, open_orders_at_end="keep").run()
"""


def test_a_cancel_alpaca_took_before_the_crash_stands_when_the_replay_makes_it_again(tmp_path):
    """The replayed cancel's 422 ('already in "canceled" state', the order not listed working at
    the restart) is the crashed run's cancel carried out: cancel_order answers True with a
    WARNING saying so, the order is cancelled as the strategy asked, and the restart's look-up
    finds it canceled with its 3 fills. Failed before: an ERROR 'cancel of ... was not accepted
    (...); the order stays pending' (untrue: Alpaca had it canceled) and cancel_order False."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        killed = run_script(_RUN_1, str(Path(__file__).parent), sim.key_id, sim.secret_key, sim.base_url,
                            str(tmp_path), failpoint="after_cancel")  # fmt: skip
        assert killed.returncode == 137, killed.stderr[-3000:]
        ((cid, status, filled),) = [(o["client_order_id"], o["status"], o["filled_qty"]) for o in sim.orders()]
        assert (status, filled) == ("canceled", "3")
        trading_client(sim).get_clock()  # a bar while away
        strategy = CancelAtFirstFill()
        second = run_runtime(sim, tmp_path, 8, lines, strategy, strategy_id="cancelled")
        bought = sum(v.qty for v in sim.fills())
    finally:
        sim.close()
    assert strategy.answers == [True], lines
    stands = [line for line in lines if f"cancel of {cid}, made again on the bar a crash interrupted" in line]
    assert len(stands) == 1 and stands[0].startswith("WARNING") and "the cancel stands" in stands[0], lines
    order = second.book.get(cid)
    assert order.status is OrderStatus.CANCELLED and order.filled_quantity == 3 == bought
    assert cid not in second.book.open and cid not in second.book.cancelling
    assert second.book.positions["AAPL"].quantity == 3
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines


class _CancelledMeanwhileThenCancel(Strategy):
    """Run 2 of a run 1 killed at ``after_change``: on the interrupted bar (the first with a fill)
    another client of the account cancels our working order at Alpaca, then the strategy cancels
    it (answers in ``answers``)."""

    def __init__(self, sim) -> None:
        self.sim, self.order = sim, None
        self.answers: list[bool] = []

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.order = broker.submit_order("AAPL", 20, order_type=OrderType.LIMIT, limit_price=150.0)
        elif self.order is not None and self.order.filled_quantity > 0 and not self.answers:
            (working,) = [o["id"] for o in self.sim.orders() if o["status"] in ("new", "partially_filled")]
            trading_client(self.sim).cancel_order_by_id(working)
            self.answers.append(broker.cancel_order(self.order.order_id))


def test_a_replayed_cancel_of_an_order_listed_working_refused_as_cancelled_is_not_taken(tmp_path):
    """Run 1 re-sizes the order at its first fill and is killed at after_change: Alpaca lists the
    order working at the restart. On the interrupted bar another client cancels it, then the
    replay's cancel gets Alpaca's 422 'already canceled': not the crashed run's cancel (the order
    was listed working), so cancel_order answers False with the ERROR. Failed with the listing's
    guard removed (the reviewer's mutant L): True and 'the cancel stands'."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        killed = run_script(RESIZE_RUN_1, str(Path(__file__).parent), sim.key_id, sim.secret_key, sim.base_url,
                            str(tmp_path), "10", "99", failpoint="after_change")  # fmt: skip
        assert killed.returncode == 137, killed.stderr[-3000:]
        strategy = _CancelledMeanwhileThenCancel(sim)
        run_runtime(sim, tmp_path, 8, lines, strategy, strategy_id="resize")
    finally:
        sim.close()
    assert strategy.answers == [False], lines
    assert not [line for line in lines if "the cancel stands" in line], lines
    refused = [line for line in lines if line.startswith("ERROR") and "was not accepted" in line]
    assert len(refused) == 1 and "canceled" in refused[0], lines
