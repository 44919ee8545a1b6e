"""Project-wide test rules: a test that leaves an ``ml4t-*`` thread alive fails."""

from __future__ import annotations

import sys
import threading

import pytest
from loguru import logger

import ml4t_live  # noqa: F401  (imported first: importing it disables its logs)

logger.enable("ml4t_live")  # the tests read the library's log lines (it is silent by default)

_GRACE_SECONDS = 5.0

# The stream pytest gave stderr when the suite began (its capture file, or the terminal with -s).
# A sink bound to this object, not to whatever ``sys.stderr`` is when a line is written, keeps a
# late line from a worker thread in the capture even when it comes between two test phases (when
# pytest has put the terminal back): such a line once reached the terminal in the middle of the
# dots.
_SUITE_STDERR = sys.stderr


def _ml4t_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ml4t-") and t.is_alive()]


@pytest.fixture(autouse=True)
def suite_log_sink():
    """After every test loguru has the suite's one sink again: the CLI (and a few tests) replace
    the sinks while they run."""
    yield
    logger.remove()
    logger.add(_SUITE_STDERR)


@pytest.fixture(autouse=True)
def no_ml4t_thread_survives():
    before = set(_ml4t_threads())
    yield
    leaked = [t for t in _ml4t_threads() if t not in before]
    for thread in leaked:  # a closing thread gets a bounded moment to finish its join
        thread.join(_GRACE_SECONDS)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test left ml4t worker threads alive: {still}"


@pytest.fixture(autouse=True)
def isolated_state_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own journal directory (never the user's ~/.local/state); CLI
    subprocesses inherit it through the environment."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("ML4T_LIVE_STATE_DIR", str(path))
    return path
