"""The journal's change signal: a second process's ``tell_running`` makes the engine's side ask."""

from __future__ import annotations

import subprocess
import sys

from ml4t_live.journal.signal import ChangeSignal, signal_path, tell_running


def _tell_from_another_process(journal) -> None:
    code = f"from ml4t_live.journal.signal import tell_running; tell_running({str(journal)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_changed_once_after_each_signal_from_another_process(tmp_path):
    journal = tmp_path / "shadow-x-s.journal"
    signal = ChangeSignal(journal)
    try:
        assert signal_path(journal).read_bytes() == b"\0"
        assert not signal.changed()
        _tell_from_another_process(journal)
        assert signal.changed()
        assert not signal.changed()  # once per signal
        _tell_from_another_process(journal)
        assert signal.changed()
    finally:
        signal.close()


def test_telling_a_journal_no_run_signals_creates_nothing(tmp_path):
    journal = tmp_path / "j.journal"
    tell_running(journal)
    assert not signal_path(journal).exists()


def test_a_run_reopening_the_signal_file_keeps_what_it_holds(tmp_path):
    journal = tmp_path / "j.journal"
    ChangeSignal(journal).close()
    tell_running(journal)
    held = signal_path(journal).read_bytes()
    again = ChangeSignal(journal)
    try:
        assert signal_path(journal).read_bytes() == held == b"\1"
        assert not again.changed()  # what it found at its start is not a change
    finally:
        again.close()


def test_the_byte_wraps_and_the_wrap_is_a_change(tmp_path):
    journal = tmp_path / "j.journal"
    signal_path(journal).write_bytes(b"\xff")
    signal = ChangeSignal(journal)
    try:
        tell_running(journal)
        assert signal_path(journal).read_bytes() == b"\0"
        assert signal.changed()
    finally:
        signal.close()


def test_without_a_usable_signal_file_every_bar_asks(tmp_path):
    journal = tmp_path / "j.journal"
    signal_path(journal).mkdir()  # a directory where the file should be: it cannot be opened
    signal = ChangeSignal(journal)
    try:
        assert signal.changed() and signal.changed()
    finally:
        signal.close()
    tell_running(journal)  # nothing to step, no error
