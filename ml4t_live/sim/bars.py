"""Recorded bars for the simulated venues: loading and per-timestamp grouping.

Threading rule: plain functions and an immutable record; safe anywhere, but the simulated venues
call them from their one venue loop.

The frame shape is ml4t.backtest's ``DataFeed`` long format, so the bars a simulated venue replays
are exactly the bars a backtest of the same file sees: one row per ``(timestamp, asset)``; the entity
column is auto-detected in DataFeed's order (``symbol``, ``asset``, ``product``, ``ticker``) and
renamed to ``asset``; missing ``open``/``high``/``low`` fall back to ``close``, a missing ``volume``
to ``0.0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import ConfigError
from ..feeds.bar_checks import check_bars, source_name

#: DataFeed's entity-column candidates, in its detection order.
ENTITY_CANDIDATES = ("symbol", "asset", "product", "ticker")
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
COLUMNS = ("timestamp", "asset", *_PRICE_COLUMNS)


@dataclass(frozen=True, slots=True)
class SimBar:
    """One asset's bar at one timestamp (the label the backtest would use)."""

    asset: str
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


def load_bars(source: str | Path | pl.DataFrame | Any) -> pl.DataFrame:
    """Load recorded bars as a long polars frame sorted by ``timestamp, asset``.

    ``source`` is a parquet or CSV path, a polars frame or a pandas frame. The result has exactly
    the columns ``timestamp, asset, open, high, low, close, volume`` (prices and volume Float64).
    Raises :class:`~ml4t_live.errors.ConfigError` saying what to fix when the input is unusable
    (unreadable file, wide format, missing ``timestamp``/``close``, nulls, duplicate rows).
    """
    name, is_csv = source_name(source)
    frame, _ = check_bars(_read(source), name, "refuse", is_csv=is_csv, remedy="fix the data")
    entity = next((c for c in ENTITY_CANDIDATES if c in frame.columns), None)
    if entity is None:
        raise ConfigError(
            f"bars have no asset column (looked for {', '.join(ENTITY_CANDIDATES)}; "
            f"found {frame.columns}); supply long format: one row per (timestamp, asset)"
        )
    missing = [c for c in ("timestamp", "close") if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"bars lack required column(s) {missing} (found {frame.columns}); "
            "a bar needs at least timestamp, an asset column and close"
        )
    frame = frame.rename({entity: "asset"}) if entity != "asset" else frame
    frame = _normalise_timestamp(frame)
    exprs: list[pl.Expr] = [pl.col("timestamp"), pl.col("asset").cast(pl.String)]
    try:
        close = pl.col("close").cast(pl.Float64)
        for name in ("open", "high", "low"):
            if name in frame.columns:
                exprs.append(pl.coalesce(pl.col(name).cast(pl.Float64), close).alias(name))
            else:
                exprs.append(close.alias(name))
        exprs.append(close.alias("close"))
        volume = pl.col("volume").cast(pl.Float64) if "volume" in frame.columns else pl.lit(0.0)
        exprs.append(volume.fill_null(0.0).alias("volume"))
        out = frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"bars have non-numeric price or volume columns: {exc}") from exc
    _check_nulls(out)
    _check_duplicates(out)
    return out.sort("timestamp", "asset")


def bar_groups(bars: pl.DataFrame) -> list[tuple[datetime, dict[str, SimBar]]]:
    """One ``(timestamp, {asset: SimBar})`` entry per distinct timestamp, in time order.

    ``bars`` is a frame from :func:`load_bars`. Timestamps are the Python objects polars yields
    (naive or tz-aware ``datetime`` exactly as stored), the labels the backtest uses.
    """
    groups: list[tuple[datetime, dict[str, SimBar]]] = []
    current: dict[str, SimBar] | None = None
    last_ts: object = None
    for ts, asset, o, h, lo, c, v in bars.select(COLUMNS).iter_rows():
        if current is None or ts != last_ts:
            current = {}
            groups.append((ts, current))
            last_ts = ts
        current[asset] = SimBar(asset, ts, o, h, lo, c, v)
    return groups


def _read(source: Any) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return source
    if isinstance(source, pl.LazyFrame):
        return source.collect()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"bars file {path} does not exist; pass a parquet or CSV file")
        try:
            if path.suffix.lower() == ".csv":
                return pl.read_csv(path, try_parse_dates=True)
            if path.suffix.lower() in (".parquet", ".pq"):
                return pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ConfigError(f"could not read bars from {path}: {exc}") from exc
        raise ConfigError(f"bars file {path} must end in .parquet or .csv")
    if type(source).__module__.startswith("pandas"):
        # DataFeed's own pandas conversion (keeps the datetime unit; no pyarrow needed).
        from ml4t.backtest._frame_inputs import pandas_frame

        try:
            return pandas_frame(source, label="bars")
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            raise ConfigError(f"could not convert the pandas bars frame: {exc}") from exc
    raise ConfigError(
        f"bars source must be a path, a polars or a pandas DataFrame, not {type(source).__name__}"
    )


def _normalise_timestamp(frame: pl.DataFrame) -> pl.DataFrame:
    dtype = frame.schema["timestamp"]
    if isinstance(dtype, pl.Datetime):
        return frame
    if dtype == pl.Date:
        return frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    if dtype == pl.String:
        try:
            return frame.with_columns(pl.col("timestamp").str.to_datetime())
        except pl.exceptions.PolarsError as exc:
            raise ConfigError(
                f"bars column 'timestamp' holds text that is not a date-time ({exc}); "
                "use ISO 8601 such as 2024-01-02T14:30:00"
            ) from exc
    raise ConfigError(f"bars column 'timestamp' must be a date-time, not {dtype}")


def _check_nulls(frame: pl.DataFrame) -> None:
    counts = frame.select(pl.col(c).null_count() for c in ("timestamp", "asset", "close")).row(0)
    bad = {c: n for c, n in zip(("timestamp", "asset", "close"), counts, strict=True) if n}
    if bad:
        raise ConfigError(
            f"bars have null values {bad}; drop or fill those rows (every bar needs a timestamp, "
            "an asset and a close)"
        )


def _check_duplicates(frame: pl.DataFrame) -> None:
    dupes = frame.group_by("timestamp", "asset").len().filter(pl.col("len") > 1)
    if dupes.height:
        first = dupes.sort("timestamp", "asset").row(0)
        raise ConfigError(
            f"bars have {dupes.height} duplicate (timestamp, asset) pair(s), first "
            f"{first[0]} {first[1]}; keep one row per asset and timestamp"
        )
