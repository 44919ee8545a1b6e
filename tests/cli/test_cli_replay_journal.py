"""``ml4t-live replay`` names its journal like ``run`` does (``--state-dir``, ``--strategy-id``):
an operator halts a rehearsal from another process by that id, and the killed replay, run again
with the same command, restarts warm and halted. Each step is its own process, as a user runs
them."""

from __future__ import annotations

import os
import subprocess
import sys


def _cli(*args, env_extra=None, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ML4T_LIVE_FAILPOINT"}
    env.update({"ML4T_LIVE_STATE_DIR": str(tmp_path / "default-state"), **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "ml4t_live", *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=120, env=env, cwd=tmp_path)  # fmt: skip


def test_a_killed_replay_halted_by_its_strategy_id_restarts_warm_and_halted(tmp_path):
    demo = _cli("demo", "-q", "--session-dir", tmp_path / "s", tmp_path=tmp_path)
    assert demo.returncode == 0, demo.stderr
    (session,) = (tmp_path / "s").iterdir()
    state = tmp_path / "rehearsal-state"
    replay = ("replay", session, "-q", "--no-session", "--state-dir", state, "--strategy-id", "rehearse")

    killed = _cli(*replay, env_extra={"ML4T_LIVE_FAILPOINT": "after_bar:100"}, tmp_path=tmp_path)
    assert killed.returncode == 137, killed.stderr
    (journal,) = state.glob("shadow-replay.*-rehearse.journal")
    assert not list((tmp_path / "default-state").glob("*rehearse*"))  # it went where it was told

    halt = _cli("halt", "--strategy-id", "rehearse", "--state-dir", state, "--reason", "desk drill", tmp_path=tmp_path)
    assert halt.returncode == 0, halt.stderr
    assert f"{journal.name}: trading state ACTIVE -> HALTED" in halt.stdout

    again = _cli(*replay, tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = again.stderr.splitlines()
    assert "strategy rehearse is HALTED (desk drill)" in lines[0], lines[:3]
    refused = [line for line in lines if "refused: trading is HALTED (desk drill)" in line]
    assert refused, again.stderr[-2000:]


def test_replay_passes_on_divergence_to_its_journal(tmp_path):
    demo = _cli("demo", "-q", "--session-dir", tmp_path / "s", tmp_path=tmp_path)
    assert demo.returncode == 0, demo.stderr
    (session,) = (tmp_path / "s").iterdir()
    bad = _cli("replay", session, "-q", "--no-session", "--on-divergence", "bogus", tmp_path=tmp_path)
    assert bad.returncode == 2
    assert "on_divergence must be 'fail' or 'continue' (got 'bogus')" in bad.stderr
