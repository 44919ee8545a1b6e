"""Shadow sessions: the report says plainly that they are 100% identical to the backtest."""

from __future__ import annotations

import json

import pytest

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


def test_risk_limit_rejections_in_a_shadow_session_are_named_with_their_knock_on(cli, bars_file, tmp_path):
    """The rails refuse the three 10-share orders (max_order_quantity 7); the backtest has no
    rails. The AAPL stop exit the backtest then makes has no live twin: it follows from them."""
    config = tmp_path / "session.toml"
    config.write_text(f'strategy = "{TARGET}"\ndata = "{bars_file}"\nreport = true\n'
                      "[risk]\nmax_order_quantity = 7\n")  # fmt: skip
    run = cli("run", "--config", config, "--session-dir", tmp_path / "runs", "-q")
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    assert (folder / "report.html").is_file() and "parity 20.0%" in run.output  # report = true
    result = ml4t_live.parity(folder)
    causes = [(d.cause, d.asset, d.side) for d in result.differences]
    assert causes == [("risk_limit", "AAPL", "buy"), ("risk_limit", "MSFT", "buy"),
                      ("knock_on", "AAPL", "sell"), ("risk_limit", "MSFT", "buy")], causes  # fmt: skip
    assert all(d.live.rejection_reason.startswith("risk: ") for d in result.differences if d.cause == "risk_limit")
    assert not result.fully_identical and "100% identical" not in result.headline()
    assert result.identical == 1  # the 5 MSFT
    assert abs(result.residual) < 1e-6


def test_a_session_without_command_json_still_gets_its_report_saying_why_parity_is_missing(
    cli, bars_file, tmp_path
):
    run = cli("run", TARGET, "--data", bars_file, "--session-dir", tmp_path / "runs", "-q")
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    (folder / "command.json").unlink()  # as a session written by LiveEngine from a script
    files = ml4t_live.report(folder)
    assert files.parity is None and files.parity_json is None
    page = files.html.read_text()
    assert "No parity check" in page and "does not record its strategy" in page
    assert "--strategy path/to/file.py:ClassName" in page
    named = ml4t_live.report(folder, strategy=TARGET)  # naming it brings parity back
    assert named.parity is not None and named.parity.fully_identical


def test_a_session_whose_process_died_is_compared_from_its_part_files(cli, bars_file, tmp_path):
    """No summary.json and parquet files (as after a kill): the spilled parts are read, and the
    live P&L comes from the fills, saying so."""
    import polars as pl

    run = cli("run", TARGET, "--data", bars_file, "--session-dir", tmp_path / "runs", "-q")
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    parts = folder / ".parts"
    parts.mkdir()
    for table in ("bars", "orders", "fills"):
        pl.read_parquet(folder / f"{table}.parquet").write_ipc(parts / f"{table}-00000.arrow")
        (folder / f"{table}.parquet").unlink()
    (folder / "summary.json").unlink()
    (folder / "equity.parquet").unlink()
    result = ml4t_live.parity(folder)
    assert result.score == 1.0 and result.gap == pytest.approx(0.0, abs=1e-9)
    assert result.live_pnl_source.startswith("fills")


def test_an_order_filled_after_the_last_bar_nets_out_of_the_gap():
    """A live order the venue filled after the session's last bar (the backtest, out of bars,
    left it pending): named 'filled after the session's last bar', and since the reported final
    equity predates that fill, its P&L is in the pair and taken out again: the gap is explained."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import polars as pl

    from ml4t_live.reports.parity import compare
    from ml4t_live.reports.rerun import BacktestRun
    from ml4t_live.reports.session_files import SessionData

    t = [datetime(2024, 3, 4, 14, 30, tzinfo=UTC) + timedelta(minutes=i) for i in range(3)]
    bars = pl.DataFrame({"timestamp": t, "asset": ["X"] * 3, "open": [10.0, 10.0, 10.0],
                         "high": [10.0] * 3, "low": [10.0] * 3, "close": [10.0, 10.0, 11.0], "volume": [1.0] * 3})
    order = {"order_id": "S-b1", "asset": "X", "side": "buy", "created_at": t[2], "quantity": 5.0,
             "status": "filled", "order_type": "market"}  # fmt: skip
    fill = {"order_id": "S-b1", "asset": "X", "side": "buy", "quantity": 5.0, "price": 10.5,
            "timestamp": t[2] + timedelta(minutes=1), "commission": 0.0, "exit_reason": ""}  # fmt: skip
    equity = pl.DataFrame({"timestamp": t, "equity": [100.0] * 3})
    session = SessionData(Path("in-memory"), bars, None, None, pl.DataFrame([order]), pl.DataFrame([fill]), equity,
                          {"initial_cash": 100.0, "final_value": 100.0}, {"mode": "paper"}, [])
    backtest = BacktestRun(pl.DataFrame([{**order, "order_id": "ORD-1", "status": "pending"}]), pl.DataFrame(),
                           equity, 100.0, 100.0)
    result = compare(session, backtest)
    (late,) = result.differences
    assert late.cause == "after_end" and late.pnl_effect == pytest.approx(5 * (11.0 - 10.5))
    assert result.gap == 0.0 and result.attribution["after_end"] == pytest.approx(0.0)
    assert result.residual == pytest.approx(0.0)


def test_demo_through_the_simulated_ib_venue_with_report(cli, tmp_path):
    """What a newcomer runs: the bundled demo through the simulated IB gateway, then its report
    (the demo's command.json names its strategy, so parity re-runs it)."""
    run = cli("demo", "--venue", "ib", "--session-dir", tmp_path / "runs", "--report", "-q")
    assert run.exit_code == 0, run.output
    assert "parity         100% identical: all 180 decisions" in run.output
    folder = only_session(tmp_path / "runs")
    assert json.loads((folder / "command.json").read_text())["strategy"] == "ml4t_live.examples:DemoMomentum"


def test_positions_of_many_assets_are_a_heatmap_of_market_value():
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import polars as pl

    from ml4t_live.reports.figures import positions_figure
    from ml4t_live.reports.session_files import SessionData

    t = [datetime(2024, 3, 4, 14, 30, tzinfo=UTC) + timedelta(minutes=i) for i in range(3)]
    assets = [f"A{k}" for k in range(10)]
    bars = pl.DataFrame([{"timestamp": ts, "asset": a, "open": 10.0, "high": 10.0, "low": 10.0,
                          "close": 10.0 + i, "volume": 1.0} for i, ts in enumerate(t) for a in assets])  # fmt: skip
    fills = pl.DataFrame([{"order_id": f"o{k}", "asset": a, "side": "buy", "quantity": float(k + 1),
                           "price": 10.0, "timestamp": t[1]} for k, a in enumerate(assets)])  # fmt: skip
    session = SessionData(Path("in-memory"), bars, None, None, pl.DataFrame(), fills, pl.DataFrame(), {}, {}, [])
    (heatmap,) = positions_figure(session).data
    assert heatmap.type == "heatmap" and len(heatmap.y) == 10
    row = list(heatmap.y).index("A9")
    assert list(heatmap.z[row]) == [0.0, 10 * 11.0, 10 * 12.0]  # 10 shares held from 14:31, at each close


def test_a_failed_run_still_gets_its_report_which_says_it_failed(cli, bars_file, tmp_path):
    strategy = tmp_path / "boom.py"
    strategy.write_text("from ml4t.backtest import Strategy\n\n"
                        "class Boom(Strategy):\n"
                        "    def __init__(self):\n        self.n = 0\n\n"
                        "    def on_data(self, timestamp, data, context, broker):\n"
                        "        self.n += 1\n"
                        "        if self.n == 2:\n            broker.submit_order('AAPL', 5)\n"
                        "        if self.n == 6:\n            raise RuntimeError('strategy bug')\n")  # fmt: skip
    run = cli("run", f"{strategy}:Boom", "--data", bars_file, "--session-dir", tmp_path / "runs", "--report", "-q")
    assert run.exit_code == 1, run.output  # the run's own outcome stands
    folder = only_session(tmp_path / "runs")
    headline = json.loads((folder / "parity.json").read_text())["headline"]
    assert headline.startswith("The session failed (StrategyError: Boom.on_data raised RuntimeError at ")
    assert "strategy bug); up to its last recorded bar: 100% identical" in headline
    assert "The session failed" in (folder / "report.html").read_text()
