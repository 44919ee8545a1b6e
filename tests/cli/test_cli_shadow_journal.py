"""A shadow run from the command line keeps a journal: killed (kill -9) and re-run with the same
command, it restarts warm and ends as an uninterrupted run; a halted strategy stays halted and
says so on the first line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from ml4t_live.examples import DemoMomentum
from ml4t_live.journal import default_strategy_id


def demo(*args: str, failpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ML4T_LIVE_FAILPOINT": failpoint} if failpoint else None
    return subprocess.run([sys.executable, "-m", "ml4t_live", "demo", "--no-session", *args],
                          check=False, capture_output=True, text=True, timeout=120, env=env)  # fmt: skip


def final_equity(output: str) -> str:
    return re.search(r"final equity\s+([\d,.]+)", output).group(1)


def test_a_killed_shadow_demo_restarts_warm_and_ends_as_an_uninterrupted_one(tmp_path):
    whole = demo("-q")
    assert whole.returncode == 0, whole.stderr
    # paced (0.6 ms a bar, the night 0.6 s) so the journal has committed bars before the kill
    killed = demo("--speed", "100000", failpoint="after_bar:600")
    assert killed.returncode == 137, killed.stderr
    again = demo("--speed", "100000")
    assert again.returncode == 0, again.stderr
    replayed = int(re.search(r"(\d+) bars to replay \(warm restart\)", again.stderr).group(1))
    assert 0 < replayed <= 600
    assert re.search(rf"DemoMomentum: {780 - replayed} bars, shadow mode", again.stdout), again.stdout
    assert final_equity(again.stdout) == final_equity(whole.stdout)


def test_status_reads_a_shadow_journal_without_a_venue():
    sid = default_strategy_id(DemoMomentum())
    ran = demo("-q")
    assert ran.returncode == 0, ran.stderr
    held = re.search(r"positions at the end: (\w+) \+(\d+)", ran.stdout)
    status = subprocess.run([sys.executable, "-m", "ml4t_live", "status", "--strategy-id", sid, "--broker", "shadow",
                             "--json"], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert facts["connection"]["venue"] == "shadow" and facts["trading_state"]["state"] == "ACTIVE"
    assert [(p["asset"], p["strategy"]) for p in facts["positions"] if p["strategy"]] == [
        (held.group(1), float(held.group(2)))]
    assert {row["limit"] for row in facts["limits"]} >= {"max_orders_per_minute", "max_strategy_errors"}


def test_a_halted_shadow_strategy_starts_halted_and_says_so_first(tmp_path):
    sid = default_strategy_id(DemoMomentum())
    assert demo("-q").returncode == 0
    halt = subprocess.run([sys.executable, "-m", "ml4t_live", "halt", "--strategy-id", sid, "--reason", "desk review"],
                          check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert halt.returncode == 0 and "ACTIVE -> HALTED" in halt.stdout, halt.stderr
    again = demo("-q")
    assert again.returncode == 0, again.stderr
    first = again.stderr.splitlines()[0]
    assert f"strategy {sid} is HALTED (desk review)" in first and "ml4t-live resume" in first
    assert re.search(r"orders\s+0\b", again.stdout) and re.search(r"rejections\s+[1-9]", again.stdout), again.stdout


def test_status_without_a_venue_names_the_shadow_journal_too():
    sid = default_strategy_id(DemoMomentum())
    assert demo("-q").returncode == 0
    status = subprocess.run([sys.executable, "-m", "ml4t_live", "status", "--strategy-id", sid],
                            check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 2 and "--broker shadow" in status.stderr, status.stderr
