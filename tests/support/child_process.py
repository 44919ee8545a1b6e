"""A Python script run in a child process (a run that can be killed at a failpoint, then restarted)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_script(script: str, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess:
    """``python -c script *args`` with the repository (the working directory) importable and
    ``ML4T_LIVE_FAILPOINT`` set to ``failpoint`` if given; its output captured, 120 s at most."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    if failpoint:
        env["ML4T_LIVE_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-c", script, *args], check=False, capture_output=True, text=True, timeout=120,
                          env=env)  # fmt: skip
