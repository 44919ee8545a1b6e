"""The session folder's tables while a run writes them: row buffers spilled to part files.

Each table buffers rows in memory and spills them to ``.parts/<table>-NNNNN.arrow``
(uncompressed Arrow IPC, cheap to write between two bars); the writer merges the parts into
``<table>.parquet`` when the session closes. Orders and fills are buffered as the objects
(fills) or a tuple of their recorded fields (orders) and turned into columns only when spilled
(one pass per column instead of a dict per row: a replay that trades every bar spent a tenth of
the backtest's time building those rows).
:func:`read_table` reads a table back, merged or (a killed run) from its parts.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any

import polars as pl

from .session_bars import read_source_part

PARTS_DIR = ".parts"
PART_SUFFIX = ".arrow"  # Arrow IPC: the spill format (cheap to write); merged into parquet
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
BARS_BASE = ("timestamp", "asset", *BAR_COLUMNS)
ORDER_FIELDS = (
    "order_id", "asset", "side", "order_type", "quantity", "requested_quantity",
    "filled_quantity", "limit_price", "stop_price", "trail_amount", "parent_id",
    "rebalance_id", "status", "created_at", "filled_at", "filled_price", "commission_paid",
    "rejection_reason", "rejection_code", "cancelled_at", "cancellation_reason",
)  # fmt: skip


def _cell(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def order_row(order: Any) -> dict[str, Any]:
    """One ``ml4t.backtest.Order`` as a flat row (enums as their string values)."""
    return {name: _cell(getattr(order, name, None)) for name in ORDER_FIELDS}


def fill_row(fill: Any) -> dict[str, Any]:
    """One ``ml4t.backtest.Fill`` as a flat row: every dataclass field, enums as values."""
    return {f.name: _cell(getattr(fill, f.name)) for f in dataclasses.fields(fill)}


class Table:
    """Column buffer for one table, spilled to ``<parts>/<name>-NNNNN.arrow`` every
    ``flush_rows`` rows, or sooner for a table wider than the bars table (same cell budget)."""

    def __init__(self, name: str, parts_dir: Path, flush_rows: int) -> None:
        self.name, self.parts_dir, self.flush_rows = name, parts_dir, flush_rows
        # wide tables (orders ~21 columns, fills ~30) spill after fewer rows: bounded cells
        self.flush_cells = flush_rows * len(BARS_BASE)
        self.columns: dict[str, list[Any]] = {}
        self.dtypes: dict[str, pl.DataType] = {}
        self.rows = 0
        self.total_rows = 0
        self.parts: list[Path] = []

    def append(self, row: dict[str, Any]) -> None:
        columns, n = self.columns, self.rows
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * n
            column.append(value)
        self.rows = n = n + 1
        if len(columns) != len(row):
            for column in columns.values():
                if len(column) < n:
                    column.append(None)
        if n >= self.flush_rows or n * len(columns) >= self.flush_cells:
            self.flush()

    def _take_columns(self) -> dict[str, list[Any]]:
        columns = self.columns
        self.columns = {key: [] for key in columns}
        return columns

    def flush(self) -> None:
        if not self.rows:
            return
        # ns timestamps are buffered as epoch integers (polars would drop the nanoseconds).
        ns = {c: d for c, d in self.dtypes.items() if isinstance(d, pl.Datetime) and d.time_unit == "ns"}
        overrides = {**self.dtypes, **dict.fromkeys(ns, pl.Int64)}
        frame = pl.DataFrame(self._take_columns(), schema_overrides=overrides, strict=False)
        if ns:
            frame = frame.with_columns(pl.col(c).cast(d) for c, d in ns.items())
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        part = self.parts_dir / f"{self.name}-{len(self.parts):05d}{PART_SUFFIX}"
        partial = part.with_name(part.name + ".tmp")  # a kill mid-write leaves no torn part
        frame.write_ipc(partial, compression="uncompressed")
        os.replace(partial, part)
        self.parts.append(part)
        self.total_rows += self.rows
        self.rows = 0

    def merge(self, target: Path, empty_columns: Iterable[str] | None) -> bool:
        """Flush, then stream the parts into ``target``; True when a file was written."""
        self.flush()
        if self.parts:
            scans = [pl.scan_ipc(p) for p in self.parts]
            pl.concat(scans, how="diagonal_relaxed").sink_parquet(target)
            for part in self.parts:
                part.unlink()
            self.parts = []
            return True
        if empty_columns is not None:
            schema = {c: self.dtypes.get(c, pl.Float64 if c in BAR_COLUMNS else pl.String)
                      for c in empty_columns}  # fmt: skip
            pl.DataFrame(schema=schema).write_parquet(target)
            return True
        return False


class RecordTable(Table):
    """Orders or fills, read into columns when spilled, every ``flush_rows`` records (no cell
    budget; each spill costs about half a millisecond whatever its size). A record is taken once
    it is final (a finished order, a fill; the orders still open at the end just before the
    writer closes). Fills are kept as the objects (a reference: the broker keeps its fills
    anyway); orders as the tuple of their recorded fields, read when recorded (one C call), so
    the buffer keeps no finished ``Order`` alive (a venue broker packs them:
    :mod:`ml4t_live.order_history`; at a minute per bar a spill comes every bar, but a fast
    replay buffers up to ``flush_rows`` of them)."""

    def __init__(self, name: str, parts_dir: Path, flush_rows: int, fields: tuple[str, ...] | None) -> None:
        super().__init__(name, parts_dir, flush_rows)
        self.fields = fields  # None: the objects' dataclass fields (kept as the objects)
        self._read = None if fields is None else lambda obj: tuple(map(getattr, repeat(obj), fields))
        if fields is not None and len(fields) > 1:
            self._read = attrgetter(*fields)  # a tuple, in one call
        self.records: list[Any] = []

    def extend(self, objects: Iterable[Any]) -> None:
        read = self._read
        for obj in objects:
            if self.fields is None:
                self.fields = tuple(f.name for f in dataclasses.fields(obj))
            if read is not None:
                try:
                    obj = read(obj)
                except AttributeError:  # a field this kind of order does not have
                    obj = tuple(getattr(obj, name, None) for name in self.fields)
            self.records.append(obj)
            self.rows = n = self.rows + 1
            if n >= self.flush_rows:
                self.flush()

    def _take_columns(self) -> dict[str, Any]:
        records, self.records = self.records, []
        fields = self.fields or ()
        if self._read is not None:
            raw = zip(fields, map(list, zip(*records, strict=True)), strict=True) if records else ()
        else:
            raw = ((name, list(map(attrgetter(name), records))) for name in fields)
        columns: dict[str, Any] = {}
        for name, column in raw:
            kinds = set(map(type, column))
            if any(issubclass(kind, enum.Enum) for kind in kinds):
                column = [_cell(value) for value in column]
            elif datetime in kinds and kinds <= {datetime, type(None)}:
                column = _datetimes(name, column)
            columns[name] = column
        return columns


_EPOCH, _EPOCH_UTC, _MICROSECOND = datetime(1970, 1, 1), datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


def _datetimes(name: str, values: list[datetime | None]) -> Any:
    """``values`` as a polars column, as ``pl.Series(values)`` makes it but cheaper: each
    distinct object is converted once (the orders and fills of one bar share its timestamp
    object; polars converts every time-zone-aware value through Python). Values with
    different time zones are left to polars."""
    zone = next(v for v in values if v is not None).tzinfo
    epoch = _EPOCH if zone is None else _EPOCH_UTC
    key = None if zone is None else (getattr(zone, "key", None) or ("UTC" if zone is UTC else None))
    if zone is not None and key is None:
        return values
    micros: dict[int, int] = {}
    out = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        found = micros.get(id(value))
        if found is None:
            if value.tzinfo is not zone:
                return values
            found = micros[id(value)] = (value - epoch) // _MICROSECOND
        out.append(found)
    return pl.Series(name, out, dtype=pl.Int64).cast(pl.Datetime("us", key))


def read_table(folder: Path, name: str) -> pl.DataFrame | None:
    """A session table: its parquet file, else (a killed run) its part files, else None."""
    merged = folder / f"{name}.parquet"
    if merged.exists():
        return pl.read_parquet(merged)
    parts_dir = folder / PARTS_DIR
    if name == "bars":
        source = read_source_part(parts_dir)
        if source is not None:
            return source
    parts = sorted(parts_dir.glob(f"{name}-*{PART_SUFFIX}"), key=_part_number)
    if not parts:
        return None
    return pl.concat([pl.read_ipc(p) for p in parts], how="diagonal_relaxed")


def _part_number(part: Path) -> int:
    """``bars-00012.arrow`` -> 12 (numeric: part 100000 sorts after 99999, not after 10000)."""
    return int(part.name[: -len(PART_SUFFIX)].rsplit("-", 1)[1])
