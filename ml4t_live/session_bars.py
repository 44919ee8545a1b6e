"""A replay's bars recorded by reference to the frame they came from, not row by row.

A replayed bar is a slice of a frame already in memory (``ReplayFeed``'s ``DataFeed`` prices,
sorted by timestamp). Copying each bar's values into row buffers, then into part files, then
merging those into ``bars.parquet`` cost a replay up to a third of the backtest's time
(docs/performance.md). :class:`SourceBars` instead counts the rows delivered so far and writes:

- once, when the first ``flush_rows`` rows have been delivered: the whole source, with exactly the
  columns the row-by-row recorder keeps, as ``.parts/source-bars.arrow`` (uncompressed Arrow IPC);
- every ``flush_rows`` rows delivered (and whenever the writer spills on time):
  ``.parts/source-bars.rows``, the number of rows delivered so far (a fixed-width number written
  in place with one ``pwrite``: a killed process leaves the old count or the new one);
- at close: ``bars.parquet`` = the first delivered rows of the source (the two files above go).

So a killed run's folder holds its bars up to the last count written, as the row-by-row
recorder's part files do (:func:`read_source_part` reads them back); a finished run's
``bars.parquet`` replays exactly as the source did (same rows, same order, same dtypes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

SOURCE_PART = "source-bars.arrow"  # not "bars-*": the numbered parts glob
SOURCE_ROWS = "source-bars.rows"


class SourceBars:
    """The delivered prefix of ``frame`` (sorted by timestamp); ``ranges`` maps each bar's
    timestamp to its ``(offset, length)`` rows in ``frame`` (``DataFeed``'s own index)."""

    def __init__(self, frame: pl.DataFrame, ranges: dict[Any, tuple[int, int]], parts_dir: Path,
                 flush_rows: int) -> None:  # fmt: skip
        self.frame, self.ranges = frame, ranges
        self.parts_dir, self.flush_rows = parts_dir, flush_rows
        self.rows = 0  # delivered so far
        self.marked = 0  # rows the count on disk covers
        self._count_fd: int | None = None  # source-bars.rows, open while the run writes

    def delivered(self, timestamp: Any) -> None:
        """The bar at ``timestamp`` was delivered (bars come in timestamp order)."""
        offset, length = self.ranges[timestamp]
        self.rows = offset + length
        if self.rows - self.marked >= self.flush_rows:
            self.mark()

    def mark(self) -> None:
        """Make the rows delivered so far durable (a killed process keeps them)."""
        if self.rows == self.marked:
            return
        if self._count_fd is None:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            source = self.parts_dir / SOURCE_PART
            partial = source.with_name(source.name + ".tmp")
            self.frame.write_ipc(partial, compression="uncompressed")
            os.replace(partial, source)  # before the count exists: a count never outruns its rows
            self._count_fd = os.open(self.parts_dir / SOURCE_ROWS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(self._count_fd, f"{self.rows:020d}\n".encode(), 0)
        self.marked = self.rows

    def write(self, target: Path) -> None:
        """Write the delivered rows to ``target`` and drop the crash-time files."""
        self.frame.slice(0, self.rows).write_parquet(target, compression="lz4")  # 2/3 of zstd's CPU
        if self._count_fd is not None:
            os.close(self._count_fd)
            self._count_fd = None
        for name in (SOURCE_ROWS, SOURCE_PART):
            (self.parts_dir / name).unlink(missing_ok=True)


def read_source_part(parts_dir: Path) -> pl.DataFrame | None:
    """The bars a killed replay had delivered by its last count, or None if it wrote none."""
    count, source = parts_dir / SOURCE_ROWS, parts_dir / SOURCE_PART
    if not (count.is_file() and source.is_file()):
        return None
    rows = int(count.read_text().strip() or 0)
    return pl.scan_ipc(source).head(rows).collect() if rows else None
