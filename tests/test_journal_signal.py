"""The journal's change signal: a second process's ``tell_running`` makes the engine's side ask."""

from __future__ import annotations

import subprocess
import sys
import time

from ml4t_live.journal.signal import ChangeSignal, signal_path, tell_running


def _tell_from_another_process(journal) -> None:
    code = f"from ml4t_live.journal.signal import tell_running; tell_running({str(journal)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_due_once_after_each_signal_from_another_process(tmp_path):
    journal = tmp_path / "shadow-x-s.journal"
    signal = ChangeSignal(journal, recheck=3600.0)
    try:
        assert signal_path(journal).stat().st_size == 8
        assert not signal.due()
        _tell_from_another_process(journal)
        assert signal.due()
        assert not signal.due()  # once per signal
        _tell_from_another_process(journal)
        assert signal.due()
    finally:
        signal.close()


def test_without_a_signal_due_again_after_the_recheck(tmp_path):
    signal = ChangeSignal(tmp_path / "j.journal", recheck=0.05)
    try:
        start = time.monotonic()
        assert not signal.due()
        deadline = start + 10
        while not signal.due():
            assert time.monotonic() < deadline, "the recheck never came"
        assert time.monotonic() - start >= 0.05
    finally:
        signal.close()


def test_telling_a_journal_no_run_signals_creates_nothing(tmp_path):
    journal = tmp_path / "j.journal"
    tell_running(journal)
    assert not signal_path(journal).exists()


def test_a_run_reopening_the_signal_file_keeps_what_it_holds(tmp_path):
    journal = tmp_path / "j.journal"
    first = ChangeSignal(journal, recheck=3600.0)
    first.close()
    tell_running(journal)
    held = signal_path(journal).read_bytes()
    again = ChangeSignal(journal, recheck=3600.0)
    try:
        assert signal_path(journal).read_bytes() == held and held != bytes(8)
        assert not again.due()  # what it found at its start is not a change
    finally:
        again.close()
