"""Shared set-up for the Alpaca warm-restart tests whose run 1 is killed right after Alpaca took a
change (``after_change``: ``os._exit(137)`` as ``kill -9``): run 1's script (``RESIZE_RUN_1``, a
child process), the crash itself (``crash_at_change``) and the reads of what the venue and the log
hold afterwards. Real alpaca-py against SimulatedAlpaca."""

from __future__ import annotations

from pathlib import Path

from runtime_support import trading_client

from ml4t_live.sim.alpaca import SimulatedAlpaca
from tests.support.child_process import run_script

#: run 1 as a child process. Arguments: this folder (for its imports), the simulator's key id,
#: secret key and base URL, the state directory, then either ``trail`` (TrailBuyThenChange) or a
#: new quantity and a re-price minute (ResizeOnceThenReprice)
RESIZE_RUN_1 = """
import sys
from datetime import timedelta
sys.path.insert(0, sys.argv[1])
from alpaca_helpers import SESSION_OPEN, config_for
from crash_support import ResizeOnceThenReprice, TrailBuyThenChange
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed

class Venue:  # (config_for reads these of the simulator)
    key_id, secret_key, base_url = sys.argv[2:5]

cfg = config_for(Venue)
broker = AlpacaBroker(cfg, strategy_id="resize", state_dir=sys.argv[5])
feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=10))
strategy = TrailBuyThenChange() if sys.argv[6] == "trail" else ResizeOnceThenReprice(float(sys.argv[6]), int(sys.argv[7]))
LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False,
           settle_timeout=0.5, open_orders_at_end="keep").run()
"""

#: this folder, where run 1's imports are found
HERE = str(Path(__file__).parent)

#: a re-price past the end of run 2 (never made)
NEVER = 99


def crash_at_change(sim: SimulatedAlpaca, tmp_path, new_qty: float, bars_away: int = 1) -> None:
    """Run 1 resizes its 20 to ``new_qty`` at the first fill and is killed right after Alpaca
    answered (``after_change``); ``bars_away`` bars pass before the next run."""
    killed = run_script(RESIZE_RUN_1, HERE, sim.key_id, sim.secret_key, sim.base_url, str(tmp_path), str(new_qty),
                        str(NEVER), failpoint="after_change")  # fmt: skip
    assert killed.returncode == 137, killed.stderr[-3000:]
    for _ in range(bars_away):
        trading_client(sim).get_clock()  # a bar while away


def venue_orders(sim: SimulatedAlpaca) -> dict[str, tuple[str, str, str]]:
    """Alpaca's orders by client order id: (status, qty, filled_qty)."""
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def error_lines(lines: list[str]) -> list[str]:
    """The log lines at ERROR or CRITICAL."""
    return [line for line in lines if line.startswith(("ERROR", "CRITICAL"))]
