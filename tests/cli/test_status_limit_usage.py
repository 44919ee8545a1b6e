"""``ml4t-live status`` shows what a run uses of its position and data-age limits: the largest
position's notional and the oldest price's age (not "per order")."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from tests.support.market import aaa_minutes


class BuysOnce(Strategy):
    def on_data(self, timestamp, data, context, broker):
        if broker.get_position("AAA") is None and not broker.pending_orders:
            broker.submit_order("AAA", 10)


def test_status_shows_the_largest_position_and_the_oldest_price(tmp_path):
    shadow = ShadowBroker(BacktestConfig(), risk={"max_position_notional": 50_000, "max_data_age": "2m"},
                          state_dir=tmp_path)  # fmt: skip
    LiveEngine(BuysOnce(), shadow, ReplayFeed(aaa_minutes([100.0, 101.0, 102.0, 103.0])), session_dir=False,
               strategy_id="use").run()  # fmt: skip
    status = subprocess.run([sys.executable, "-m", "ml4t_live", "status", "--strategy-id", "use", "--broker",
                             "shadow", "--state-dir", str(tmp_path), "--json"], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert status.returncode == 0, status.stderr
    limits = {row["limit"]: row for row in json.loads(status.stdout)["limits"]}
    assert limits["max_position_notional"]["usage"] == "largest AAA 1,030.00"  # 10 at the last close, 103
    assert re.fullmatch(r"oldest held AAA \d+\.\d s", limits["max_data_age"]["usage"]), limits["max_data_age"]
    assert limits["max_order_notional"]["usage"] == "per order"
