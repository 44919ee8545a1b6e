"""A cheap "an operator wrote to this journal" flag for a running shadow engine: ``<journal>.signal``.

An operator command (``ml4t-live halt`` / ``resume``) commits the trading state to the journal,
then steps the one byte of the journal's signal file (when a run made one). The running engine
reads that byte through a shared mapping at each bar (tens of nanoseconds, against 2-5 µs for
SQLite's ``PRAGMA data_version``, which a replay would otherwise pay on every bar) and asks the
journal when it changed. Two commands at once may write the same value: the engine then asks
once, after both commits (each command commits before it reads the byte it steps). It also asks
after each of its own commits (at least every :data:`~ml4t_live.shadow_journal.COMMIT_SECONDS`
while bars come), so a command that died between its commit and its signal, or a writer that
knows nothing of the signal, is still seen (later: in a fast replay, many bars later). Without a
usable signal file (it cannot be made) the engine asks at every bar.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from loguru import logger

_log = logger.bind(component="journal")


def signal_path(journal_path: str | Path) -> Path:
    path = Path(journal_path)
    return path.with_name(path.name + ".signal")


class ChangeSignal:
    """The running engine's side: :meth:`changed` says when the signal moved.

    ``map[0] != seen`` is the same test without a call (the engine's per-bar read); without a
    usable signal file ``map`` is a constant byte that never equals ``seen``, so it always says
    "changed", as :meth:`changed` does."""

    def __init__(self, journal_path: str | Path) -> None:
        self.map: mmap.mmap | bytes = _UNUSABLE
        self.seen = -1  # (a byte is 0-255: without a usable file every read is a change)
        path = signal_path(journal_path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size < 1:
                    os.pwrite(fd, b"\0", 0)
                self.map = mmap.mmap(fd, 1, prot=mmap.PROT_READ)
            finally:
                os.close(fd)  # the mapping keeps the file
        except (OSError, ValueError) as exc:
            _log.warning("no operator signal at {} ({}): the journal is asked at every bar", path,
                         getattr(exc, "strerror", None) or type(exc).__name__)  # fmt: skip
            return
        self.seen = self.map[0]

    def changed(self) -> bool:
        """True once for each change of the signal since the last call (always, without one)."""
        now = self.map[0]
        if now == self.seen:
            return False
        if self.map is not _UNUSABLE:
            self.seen = now
        return True

    def close(self) -> None:
        if self.map is not _UNUSABLE:
            self.map.close()
            self.map, self.seen = _UNUSABLE, -1


#: the byte read when there is no usable signal file
_UNUSABLE = b"\0"


def tell_running(journal_path: str | Path) -> None:
    """The operator's side, after its commit: step the signal's byte. No signal file (no shadow
    run made one) or one it cannot read or write: nothing is told, and a running engine still
    finds the change after its next commit."""
    try:
        fd = os.open(signal_path(journal_path), os.O_RDWR)
    except OSError:
        return
    try:
        held = os.pread(fd, 1, 0)
        os.pwrite(fd, bytes([(held[0] + 1) % 256 if held else 1]), 0)
    except OSError:
        pass  # as above
    finally:
        os.close(fd)
