"""Replaying a session that was killed (kill -9: no summary.json) says it is partial: a warning
naming what is missing when some bars were written, part of the refusal when none were."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def _killed_demo(tmp_path, after_bar: int):
    """The demo, killed (os._exit(137), as kill -9) after ``after_bar`` bars."""
    env = {**os.environ, "ML4T_LIVE_FAILPOINT": f"after_bar:{after_bar}"}
    run = subprocess.run([sys.executable, "-m", "ml4t_live", "demo", "-q", "--session-dir", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 137, run.stderr
    (folder,) = (tmp_path / "s").iterdir()
    assert not (folder / "summary.json").exists()
    return folder


def test_a_killed_sessions_replay_says_it_is_partial(cli, tmp_path):
    folder = _killed_demo(tmp_path, 700)  # 2,000 bar rows (667 bars of 3 assets) were spilled
    result = cli("replay", folder, "-q", "--session-dir", tmp_path / "replays")
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if "WARNING" in line)
    assert (f"{folder} is a PARTIAL session: it did not finish (no summary.json: the process was killed "
            "or crashed), so the bars of its last minute may be missing; it holds 667 bars") in warning  # fmt: skip
    assert re.search(r"^DemoMomentum: 667 bars, shadow replay mode", result.output, re.M)


def test_a_session_killed_before_it_wrote_bars_is_refused_saying_why(cli, tmp_path):
    folder = _killed_demo(tmp_path, 5)
    result = cli("replay", folder, "-q", "--no-session")
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if "ERROR" in line]
    assert line.endswith(f"configuration error: {folder} holds no recorded bars (no bars.parquet, no part "
                         "files); it did not finish (no summary.json: the process was killed or crashed), "
                         "so the bars of its last minute may be missing")  # fmt: skip
