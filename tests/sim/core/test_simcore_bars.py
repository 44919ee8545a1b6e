"""load_bars / bar_groups: DataFeed's long format, fallbacks, and clear errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.sim.bars import SimBar, bar_groups, load_bars

T0, T1 = datetime(2024, 1, 2, 14, 30), datetime(2024, 1, 2, 14, 31)


def test_symbol_column_is_renamed_and_missing_ohlv_fall_back(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"timestamp": [T1, T0, T0], "symbol": ["B", "B", "A"], "close": [2.0, 1.0, 5], "high": [None, 1.5, None]}
    )
    bars = load_bars(frame)
    assert bars.columns == ["timestamp", "asset", "open", "high", "low", "close", "volume"]
    assert bars.rows() == [
        (T0, "A", 5.0, 5.0, 5.0, 5.0, 0.0),
        (T0, "B", 1.0, 1.5, 1.0, 1.0, 0.0),
        (T1, "B", 2.0, 2.0, 2.0, 2.0, 0.0),
    ]
    assert all(bars.schema[c] == pl.Float64 for c in ("open", "high", "low", "close", "volume"))


def test_parquet_csv_and_pandas_sources_agree(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "timestamp": [T0, T0, T1],
            "ticker": ["A", "B", "A"],
            "open": [1.0, 2.0, 3.0],
            "high": [1.5, 2.5, 3.5],
            "low": [0.5, 1.5, 2.5],
            "close": [1.2, 2.2, 3.2],
            "volume": [10, 20, 30],
        }
    )
    frame.write_parquet(tmp_path / "bars.parquet")
    frame.write_csv(tmp_path / "bars.csv")
    expected = load_bars(frame)
    assert load_bars(tmp_path / "bars.parquet").equals(expected)
    assert load_bars(str(tmp_path / "bars.csv")).equals(expected)
    flat = pd.DataFrame(frame.to_dict(as_series=False))
    assert load_bars(flat).equals(expected)
    assert load_bars(flat.set_index(["timestamp", "ticker"])).equals(expected)


def test_bar_groups_one_entry_per_timestamp_in_order() -> None:
    aware = [datetime(2024, 1, 2, 15, tzinfo=timezone.utc), datetime(2024, 1, 2, 16, tzinfo=timezone.utc)]
    bars = load_bars(
        pl.DataFrame({"timestamp": [aware[1], aware[0], aware[0]], "asset": ["A", "A", "B"], "close": [3.0, 1.0, 2.0]})
    )
    groups = bar_groups(bars)
    assert [ts for ts, _ in groups] == aware
    assert groups[0][1] == {
        "A": SimBar("A", aware[0], 1.0, 1.0, 1.0, 1.0, 0.0),
        "B": SimBar("B", aware[0], 2.0, 2.0, 2.0, 2.0, 0.0),
    }
    assert list(groups[1][1]) == ["A"] and groups[1][0].tzinfo is not None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"timestamp": [T0], "close": [1.0]}), "no asset column"),
        (pl.DataFrame({"timestamp": [T0], "asset": ["A"]}), "close"),
        (pl.DataFrame({"time": [T0], "asset": ["A"], "close": [1.0]}), "timestamp"),
        (pl.DataFrame({"timestamp": [T0, T0], "asset": ["A", "A"], "close": [1.0, 2.0]}), "duplicate"),
        (pl.DataFrame({"timestamp": [T0, T1], "asset": ["A", None], "close": [1.0, 2.0]}), "null"),
        (pl.DataFrame({"timestamp": [T0, T1], "asset": ["A", "A"], "close": [1.0, None]}), "null"),
        (pl.DataFrame({"timestamp": ["yesterday"], "asset": ["A"], "close": [1.0]}), "date-time"),
        (pl.DataFrame({"timestamp": [T0], "asset": ["A"], "close": ["abc"]}), "non-numeric"),
    ],
)
def test_unusable_frames_raise_config_error(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_bars(frame)


def test_unusable_paths_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_bars(tmp_path / "missing.parquet")
    (tmp_path / "bars.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"\.parquet or \.csv"):
        load_bars(tmp_path / "bars.txt")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ConfigError, match="could not read"):
        load_bars(tmp_path / "broken.parquet")
    with pytest.raises(ConfigError, match="path, a polars or a pandas"):
        load_bars(42)  # type: ignore[arg-type]
