"""Checking recorded bars before they are replayed: bad prices, no bars, duplicate bars.

A bar whose close (or price) is missing, or whose open, high, low, close or price is NaN, zero or
negative (a missing open/high/low falls back to the close, as the simulated venues do) would change the
run's equity silently; a file with no bars would "run" zero bars and exit 0; two rows for one
(timestamp, asset) are ambiguous. :func:`check_bars` finds them and names the first one by file,
row, column and value. The policy decides what happens next:

- ``refuse`` (the default): a :class:`~ml4t_live.errors.ConfigError` (exit code 2), one line;
- ``drop``: the bad rows are dropped (the first of duplicates is kept), logged and counted.

An empty file is refused under both policies: there is nothing to replay. Row numbers count data
rows from 1; for a CSV file the line number is given too (the header is line 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from loguru import logger

from ..errors import ConfigError

_log = logger.bind(component="bar-checks")

POLICIES = ("refuse", "drop")
#: Checked when present (DataFeed's default names; ``*_col`` overrides are honoured).
PRICE_COLUMNS = ("open", "high", "low", "close", "price")
#: May be missing (null) in a row: they fall back to the close; NaN, zero or negative is still bad.
OPTIONAL_PRICES = ("open", "high", "low")
ENTITY_CANDIDATES = ("symbol", "asset", "product", "ticker")  # ml4t.backtest DataFeed's order
_ROW = "__ml4t_row"


@dataclass(frozen=True, slots=True)
class BadRow:
    """One refused row: where it is and what is wrong with it."""

    row: int  # 0-based position in the frame
    column: str
    value: Any
    problem: str

    def describe(self, source: str, is_csv: bool) -> str:
        line = f" (line {self.row + 2})" if is_csv else ""
        shown = "" if self.value is None else f" ({self.value!r})"
        return f"{source} row {self.row + 1}{line}: {self.column} {self.problem}{shown}"


DROP_HINT = "fix the data, or pass --on-bad-bars drop to drop such rows (they are counted in the summary)"


def check_bars(frame: pl.DataFrame, source: str, policy: str = "refuse", *, is_csv: bool = False,
               columns: dict[str, Any] | None = None, remedy: str = DROP_HINT) -> tuple[pl.DataFrame, int]:  # fmt: skip
    """``frame`` without its bad rows and how many were dropped; raises ConfigError on refusal.

    ``columns`` are DataFeed's ``*_col`` keyword arguments (``timestamp_col``, ``entity_col``,
    ``close_col`` ...), so a renamed column is checked under its own name.
    """
    if policy not in POLICIES:
        raise ConfigError(f"--on-bad-bars must be refuse or drop (got {policy!r})")
    if frame.height == 0:
        raise ConfigError(f"{source} holds no bars (only a header, or an empty table): nothing to replay")
    bad = find_bad_rows(frame, columns or {})
    if not bad:
        return frame, 0
    first = bad[0].describe(source, is_csv)
    if policy == "refuse":
        more = f"; {len(bad)} bad rows in all" if len(bad) > 1 else ""
        raise ConfigError(f"bad bar in {first}{more}; {remedy}")
    rows = sorted({b.row for b in bad})
    kept = frame.with_row_index(_ROW).filter(~pl.col(_ROW).is_in(rows)).drop(_ROW)
    if kept.height == 0:
        raise ConfigError(f"every bar in {source} is bad (first: {first}): nothing to replay")
    _log.warning("dropped {} bad bar row(s) from {} (--on-bad-bars drop); first: {}", len(rows), source, first)
    for item in bad[1:20]:
        _log.debug("dropped {}", item.describe(source, is_csv))
    return kept, len(rows)


def find_bad_rows(frame: pl.DataFrame, columns: dict[str, Any]) -> list[BadRow]:
    """Every bad price cell and every repeated (timestamp, asset) row, in row order."""
    indexed = frame.with_row_index(_ROW)
    bad: list[BadRow] = []
    optional = {columns.get(f"{c}_col") or c for c in OPTIONAL_PRICES}
    for column in _price_columns(frame, columns):
        bad += _bad_prices(indexed, column, may_be_missing=column in optional)
    keys = [columns.get("timestamp_col") or "timestamp", _entity_column(frame, columns)]
    if all(k in frame.columns for k in keys):
        bad += _duplicates(indexed, keys)  # type: ignore[arg-type]
    return sorted(bad, key=lambda b: b.row)


def _price_columns(frame: pl.DataFrame, columns: dict[str, Any]) -> list[str]:
    names = [columns.get(f"{c}_col") or c for c in PRICE_COLUMNS]
    return [n for n in dict.fromkeys(names) if n in frame.columns and frame.schema[n].is_numeric()]


def _entity_column(frame: pl.DataFrame, columns: dict[str, Any]) -> str | None:
    if columns.get("entity_col"):
        return columns["entity_col"]
    return next((c for c in ENTITY_CANDIDATES if c in frame.columns), None)


def _bad_prices(indexed: pl.DataFrame, column: str, *, may_be_missing: bool) -> list[BadRow]:
    value = pl.col(column)
    problem = (
        pl.when(value.is_null()).then(pl.lit(None if may_be_missing else "is null (missing)", pl.String))
        .when(value.cast(pl.Float64).is_nan()).then(pl.lit("is NaN"))
        .when(value <= 0).then(pl.lit("is not positive"))
        .otherwise(None)
    )  # fmt: skip
    hits = indexed.select(_ROW, value.alias("value"), problem.alias("problem")).filter(
        pl.col("problem").is_not_null()
    )
    return [BadRow(r, column, v, p) for r, v, p in hits.iter_rows()]


def _duplicates(indexed: pl.DataFrame, keys: list[str]) -> list[BadRow]:
    """Every row repeating an earlier row's (timestamp, asset); the first one is kept."""
    if not indexed.select(pl.struct(keys).is_duplicated().any()).item():
        return []  # the usual case, a third of the cost of finding which rows repeat
    firsts = indexed.group_by(keys).agg(pl.col(_ROW).min().alias("__first"))
    repeated = indexed.join(firsts, on=keys, nulls_equal=True).filter(pl.col(_ROW) != pl.col("__first"))
    out = []
    for row, first, *values in repeated.select(_ROW, "__first", *keys).iter_rows():
        shown = ", ".join(str(v) for v in values)
        out.append(BadRow(row, "/".join(keys), shown, f"is a duplicate of row {first + 1}"))
    return out


def source_name(source: Any) -> tuple[str, bool]:
    """How a bar source is named in messages, and whether it is a CSV file."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        return str(path), path.suffix.lower() in (".csv", ".txt")
    return "the prices frame", False
