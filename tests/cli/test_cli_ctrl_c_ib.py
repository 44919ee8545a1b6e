"""Ctrl-C on a paper run (simulated IB Gateway, real ib_async): an orderly stop, exit 0; the
printed summary lists an order left working at the venue (--open-orders-at-end keep), and by
default the order is cancelled at the venue and nothing is listed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from tests.support.cli_output import read_until

STRATEGY = """
import sys
from ml4t.backtest import OrderType, Strategy

class Waiter(Strategy):
    \"\"\"A limit order far below the market on the first bar; says so once the venue has it.\"\"\"

    def __init__(self):
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 10, order_type=OrderType.LIMIT, limit_price=1.0)
        elif broker.get_pending_orders("AAPL"):
            print("WORKING " + self.order.order_id, file=sys.stderr, flush=True)
"""


@pytest.mark.parametrize("policy", ["keep", "cancel"])
def test_ctrl_c_on_a_paper_run_reports_the_order_left_working(tmp_path, bars, sims, policy):
    (tmp_path / "waiter.py").write_text(textwrap.dedent(STRATEGY))
    sim = sims(bars)
    command = [sys.executable, "-m", "ml4t_live", "run", f"{tmp_path / 'waiter.py'}:Waiter",
               "--broker", "ib", "--port", str(sim.port), "--symbols", "AAPL,MSFT", "--bar-size", "1min",
               "--session-dir", str(tmp_path / "s"), "--open-orders-at-end", policy]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, cwd=tmp_path)
    try:
        order_id = read_until(proc.stderr, r"WORKING (\S+)", timeout=60).group(1)
        proc.send_signal(signal.SIGINT)
        out, err = (b.decode() for b in proc.communicate(timeout=60))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped: interrupted (Ctrl-C)" in out
    (view,) = [o for o in sim.orders if o.order_ref == order_id]
    if policy == "keep":
        assert "left at the venue (1 order(s) still working):" in out
        assert f"    {order_id}" in out
        assert view.status in ("Submitted", "PreSubmitted")
    else:
        assert "left at the venue" not in out
        assert view.status == "Cancelled"
    open_orders = next(line for line in out.splitlines() if line.startswith("  open orders"))
    assert open_orders.split()[-1] == ("1" if policy == "keep" else "0")
