"""Shadow sessions: the report says plainly that they are 100% identical to the backtest."""

from __future__ import annotations

import json

import ml4t_live
from tests.support.known_session import N_BARS, TARGET, only_session


def test_run_report_on_a_shadow_session_is_100_percent_identical(cli, bars_file, tmp_path):
    run = cli("run", TARGET, "--data", bars_file, "--session-dir", tmp_path / "runs", "--report", "-q")
    assert run.exit_code == 0, run.output
    assert "100% identical: this shadow session fills with ml4t.backtest's own model" in run.output
    folder = only_session(tmp_path / "runs")
    written = json.loads((folder / "parity.json").read_text())
    assert written["parity_score"] == 1.0 and written["differences"] == []
    assert written["counts"] == {"identical": 5}  # four orders and the stop exit; no venue faults here
    page = (folder / "report.html").read_text()
    # self-contained: plotly.js inlined, nothing fetched (no script or stylesheet from elsewhere)
    assert "100% identical" in page and "<script src" not in page and "<link" not in page
    assert (folder / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_and_parity_from_python_and_the_command_line(cli, bars_file, tmp_path):
    run = cli("run", TARGET, "--data", bars_file, "--session-dir", tmp_path / "runs", "-q",
              "--max-bars", N_BARS)  # fmt: skip
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    files = ml4t_live.report(folder)
    assert files.html == folder / "report.html" and files.parity.fully_identical
    as_json = cli("parity", folder, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["parity_score"] == 1.0
    text = cli("report", folder)
    assert text.exit_code == 0 and f"report: {folder / 'report.html'}" in text.output


def test_a_folder_that_is_not_a_session_is_a_configuration_error(cli, tmp_path):
    result = cli("parity", tmp_path)
    assert result.exit_code == 2
    assert "holds no recorded bars (no bars.parquet): not a session folder" in result.output
