"""Session files: what one run received and did, written to one folder.

A session folder (default ``./sessions/<Strategy>-<UTC start %Y%m%dT%H%M%SZ>/``) holds::

    bars.parquet      every bar the feed delivered, in ml4t.backtest's long format
                      (timestamp, asset, open, high, low, close, volume[, vwap, bid, ask, ...])
    signals.parquet   per-asset signals delivered with those bars (timestamp, asset, ...), if any
    context.parquet   market-wide context delivered with those bars (timestamp, ...), if any
    orders.parquet    finished orders (ids, side, type, prices, status, times, rejection reason)
    fills.parquet     fills (every ml4t.backtest ``Fill`` field; enums as their values)
    equity.parquet    the equity curve (timestamp, equity)
    latency.parquet   venue runs: per fill, bar received -> order sent -> fill received (wall-clock
                      UTC, and the two delays in ms; see :mod:`ml4t_live.latency`)
    summary.json      the run's summary and metrics
    session.log       the engine log (the CLI adds this sink; the library never adds sinks)

Rows are buffered and spilled to part files (``.parts/<table>-NNNNN.arrow``: uncompressed Arrow
IPC, cheap to write between two bars) every ``flush_rows`` rows (fewer for wide tables; orders
and fills are kept as the objects until then) and at
least every ``spill_seconds`` (60 s) of wall-clock time, so a long session's memory stays bounded
and a process that dies loses at most the last minute (or ``flush_rows`` rows) of each table;
``close()`` merges the parts (streaming) into the parquet files above. A session whose process
died before ``close()`` can still be read back: :func:`read_session_bars` falls back to the part
files. A replay's bars are recorded by reference to the frame they came from instead
(:meth:`SessionWriter.record_bars_from`, :mod:`ml4t_live.session_bars`), with the same guarantee.
Part-file handling lives in :mod:`ml4t_live.session_tables`.

The writer is used from the engine thread only; it is not thread-safe.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import monotonic as time_monotonic
from typing import Any

import polars as pl
from loguru import logger

from ml4t_live.errors import ConfigError
from ml4t_live.session_bars import SourceBars
from ml4t_live.session_state import unfinished_reason
from ml4t_live.session_tables import (  # noqa: F401  (re-exported: the session files' vocabulary)
    BAR_COLUMNS,
    BARS_BASE,
    ORDER_FIELDS,
    PART_SUFFIX,
    PARTS_DIR,
    RecordTable,
    Table,
    fill_row,
    order_row,
    read_table,
)

_log = logger.bind(component="session")

DEFAULT_ROOT = Path("sessions")
DEFAULT_FLUSH_ROWS = 2_000
#: and at least this often (wall-clock seconds, checked after each bar) when rows are buffered
DEFAULT_SPILL_SECONDS = 60.0
EMPTY_BAR_ASSET = ""  # see SessionWriter.add_bar
OPTIONAL_BAR_COLUMNS = ("vwap", "bid", "ask", "mid", "bid_size", "ask_size")
_BARS_BASE = BARS_BASE
#: the keys of a bar dict without optional columns (ml4t.backtest's DataFeed always gives these)
_PLAIN_BAR_KEYS = frozenset({"price", *BAR_COLUMNS, "signals"})
TABLES = ("bars", "signals", "context", "orders", "fills", "equity", "latency")
# Tables written (with their columns, possibly empty) even when nothing was recorded.
_ALWAYS = {
    "bars": ("timestamp", "asset", *BAR_COLUMNS),
    "orders": ORDER_FIELDS,
}  # "fills": ml4t.backtest.Fill's fields, looked up at close


def timestamp_dtype(ts: Any) -> pl.Datetime:
    """The polars dtype that round-trips ``ts`` as ml4t.backtest's DataFeed would deliver it.

    ``pandas.Timestamp`` (what the backtest yields for ns columns) maps to ns; a ``datetime``
    to us. The time zone is kept (``ZoneInfo`` key, or ``UTC``); a naive value stays naive.
    """
    unit = "ns" if type(ts).__name__ == "Timestamp" and hasattr(ts, "value") else "us"
    tz = getattr(ts, "tzinfo", None)
    if tz is None:
        return pl.Datetime(unit)
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key is None:
        key = "UTC" if tz.utcoffset(ts) == timedelta(0) else str(tz)
    return pl.Datetime(unit, key)


def json_safe(value: Any) -> Any:
    """Convert ``value`` into something ``json.dumps`` accepts, losing as little as possible."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return json_safe(float(value))
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy / polars scalars
    if callable(item) and getattr(value, "ndim", 0) == 0:
        return json_safe(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays, pandas / polars series
    if callable(tolist):
        return json_safe(tolist())
    return str(value)


class SessionWriter:
    """Writes one session folder; see the module docstring for its contents."""

    def __init__(
        self,
        path: Path | str,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        spill_seconds: float | None = DEFAULT_SPILL_SECONDS,
    ) -> None:
        self.dir = Path(path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows = max(1, int(flush_rows))
        self.spill_seconds = spill_seconds
        self._last_spill = time_monotonic()
        self._parts = self.dir / PARTS_DIR
        self._tables = {name: Table(name, self._parts, self.flush_rows) for name in TABLES}
        self._tables["orders"] = RecordTable("orders", self._parts, self.flush_rows, ORDER_FIELDS)
        self._tables["fills"] = RecordTable("fills", self._parts, self.flush_rows, None)
        self._tables["bars"].columns = {name: [] for name in _BARS_BASE}
        self._source: SourceBars | None = None
        self._ts_dtype: pl.Datetime | None = None
        self._closed = False
        _log.debug("session folder {}", self.dir)

    @classmethod
    def create(
        cls,
        root: Path | str | None,
        strategy_name: str,
        started_at: datetime,
        *,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
    ) -> SessionWriter:
        """Make a fresh ``<root>/<strategy_name>-<UTC start>/`` (``-2``, ``-3``... if taken)."""
        root = Path(root) if root is not None else DEFAULT_ROOT
        start = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
        base = f"{_safe_name(strategy_name)}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 10_000):
            path = root / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path, flush_rows=flush_rows)
        raise FileExistsError(f"no free session folder name for {root / base}")

    @classmethod
    def at(cls, path: Path | str, **options: Any) -> SessionWriter:
        """Write into exactly ``path`` (created if missing); options as for the constructor."""
        return cls(path, **options)

    @property
    def log_path(self) -> Path:
        return self.dir / "session.log"

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"session writer for {self.dir} is closed")

    def _note_timestamp(self, timestamp: Any) -> None:
        self._ts_dtype = timestamp_dtype(timestamp)
        for name in ("bars", "signals", "context"):
            self._tables[name].dtypes["timestamp"] = self._ts_dtype

    # -- recorder -------------------------------------------------------------------------
    def record_bars_from(self, frame: pl.DataFrame, ranges: dict[Any, tuple[int, int]]) -> None:
        """Every bar :meth:`add_bar` is given from now on is the slice ``ranges[timestamp]`` of
        ``frame`` (a replay's source, sorted by timestamp, with the columns recorded): record
        it by reference (:mod:`ml4t_live.session_bars`). Only before the first bar."""
        self._check_open()
        if self.rows_written["bars"] or self._source is not None:
            raise RuntimeError("record_bars_from() must come before the first bar is recorded")
        self._source = SourceBars(frame, ranges, self._parts, self.flush_rows)

    def add_bar(self, timestamp: Any, data: dict[str, dict], context: dict | None) -> None:
        """Record one delivered bar: ``data`` and ``context`` exactly as ``on_data`` got them."""
        self._check_open()
        if self._source is not None:
            self._source.delivered(timestamp)
            return
        if self._ts_dtype is None:
            self._note_timestamp(timestamp)
        if self._ts_dtype.time_unit == "ns":
            timestamp = timestamp.value  # pandas.Timestamp: epoch ns, see Table.flush
        bars, signals = self._tables["bars"], self._tables["signals"]
        columns = bars.columns
        for asset, bar in data.items():
            if len(columns) == len(_BARS_BASE) and bar.keys() == _PLAIN_BAR_KEYS:
                # fast path: a plain OHLCV bar into a table without optional columns
                columns["timestamp"].append(timestamp)
                columns["asset"].append(asset)
                columns["open"].append(bar["open"])
                columns["high"].append(bar["high"])
                columns["low"].append(bar["low"])
                columns["close"].append(bar["close"])
                columns["volume"].append(bar["volume"])
                bars.rows += 1
                if bars.rows >= bars.flush_rows:
                    bars.flush()
                    columns = bars.columns
            else:
                row = {"timestamp": timestamp, "asset": asset}
                for column in BAR_COLUMNS:
                    row[column] = bar.get(column)
                for column in OPTIONAL_BAR_COLUMNS:
                    if column in bar:
                        row[column] = bar[column]
                bars.append(row)
                columns = bars.columns
            asset_signals = bar.get("signals")
            if asset_signals:
                signals.append({"timestamp": timestamp, "asset": asset, **asset_signals})
        if context:
            self._tables["context"].append({"timestamp": timestamp, **context})
        elif not data:
            # A bar with neither prices nor context (signals for an asset without a price row)
            # still reached on_data: a signals row for the asset "" (never delivered, having no
            # prices) keeps its timestamp, so a replay calls on_data there too, with {} and {}.
            signals.append({"timestamp": timestamp, "asset": EMPTY_BAR_ASSET})

    def add_orders(self, orders: Iterable[Any]) -> None:
        """Record finished orders (spilled from memory by the broker/engine)."""
        self._check_open()
        self._tables["orders"].extend(orders)  # type: ignore[attr-defined]

    def add_fills(self, fills: Iterable[Any]) -> None:
        """Record fills (every ``ml4t.backtest.Fill`` field)."""
        self._check_open()
        self._tables["fills"].extend(fills)  # type: ignore[attr-defined]

    def add_latency(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record latency rows (one per fill, from a venue broker's ``take_latency``)."""
        self._check_open()
        table = self._tables["latency"]
        for row in rows:
            table.append(row)

    def spill_if_due(self, now: float | None = None) -> bool:
        """Spill every buffered row to part files when ``spill_seconds`` have passed since the
        last time (a slow live session reaches ``flush_rows`` only after days: this bounds what
        a process that dies can lose). ``now`` is a ``time.monotonic()`` reading. True if spilled."""
        now = time_monotonic() if now is None else now
        if self.spill_seconds is None or now - self._last_spill < self.spill_seconds:
            return False
        self._check_open()
        self._last_spill = now
        for table in self._tables.values():
            table.flush()
        if self._source is not None:
            self._source.mark()
        return True

    @property
    def rows_written(self) -> dict[str, int]:
        """Rows recorded so far per table (buffered + spilled)."""
        rows = {name: t.total_rows + t.rows for name, t in self._tables.items()}
        if self._source is not None:
            rows["bars"] += self._source.rows
        return rows

    # -- whole-file writes ----------------------------------------------------------------
    def add_equity(self, points: Iterable[tuple[Any, float]]) -> None:
        """Append equity points ``(timestamp, equity)``; merged into ``equity.parquet`` at close.

        Use either this (a long session that does not keep its curve in memory) or
        :meth:`write_equity` (the whole curve at once), not both.
        """
        self._check_open()
        table = self._tables["equity"]
        for timestamp, equity in points:
            if "timestamp" not in table.dtypes:
                table.dtypes["timestamp"] = timestamp_dtype(timestamp)
                table.dtypes["equity"] = pl.Float64
            if table.dtypes["timestamp"].time_unit == "ns" and hasattr(timestamp, "value"):
                timestamp = timestamp.value  # see Table.flush
            table.append({"timestamp": timestamp, "equity": float(equity)})

    def write_equity(self, curve: Iterable[tuple[Any, float]]) -> Path:
        """(Over)write ``equity.parquet`` with the whole curve of ``(timestamp, equity)``."""
        points = list(curve)
        ts_dtype = timestamp_dtype(points[0][0]) if points else (self._ts_dtype or pl.Datetime("us"))
        frame = pl.DataFrame(
            {"timestamp": [p[0] for p in points], "equity": [float(p[1]) for p in points]},
            schema={"timestamp": ts_dtype, "equity": pl.Float64},
        )
        target = self.dir / "equity.parquet"
        frame.write_parquet(target)
        return target

    def write_summary(self, summary: dict[str, Any]) -> Path:
        """(Over)write ``summary.json`` atomically; datetimes, enums, numpy values are converted."""
        target = self.dir / "summary.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(json_safe(summary), indent=2, sort_keys=False) + "\n")
        os.replace(tmp, target)
        return target

    def close(self) -> None:
        """Flush and merge everything into the final parquet files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # deferred: keeps `import ml4t_live.session` light
        from ml4t.backtest import Fill

        empty = {**_ALWAYS, "fills": tuple(f.name for f in dataclasses.fields(Fill))}
        for name, table in self._tables.items():
            if name == "bars" and self._source is not None:
                self._source.write(self.dir / "bars.parquet")
            elif name != "equity":
                table.merge(self.dir / f"{name}.parquet", empty.get(name))
        equity = self._tables["equity"]
        if equity.rows or equity.parts:
            equity.merge(self.dir / "equity.parquet", None)
        elif not (self.dir / "equity.parquet").exists():
            self.write_equity([])
        if self._parts.exists() and not any(self._parts.iterdir()):
            self._parts.rmdir()
        _log.debug("session {} closed: {}", self.dir, self.rows_written)


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return cleaned or "strategy"


def read_session_bars(
    path: Path | str,
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    """Read a session's recorded bars back as ``(prices, signals, context)``.

    The frames are in ml4t.backtest's long format with the recorded dtypes and time zone, ready
    for ``ReplayFeed`` or ``ml4t.backtest.DataFeed``. ``path`` is the session folder (or its
    ``bars.parquet``). A session that was never closed is read from its part files.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"session folder {folder} does not exist")
    unfinished = unfinished_reason(folder)
    prices = read_table(folder, "bars")
    if prices is None:
        raise ConfigError(f"{folder} holds no recorded bars (no bars.parquet, no part files)"
                          + (f"; {unfinished}" if unfinished else ""))  # fmt: skip
    if unfinished:
        _log.warning("{} is a PARTIAL session: {}; it holds {} bars (up to {})", folder,
                     unfinished, prices["timestamp"].n_unique(), prices["timestamp"].max())  # fmt: skip
    signals = read_table(folder, "signals")
    context = read_table(folder, "context")
    return prices, signals, context
