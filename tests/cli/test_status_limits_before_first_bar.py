"""``ml4t-live status`` shows a run's limits from its start, not "no limits configured" until
its first bar (a calendar run waits for the open; a risk manager looks before it)."""

from __future__ import annotations

import json
import subprocess
import sys

from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from tests.support.market import aaa_minutes


class LooksAtStart(Strategy):
    def __init__(self, state_dir: str) -> None:
        self.state_dir, self.status = state_dir, None

    def on_start(self, broker):
        self.status = subprocess.run([sys.executable, "-m", "ml4t_live", "status", "--strategy-id", "early",
                                      "--broker", "shadow", "--state-dir", self.state_dir, "--json"],
                                     capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    def on_data(self, timestamp, data, context, broker):
        pass


def test_status_shows_the_configured_limits_before_the_first_bar(tmp_path):
    strategy = LooksAtStart(str(tmp_path))
    shadow = ShadowBroker(BacktestConfig(), risk={"max_order_notional": 25_000}, state_dir=tmp_path)
    LiveEngine(strategy, shadow, ReplayFeed(aaa_minutes([100.0] * 2)), session_dir=False, strategy_id="early").run()
    assert strategy.status.returncode == 0, strategy.status.stderr
    limits = {row["limit"]: row for row in json.loads(strategy.status.stdout)["limits"] or []}
    assert limits["max_order_notional"]["value"] == "25,000"
