"""Bad recorded bars on the command line: named by file, row, column and value; refused (exit 2)
by default, dropped and counted with ``--on-bad-bars drop``; a file with no bars is refused."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.feeds.replay import ReplayFeed

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
STRATEGY = "ml4t_live.examples:DemoMomentum"


def _bars(n: int = 40) -> pl.DataFrame:
    rows = []
    for asset, base in (("AAPL", 100.0), ("MSFT", 200.0)):
        for i in range(n):
            close = base + (i % 7) * 0.5
            rows.append({"timestamp": START + timedelta(minutes=i), "asset": asset, "open": close,
                         "high": close + 0.25, "low": close - 0.25, "close": close, "volume": 1000.0})  # fmt: skip
    return pl.DataFrame(rows)


def _with(frame: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=pl.Float64))


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "ERROR" in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [("close", float("nan"), "close is NaN (nan)"), ("close", -5.0, "close is not positive (-5.0)"),
     ("open", 0.0, "open is not positive (0.0)"), ("close", None, "close is null (missing)")],
)  # fmt: skip
def test_a_bad_price_in_a_csv_is_refused_naming_file_row_line_column_and_value(cli, tmp_path, column, value, said):
    path = tmp_path / "bars.csv"
    _with(_bars(), 6, column, value).write_csv(path)
    result = cli("run", STRATEGY, "--data", path, "--session-dir", tmp_path / "s")
    assert result.exit_code == 2
    line = _error_line(result.output)
    assert f"configuration error: bad bar in {path} row 7 (line 8): {said}" in line
    assert "--on-bad-bars drop" in line
    assert not (tmp_path / "s").exists()  # refused before anything started: no session folder


def test_a_duplicate_bar_in_parquet_names_both_rows(cli, tmp_path):
    frame = _bars()
    path = tmp_path / "bars.parquet"
    pl.concat([frame, frame[3:4]]).write_parquet(path)
    result = cli("run", STRATEGY, "--data", path, "--no-session")
    assert result.exit_code == 2
    assert (f"bad bar in {path} row {frame.height + 1}: timestamp/asset is a duplicate of row 4 "
            f"('2024-03-04 14:33:00+00:00, AAPL')") in _error_line(result.output)  # fmt: skip


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_file_with_no_bars_is_refused(cli, tmp_path, suffix):
    path = tmp_path / f"empty.{suffix}"
    empty = _bars().clear()
    empty.write_csv(path) if suffix == "csv" else empty.write_parquet(path)
    for policy in ("refuse", "drop"):
        result = cli("run", STRATEGY, "--data", path, "--on-bad-bars", policy, "--no-session")
        assert result.exit_code == 2
        assert f"{path} holds no bars (only a header, or an empty table)" in _error_line(result.output)


def test_drop_policy_drops_counts_and_reports_the_bad_rows(cli, tmp_path):
    frame = _with(_with(_bars(), 6, "close", float("nan")), 50, "high", -1.0)
    frame = pl.concat([frame, frame[10:11]])  # and one duplicate
    path = tmp_path / "bars.parquet"
    frame.write_parquet(path)
    result = cli("run", STRATEGY, "--data", path, "--on-bad-bars", "drop", "--session-dir", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert "dropped 3 bad bar row(s) from" in result.output
    assert re.search(r"^  bad bars dropped +3$", result.output, re.M)
    (folder,) = (tmp_path / "s").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["num_bad_bars_dropped"] == 3
    recorded = pl.read_parquet(folder / "bars.parquet")
    assert recorded.height == frame.height - 3
    assert not any(math.isnan(c) for c in recorded["close"].to_list())
    # the same data, cleaned by hand, runs to the same result
    clean = tmp_path / "clean.parquet"
    _bars().filter(~pl.int_range(pl.len()).is_in([6, 50])).write_parquet(clean)
    again = cli("run", STRATEGY, "--data", clean, "--no-session")
    assert _final(again.output) == _final(result.output)


def _final(output: str) -> str:
    return next(line for line in output.splitlines() if "final equity" in line)


def test_unknown_policy_is_a_configuration_error(cli, tmp_path):
    path = tmp_path / "bars.parquet"
    _bars().write_parquet(path)
    result = cli("run", STRATEGY, "--data", path, "--on-bad-bars", "ignore", "--no-session")
    assert result.exit_code == 2
    assert "--on-bad-bars must be refuse or drop (got 'ignore')" in _error_line(result.output)


def test_the_library_checks_frames_too():
    with pytest.raises(ConfigError, match=r"the prices frame row 3: close is NaN"):
        ReplayFeed(_with(_bars(), 2, "close", float("nan")))
    feed = ReplayFeed(_with(_bars(), 2, "close", float("nan")), on_bad_bars="drop")
    assert feed.bad_rows_dropped == 1 and feed.bars_total == 40
