"""The command line with the Alpaca venue: `sim alpaca`, `run --broker alpaca`, `demo --venue alpaca`.

Everything goes through the real alpaca-py clients against the simulated Alpaca on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig, DataFeed, Engine

from ml4t_live.cli.options import load_strategy_class
from ml4t_live.cli.venues import VenueOptions
from ml4t_live.errors import ConfigError
from ml4t_live.sim.alpaca import generate_keys
from ml4t_live.venues.alpaca import entry
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV
from tests.cli.cli_support import PRICES

STRATEGY = """
from ml4t.backtest import Strategy

class BuyThenSell(Strategy):
    def __init__(self):
        self.seen = 0

    def on_data(self, timestamp, data, context, broker):
        self.seen += 1
        if self.seen == 3:
            broker.submit_order("AAPL", 10)
            broker.submit_order("MSFT", 5)
        if self.seen == 8:
            broker.submit_order("AAPL", -10)
"""


def _strategy(tmp_path: Path) -> str:
    path = tmp_path / "buy_then_sell.py"
    path.write_text(textwrap.dedent(STRATEGY))
    return f"{path}:BuyThenSell"


def _pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _leaks(secret: str, text: str) -> list[str]:
    return sorted(p for p in _pieces(secret) if p in text)


def _fill_key(row: dict) -> tuple:
    return (row["timestamp"], row["asset"], row["side"], row["quantity"], row["price"])


# -- help ----------------------------------------------------------------------------------
def test_help_names_the_alpaca_venue_and_the_endpoint_options(cli):
    run = cli("run", "--help")
    assert run.exit_code == 0
    assert "alpaca" in run.output
    for flag in (
        "--broker",
        "--host",
        "--port",
        "--symbols",
        "--bar-size",
        "--live",
        "--confirm-live",
    ):
        assert flag in run.output, flag
    assert "alpaca" in cli("sim", "--help").output
    assert "alpaca" in cli("demo", "--help").output


# -- options -> config (no network) -------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "port", "extra", "url"),
    [
        ("http://127.0.0.1:8765", None, {}, "http://127.0.0.1:8765"),
        ("127.0.0.1", 8765, {}, "http://127.0.0.1:8765"),
        (None, 9000, {}, "http://127.0.0.1:9000"),
        (None, None, {"endpoint": "http://localhost:8765/"}, "http://localhost:8765"),
        (None, None, {}, None),  # alpaca-py's own paper URL
    ],
)
def test_the_endpoint_comes_from_host_port_or_the_venue_table(
    keys, host, port, extra, url
):
    config = entry.alpaca_config(
        VenueOptions("alpaca", host=host, port=port, extra=extra)
    )
    assert config.base_url == url
    assert (
        config.key_id,
        config.secret_key,
    ) == keys  # from the environment, nothing else
    assert config.paper and not config.allow_live
    # a simulator on this machine is not throttled by our bucket; a real endpoint keeps Alpaca's
    assert config.max_requests_per_minute == (
        entry.LOOPBACK_REQUESTS_PER_MINUTE if url else 200
    )


@pytest.mark.parametrize(
    ("host", "port", "extra", "message"),
    [
        ("127.0.0.1", None, {}, "needs --port"),
        ("http://127.0.0.1:8765", 8765, {}, "drop --port"),
        (None, None, {"endpoint": "127.0.0.1:8765"}, "http"),
    ],
)
def test_an_unusable_endpoint_is_a_config_error(keys, host, port, extra, message):
    with pytest.raises(ConfigError, match=message):
        entry.alpaca_config(VenueOptions("alpaca", host=host, port=port, extra=extra))


# -- ml4t-live sim alpaca ------------------------------------------------------------------
def read_until(stream, pattern: str, timeout: float) -> str:
    """Raw bytes from ``stream`` until ``pattern`` (a regex) matches (fails after ``timeout`` s)."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while (
            not re.search(pattern, seen.decode())
            and (left := deadline - time.monotonic()) > 0
        ):
            if selector.select(left):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    assert re.search(pattern, seen.decode()), (
        f"{pattern!r} not seen within {timeout}s: {seen.decode()}"
    )
    return seen.decode()


@pytest.mark.parametrize(("stop", "env_keys"), [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["ctrl-c, generated keys", "sigterm, keys from the environment"])  # fmt: skip
def test_sim_alpaca_serves_alpaca_py_and_stops_cleanly(tmp_path, stop, env_keys):
    from alpaca.trading.client import TradingClient

    bars = tmp_path / "bars.parquet"
    PRICES.write_parquet(bars)
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, SECRET_ENV)}
    if env_keys:
        env[KEY_ENV], env[SECRET_ENV] = generate_keys()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml4t_live", "sim", "alpaca", "--data", str(bars), "--port", "0", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        banner = read_until(proc.stdout, r'end = "[^"]+"\)\n', timeout=30)
        base_url = re.search(
            r"listening on (http://127\.0\.0\.1:\d+) \(step mode\)", banner
        ).group(1)
        if env_keys:
            key_id, secret = env[KEY_ENV], env[SECRET_ENV]
            assert "using the keys in APCA_API_KEY_ID / APCA_API_SECRET_KEY" in banner
        else:
            key_id = re.search(rf"export {KEY_ENV}=(\S+)", banner).group(1)
            secret = re.search(rf"export {SECRET_ENV}=(\S+)", banner).group(1)
        assert (
            f"--broker alpaca --host {base_url} --symbols AAPL,MSFT --bar-size 1min --calendar XNYS "
            "--as-of 2026-11-23 --close-offset -360min"
            in banner
        )
        assert f'endpoint = "{base_url}", end = "2026-11-23T15:00:00+00:00"' in banner
        account = TradingClient(
            key_id, secret, paper=True, url_override=base_url
        ).get_account()
        assert account.account_number.startswith("PA")
        proc.send_signal(stop)
        out, err = (b.decode() for b in proc.communicate(timeout=30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "simulated Alpaca stopped" in err
    stdout = banner + out
    assert stdout.count(secret) == (
        0 if env_keys else 1
    )  # only the generated key's export line
    assert not _leaks(secret, err), "a piece of the secret reached the log"
    assert f"key id {key_id}" in err  # the key id is not a secret; the log names it


def test_sim_alpaca_history_is_served_before_the_replay(tmp_path):
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    bars = tmp_path / "bars.parquet"
    PRICES.write_parquet(bars)
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, SECRET_ENV)}
    env[KEY_ENV], env[SECRET_ENV] = generate_keys()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml4t_live", "sim", "alpaca", "--data", str(bars), "--port", "0",
         "--history", "10min"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        banner = read_until(proc.stdout, r'end = "[^"]+"\)\n', timeout=30)
        base_url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner).group(1)
        assert "the first 10 bar times are history" in banner and "replaying 20 bars of AAPL,MSFT" in banner
        data = StockHistoricalDataClient(env[KEY_ENV], env[SECRET_ENV], url_override=base_url)
        got = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame.Minute))
        assert {s: len(v) for s, v in got.data.items()} == {"AAPL": 10, "MSFT": 10}
        proc.send_signal(signal.SIGTERM)
        _out, err = (b.decode() for b in proc.communicate(timeout=30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_sim_alpaca_history_beyond_the_bars_is_a_config_error(cli, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    result = cli("sim", "alpaca", "--port", "0", "--history", "100000")
    assert result.exit_code == 2 and "nothing would be replayed" in result.output


def test_sim_alpaca_refuses_half_a_key_pair(cli, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "PKONLYTHEKEYID")
    monkeypatch.delenv(SECRET_ENV, raising=False)
    result = cli("sim", "alpaca", "--port", "0")
    assert result.exit_code == 2
    assert (
        "set both APCA_API_KEY_ID and APCA_API_SECRET_KEY, or neither" in result.output
    )


# -- ml4t-live run --broker alpaca -------------------------------------------------------
@pytest.mark.parametrize("endpoint_from", ["--host", "[venue] endpoint"])
def test_run_trades_a_strategy_on_the_simulator_like_the_backtest(
    cli, tmp_path, sim, keys, endpoint_from
):
    target = _strategy(tmp_path)
    args = ["run", target, "--broker", "alpaca", "--symbols", "AAPL,MSFT", "--bar-size", "1min",
            "--max-bars", 12, "--session-dir", tmp_path / "runs", "-v"]  # fmt: skip
    if endpoint_from == "--host":
        args += ["--host", sim.base_url]
    else:
        session = tmp_path / "session.toml"
        session.write_text(f'[venue]\nendpoint = "{sim.base_url}"\n')
        args += ["--config", session]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert (
        "BuyThenSell: 12 bars, paper mode, stopped: bar limit reached (12 bars)"
        in result.output
    )

    received = [
        (o["order"]["symbol"], o["order"]["side"], o["order"]["qty"])
        for o in sim.orders_received()
    ]
    assert received == [
        ("AAPL", "buy", "10"),
        ("MSFT", "buy", "5"),
        ("AAPL", "sell", "10"),
    ]
    (folder,) = (tmp_path / "runs").iterdir()
    live_fills = sorted(
        map(_fill_key, pl.read_parquet(folder / "fills.parquet").to_dicts())
    )
    strategy_cls = load_strategy_class(
        target
    )  # the same strategy, in ml4t.backtest's Engine
    backtest = Engine(
        DataFeed(prices_df=PRICES), strategy_cls(), BacktestConfig()
    ).run()
    expected = sorted(
        (f.timestamp, f.asset, f.side.value, f.quantity, f.price)
        for f in backtest.fills
    )
    assert live_fills == expected and len(expected) == 3


def test_the_secret_never_reaches_the_run_output_or_the_session_log(
    tmp_path, sim, keys
):
    """A real `ml4t-live run` process at DEBUG: neither its stdout, its stderr (our log lines and
    whatever alpaca-py / websockets print through the standard logging module) nor session.log
    (always DEBUG) holds an 8-character piece of the secret."""
    done = subprocess.run(
        [sys.executable, "-m", "ml4t_live", "run", _strategy(tmp_path), "--broker", "alpaca",
         "--host", sim.base_url, "--symbols", "AAPL,MSFT", "--max-bars", "10",
         "--session-dir", str(tmp_path / "runs"), "-v"],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    session_log = (folder / "session.log").read_text()
    assert (
        "connected to Alpaca paper account" in session_log
    )  # the adapter did log, at length
    assert "DEBUG" in done.stderr and "DEBUG" in session_log
    assert sim.orders_received(), (
        "the run must have traded for the check to mean something"
    )
    secret = keys[1]
    assert not _leaks(secret, done.stdout)
    assert not _leaks(secret, done.stderr)
    assert not _leaks(secret, session_log)
    for path in folder.iterdir():  # nor any other session file
        assert secret.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize(
    "present",
    [(), (KEY_ENV,), (SECRET_ENV,)],
    ids=["no keys", "key id only", "secret only"],
)
def test_missing_keys_exit_2_naming_both_variables(cli, tmp_path, monkeypatch, present):
    for name in (KEY_ENV, SECRET_ENV):
        if name in present:
            monkeypatch.setenv(name, "PKSOMETHING")
        else:
            monkeypatch.delenv(name, raising=False)
    result = cli("run", _strategy(tmp_path), "--broker", "alpaca", "--symbols", "AAPL",
                 "--host", "http://127.0.0.1:9", "--no-session")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert (
        "configuration error: Alpaca keys are missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY"
        in result.output
    )


def test_live_is_refused_without_confirmation_exit_2(cli, tmp_path, sim):
    result = cli("run", _strategy(tmp_path), "--broker", "alpaca", "--host", sim.base_url, "--symbols",
                 "AAPL,MSFT", "--live", "--no-session")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "is a LIVE account and there is no terminal to confirm on" in result.output
    assert "--confirm-live" in result.output
    state = sim.state()
    assert (
        state["trade_connections"] == 0 and not sim.orders_received()
    )  # refused before trading


# -- ml4t-live demo --venue alpaca ---------------------------------------------------------
def test_demo_through_the_simulated_alpaca_matches_the_shadow_demo(cli, tmp_path):
    venue = cli("demo", "--venue", "alpaca", "--session-dir", tmp_path / "alpaca", "-q")
    assert venue.exit_code == 0, venue.output
    assert "DemoMomentum: 780 bars, paper (alpaca simulated) mode" in venue.output
    shadow = cli("demo", "--session-dir", tmp_path / "shadow", "-q")
    assert shadow.exit_code == 0, shadow.output
    summary = lambda text: [  # the positions line is labelled by mode: compare the positions
        line.split(":", 1)[1] if "positions" in line else line
        for line in text.splitlines()
        if line.startswith("  ") and "session" not in line
    ]
    assert summary(venue.output) == summary(
        shadow.output
    )  # orders, fills, rejections, equity, return

    (a,) = (tmp_path / "alpaca").iterdir()
    (s,) = (tmp_path / "shadow").iterdir()
    fill_cols = [
        "timestamp",
        "asset",
        "side",
        "quantity",
        "price",
        "commission",
        "slippage",
    ]
    fills = [
        pl.read_parquet(d / "fills.parquet").select(fill_cols).sort(fill_cols)
        for d in (a, s)
    ]
    assert fills[0].height > 100
    assert fills[0].equals(
        fills[1]
    )  # every fill: same bar, asset, side, quantity, price, cost
    order_cols = [
        "created_at",
        "asset",
        "side",
        "quantity",
        "status",
        "filled_at",
        "commission_paid",
    ]
    orders = [
        pl.read_parquet(d / "orders.parquet").sort(order_cols[:4]) for d in (a, s)
    ]
    assert orders[0].select(order_cols).equals(orders[1].select(order_cols))
    # Order.filled_price: Alpaca sends filled_avg_price as a decimal string ("432.17") while the
    # shadow broker's average is float arithmetic (432.16999999999996): equal to the last ulp or so.
    gap = (orders[0]["filled_price"] - orders[1]["filled_price"]).abs().max()
    assert gap < 1e-9


def test_the_demo_venue_account_follows_initial_cash_from_the_options():
    """`[venue] initial_cash` sizes the simulated account; the run then matches shadow mode at that
    cash. (`ml4t-live demo --initial-cash` does not reach demo_venue yet: see the entry docstring.)"""
    from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
    from ml4t_live.examples import DemoMomentum, demo_bars_path

    config = BacktestConfig(initial_cash=50_000)
    options = VenueOptions("alpaca", extra={"initial_cash": 50_000})
    with entry.demo_venue(options, demo_bars_path()) as (broker, feed):
        venue = LiveEngine(
            DemoMomentum(), broker, feed, config=config, session_dir=False
        ).run()
    shadow = LiveEngine(DemoMomentum(), ShadowBroker(config), ReplayFeed(demo_bars_path()),
                        config=config, session_dir=False).run()  # fmt: skip
    assert venue.metrics["num_fills"] == shadow.metrics["num_fills"] > 100
    assert venue.metrics["final_value"] == pytest.approx(
        shadow.metrics["final_value"], abs=1e-6
    )
    assert venue.metrics["total_return_pct"] == pytest.approx(
        shadow.metrics["total_return_pct"], abs=1e-9
    )
