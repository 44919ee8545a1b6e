"""Parity on sessions recorded live through the simulated IB and Alpaca venues (real ib_async /
alpaca-py clients on 127.0.0.1): every known difference appears with its cause, and the causes
add up to the P&L gap with nothing left over."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine
from ml4t_live.reports import parity, report
from ml4t_live.sim.alpaca import SimulatedAlpaca, generate_keys
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV
from ml4t_live.venues.ib import IBBroker, IBConfig, IBFeed
from tests.support.known_session import N_BARS, START, STRATEGY, TARGET, only_session


def _known_causes(result) -> dict[str, list]:
    by_cause: dict[str, list] = {}
    for d in result.differences:
        by_cause.setdefault(d.cause, []).append(d)
    return by_cause


def _check_known_differences(folder, rejection_text: str) -> None:
    result = parity(folder)
    causes = _known_causes(result)
    assert sorted(causes) == ["partial_fill", "position_rule_exit", "venue_rejection"], result.headline()
    (rejected,) = causes["venue_rejection"]
    assert (rejected.asset, rejected.side) == ("MSFT", "buy")
    assert rejection_text in rejected.live.rejection_reason
    # the backtest filled the 10 MSFT the venue refused: the gap is their P&L to the last close
    assert rejected.pnl_effect == pytest.approx(-rejected.backtest.filled * (200.3 - rejected.backtest.price))
    (stop,) = causes["position_rule_exit"]
    assert stop.asset == "AAPL" and stop.backtest.exit_reason == "stop_loss"
    assert stop.backtest.price == pytest.approx(99.9 * 0.98)  # the stop level, on the bar that hit it
    assert stop.live.first_fill > stop.backtest.first_fill  # the venue's market exit: a bar later
    assert stop.pnl_effect == pytest.approx(10 * (stop.live.price - stop.backtest.price))
    (partial,) = causes["partial_fill"]
    assert partial.asset == "MSFT" and len(partial.live.fill_times) == 2
    assert result.decisions == 5 and result.identical == 2 and result.score == pytest.approx(0.4)
    # the attribution explains the whole gap: nothing is left unexplained
    assert sum(result.attribution.values()) + result.residual == pytest.approx(result.gap)
    assert abs(result.residual) < 1e-6, result.as_dict()["pnl"]
    # the latency table: one row per live fill, each delay measured
    latency = pl.read_parquet(folder / "latency.parquet")
    assert latency.height == pl.read_parquet(folder / "fills.parquet").height == 5
    assert latency["order_to_fill_ms"].min() > 0 and latency["bar_to_order_ms"].null_count() == 0
    written = json.loads((folder / "parity.json").read_text())
    assert written["counts"] == {"identical": 2, "partial_fill": 1, "position_rule_exit": 1,
                                 "venue_rejection": 1}  # fmt: skip
    assert written["parity_score"] == pytest.approx(0.4)


def test_a_session_through_the_simulated_ib_gateway(cli, bars_file, tmp_path):
    faults = [{"kind": "reject_next", "reason": "insufficient margin"},
              {"kind": "partial_fill", "at_bar": 7, "parts": 2}]  # fmt: skip
    sim = SimulatedIBGateway(bars_file, faults=faults)
    sim.start()
    try:
        run = cli("run", TARGET, "--broker", "ib", "--port", sim.port, "--symbols", "AAPL,MSFT",
                  "--bar-size", "1min", "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs",
                  "--report")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    assert "parity 40.0%: 2 of 5 decisions identical" in run.output
    folder = only_session(tmp_path / "runs")
    assert (folder / "report.html").stat().st_size > 100_000 and (folder / "report.png").is_file()
    _check_known_differences(folder, "insufficient margin")


def test_a_session_through_the_simulated_alpaca_venue(cli, bars_file, tmp_path, monkeypatch):
    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    faults = tmp_path / "faults.toml"
    faults.write_text('[[fault]]\nkind = "reject_next"\nparams = { reason = "insufficient buying power" }\n'
                      '[[fault]]\nkind = "partial_fill"\nat_bar = 7\nparams = { parts = 2 }\n')  # fmt: skip
    venue = SimulatedAlpaca(bars_file, config=BacktestConfig(), key_id=key_id, secret_key=secret,
                            rate_limit_per_minute=None, faults=faults)  # fmt: skip
    venue.start()
    try:
        run = cli("run", TARGET, "--broker", "alpaca", "--host", venue.base_url, "--symbols", "AAPL,MSFT",
                  "--bar-size", "1min", "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        venue.close()
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    # Alpaca's `rejected` trade update carries no reason text: the adapter names the venue
    _check_known_differences(folder, "rejected by Alpaca")
    files = report(folder)
    assert files.parity is not None and files.parity.score == pytest.approx(0.4)


def test_orders_on_catch_up_bars_after_an_outage_are_named(cli, bars_file, tmp_path):
    """IB's data link drops at bar 3 (1100, then 1102) for two bars: the feed backfills them as
    catch-up bars, whose orders never leave; the backtest fills them."""
    sim = SimulatedIBGateway(bars_file, faults=[{"kind": "nightly_reset", "at_bar": 3, "bars": 2}])
    sim.start()
    try:
        run = cli("run", TARGET.replace(":KnownDifferences", ":BuysOnMinutes"), "--broker", "ib",
                  "--port", sim.port, "--symbols", "AAPL,MSFT", "--bar-size", "1min",
                  "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    result = parity(only_session(tmp_path / "runs"))
    assert [(d.cause, d.decided_at.minute) for d in result.differences] == [("catch_up", 33), ("catch_up", 34)]
    assert all("catch-up bar" in d.live.rejection_reason for d in result.differences)
    assert result.identical == 1 and result.decisions == 3
    assert abs(result.residual) < 1e-6
    assert result.attribution["catch_up"] == pytest.approx(result.gap)


def test_another_clients_order_in_the_account_is_external_activity(cli, bars_file, tmp_path, monkeypatch):
    """Someone else's market order (its own client order id) is in the Alpaca account when the
    strategy starts and fills during the run: the strategy's decisions are all identical to the
    backtest, and the report names the outside activity without putting it in either P&L."""
    import requests

    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    venue = SimulatedAlpaca(bars_file, config=BacktestConfig(), key_id=key_id, secret_key=secret,
                            rate_limit_per_minute=None)  # fmt: skip
    venue.start()
    try:
        placed = requests.post(f"{venue.base_url}/v2/orders", timeout=5,
                               headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
                               json={"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market",
                                     "time_in_force": "day", "client_order_id": "someone-else-1"})  # fmt: skip
        assert placed.status_code == 200, placed.text
        run = cli("run", TARGET.replace(":KnownDifferences", ":BuysOnMinutes"), "--broker", "alpaca",
                  "--host", venue.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min",
                  "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        venue.close()
    assert run.exit_code == 0, run.output
    result = parity(only_session(tmp_path / "runs"))
    assert result.score == 1.0 and not result.differences and result.gap == pytest.approx(0.0)
    assert any("someone-else-1" in line for line in result.external)
    assert any("external AAPL" in line for line in result.external)
    assert not result.fully_identical and "external activity in the account" in result.headline()


def test_a_replay_of_a_venue_session_is_100_percent_identical(cli, bars_file, tmp_path):
    """The venue session differs from the backtest (its stop exit); its replay fills with the
    backtest's own model on the same bars, and its report says it is identical."""
    sim = SimulatedIBGateway(bars_file)
    sim.start()
    try:
        run = cli("run", TARGET, "--broker", "ib", "--port", sim.port, "--symbols", "AAPL,MSFT",
                  "--bar-size", "1min", "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    venue_session = only_session(tmp_path / "runs")
    replayed = cli("replay", venue_session, "--session-dir", tmp_path / "replays", "--report", "-q")
    assert replayed.exit_code == 0, replayed.output
    assert "100% identical: this shadow replay session fills with ml4t.backtest's own model" in replayed.output
    result = parity(only_session(tmp_path / "replays"))
    assert result.fully_identical and result.decisions == 5


def test_a_bar_the_feed_lost_for_good_is_a_missing_bar(bars_file, tmp_path):
    """IB's data link drops for one bar with data lost (1101) and every history request for the
    backfill meets a pacing violation (162): bars 14:32 and 14:33 never reach the strategy. The
    venue filled the order made at 14:31 on 14:32's open; the backtest, which has only the
    session's bars, fills it at 14:34: a missing bar. (LiveEngine directly, to shorten the
    history retries; the session has no command.json, so parity is told the strategy.)"""
    spec = importlib.util.spec_from_file_location("known_strategy_for_missing_bar", STRATEGY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    faults = [{"kind": "pacing_violation", "count": 20},
              {"kind": "nightly_reset", "at_bar": 2, "bars": 1, "data_lost": True}]  # fmt: skip
    sim = SimulatedIBGateway(bars_file, faults=faults)
    sim.start()
    try:
        cfg = IBConfig(port=sim.port, client_id=1, connect_timeout=5.0, request_timeout=5.0,
                       history_retry_delay=0.02, reconnect_initial_delay=0.05, reconnect_max_delay=0.5)  # fmt: skip
        broker = IBBroker(cfg, strategy_id="missing_bar")
        broker.configure(state_dir=tmp_path / "state")
        feed = IBFeed(cfg, ["AAPL", "MSFT"], bar_size="1 min", end=START + timedelta(minutes=N_BARS))
        LiveEngine(module.BuysOnMinutes(), broker, feed, session_dir=tmp_path / "session").run()
    finally:
        sim.close()
    recorded = pl.read_parquet(tmp_path / "session" / "bars.parquet")["timestamp"].unique().to_list()
    assert START + timedelta(minutes=2) not in recorded and START + timedelta(minutes=3) not in recorded
    result = parity(tmp_path / "session", strategy=TARGET.replace(":KnownDifferences", ":BuysOnMinutes"))
    (missing,) = [d for d in result.differences if d.cause == "missing_bar"]
    assert (missing.asset, missing.live.first_fill, missing.backtest.first_fill) == (
        "MSFT", START + timedelta(minutes=2), START + timedelta(minutes=4))
    assert result.attribution["missing_bar"] == pytest.approx(missing.pnl_effect)
    assert abs(result.residual) < 1e-6


def test_slippage_and_commission_at_the_venue_are_priced_in_bps_and_attributed(cli, bars_file, tmp_path):
    """The simulated gateway fills 5 bps worse and charges 1 cent a share; the strategy's
    backtest config has neither: every fill differs in price (+5.0 bps) and commission."""
    from ml4t.backtest.config import CommissionType, SlippageType

    venue_config = BacktestConfig(slippage_type=SlippageType.PERCENTAGE, slippage_rate=0.0005,
                                  commission_type=CommissionType.PER_SHARE, commission_per_share=0.01)  # fmt: skip
    sim = SimulatedIBGateway(bars_file, config=venue_config)
    sim.start()
    try:
        run = cli("run", TARGET.replace(":KnownDifferences", ":BuysOnMinutes"), "--broker", "ib",
                  "--port", sim.port, "--symbols", "AAPL,MSFT", "--bar-size", "1min",
                  "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    result = parity(only_session(tmp_path / "runs"))
    assert [d.causes for d in result.differences] == [["price", "commission"]] * 3
    assert result.slippage_bps == pytest.approx([5.0, 5.0, 5.0])
    assert result.attribution["commission"] == pytest.approx(-0.03)
    price = sum(-d.live.filled * (d.live.price - d.backtest.price) for d in result.differences)
    assert result.attribution["price"] == pytest.approx(price)
    assert abs(result.residual) < 1e-6


def test_an_order_the_venue_took_a_bar_late_is_venue_latency(cli, bars_file, tmp_path):
    """The gateway sits on the order made at 14:33 for 0.3 s (black_hole_next, surface_after):
    the fill barrier gives up after 1 s, the bar moves on, and the venue fills it at 14:35's open
    instead of 14:34's: filled a bar later, at that bar's price."""
    sim = SimulatedIBGateway(bars_file, faults=[{"kind": "black_hole_next", "at_bar": 3, "count": 1,
                                                 "surface_after": 0.3}])  # fmt: skip
    sim.start()
    try:
        run = cli("run", TARGET.replace(":KnownDifferences", ":BuysOnMinutes"), "--broker", "ib",
                  "--port", sim.port, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--settle-timeout", 1,
                  "--max-bars", N_BARS - 1, "--session-dir", tmp_path / "runs")  # fmt: skip
    finally:
        sim.close()
    assert run.exit_code == 0, run.output
    result = parity(only_session(tmp_path / "runs"))
    (late,) = result.differences
    assert late.cause == "latency" and late.decided_at == START + timedelta(minutes=3)
    assert (late.live.first_fill, late.backtest.first_fill) == (START + timedelta(minutes=5), START + timedelta(minutes=4))
    assert "filled 1 bar(s) later" in late.detail
    assert result.attribution["latency"] == pytest.approx(late.live.filled * (late.backtest.price - late.live.price))
    assert abs(result.residual) < 1e-6


def test_a_bar_the_alpaca_stream_lost_for_good_is_a_missing_bar(cli, bars_file, tmp_path, monkeypatch):
    """The simulated Alpaca never sends 14:32 on the data stream (lose_stream_bar; its bars REST
    still has it, and the feed does not notice the gap, so it is lost for good). The venue filled
    the order made at 14:31 on 14:32's open; the backtest, which has only the session's bars,
    fills it at 14:33: a missing bar. The orders at 14:33 and 14:34 are identical."""
    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    faults = tmp_path / "faults.toml"
    faults.write_text('[[fault]]\nkind = "lose_stream_bar"\nat_bar = 2\n')
    venue = SimulatedAlpaca(bars_file, config=BacktestConfig(), key_id=key_id, secret_key=secret,
                            rate_limit_per_minute=None, faults=faults)  # fmt: skip
    venue.start()
    try:
        run = cli("run", TARGET.replace(":KnownDifferences", ":BuysOnMinutes"), "--broker", "alpaca",
                  "--host", venue.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min",
                  "--max-bars", N_BARS - 2, "--session-dir", tmp_path / "runs")  # fmt: skip
        assert [kind for kind, _params in venue.state()["faults_applied"]] == ["lose_stream_bar"]
    finally:
        venue.close()
    assert run.exit_code == 0, run.output
    folder = only_session(tmp_path / "runs")
    recorded = pl.read_parquet(folder / "bars.parquet")["timestamp"].unique().sort().to_list()
    assert START + timedelta(minutes=2) not in recorded
    assert START + timedelta(minutes=1) in recorded and START + timedelta(minutes=3) in recorded
    result = parity(folder)
    (missing,) = result.differences
    assert missing.cause == "missing_bar" and missing.decided_at == START + timedelta(minutes=1)
    assert (missing.asset, missing.live.first_fill, missing.backtest.first_fill) == (
        "MSFT", START + timedelta(minutes=2), START + timedelta(minutes=3))
    assert "a bar the feed never delivered" in missing.detail
    # the gap is the price difference of the one share between the two opens, all of it explained
    assert missing.pnl_effect == pytest.approx(missing.live.filled * (missing.backtest.price - missing.live.price))
    assert missing.pnl_effect != pytest.approx(0.0)
    assert result.decisions == 3 and result.identical == 2
    assert result.attribution["missing_bar"] == pytest.approx(missing.pnl_effect) == pytest.approx(result.gap)
    assert sum(result.attribution.values()) + result.residual == pytest.approx(result.gap)
    assert abs(result.residual) < 1e-6
