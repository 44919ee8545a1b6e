"""Fixtures of the CLI tests: the command runner, the simulated IB Gateways and Alpaca they run
against, the bars, and the traded accounts the operator commands read. ``ib_errors`` fails a test
on any ERROR ib_async / eventkit log (a module that runs IB in-process uses it for every test)."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig
from typer.testing import CliRunner

from ml4t_live.cli import app
from ml4t_live.sim.alpaca import SimulatedAlpaca, generate_keys
from ml4t_live.sim.ib import SimulatedIBGateway
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV
from tests.cli.cli_support import KEEPER, N_BARS, PRICES, START
from tests.support.log_capture import ErrorRecords


@pytest.fixture
def ib_errors(request):
    """Fail on any ERROR from ib_async's loggers (a dropped message only logs) or eventkit's,
    except messages holding one of the test module's ``IB_ERRORS_EXPECTED`` texts.

    (tests/venues/ib/conftest.py has the same guard, but it is a conftest of another folder and
    also hooks loguru, whose sinks the CLI replaces while it runs: outputs are checked instead.)
    """
    expected = getattr(request.module, "IB_ERRORS_EXPECTED", ())
    capture = ErrorRecords()
    loggers = [logging.getLogger("ib_async"), logging.getLogger("eventkit")]
    for lg in loggers:
        lg.addHandler(capture)
    try:
        yield capture
    finally:
        for lg in loggers:
            lg.removeHandler(capture)
    bad = [f"{r.name}: {r.getMessage()}" for r in capture.records
           if not any(text in r.getMessage() for text in expected)]  # fmt: skip
    assert not bad, "ib_async / eventkit logged errors:\n" + "\n".join(bad)


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def bars(tmp_path) -> Path:
    """AAPL and MSFT, N_BARS one-minute bars from the open, a zig-zag drift."""
    rows = []
    for k, asset in enumerate(("AAPL", "MSFT")):
        price = 100.0 * (k + 1)
        for i in range(N_BARS):
            close = round(price + (0.5 if i % 3 else -0.3), 2)
            rows.append({"timestamp": START + timedelta(minutes=i), "asset": asset,
                         "open": price, "high": max(price, close) + 0.25,
                         "low": min(price, close) - 0.25, "close": close,
                         "volume": 1000.0 + 10 * i})  # fmt: skip
            price = close
    path = tmp_path / "bars.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def sims():
    started: list[SimulatedIBGateway] = []

    def start(data, **kw) -> SimulatedIBGateway:
        sim = SimulatedIBGateway(data, **kw)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


@pytest.fixture
def keys(monkeypatch) -> tuple[str, str]:
    key_id, secret = generate_keys()
    monkeypatch.setenv(KEY_ENV, key_id)
    monkeypatch.setenv(SECRET_ENV, secret)
    return key_id, secret


@pytest.fixture
def sim(keys) -> Iterator[SimulatedAlpaca]:
    """What `ml4t-live sim alpaca` serves in step mode (its own 429s off: see entry.run_sim)."""
    venue = SimulatedAlpaca(PRICES, config=BacktestConfig(), key_id=keys[0], secret_key=keys[1],
                            rate_limit_per_minute=None)  # fmt: skip
    venue.start()
    yield venue
    venue.close()


@pytest.fixture
def traded_ib(cli, bars, sims, tmp_path):
    """A simulated gateway where strategy 'keeper' owns 10 AAPL + 5 MSFT and a working limit,
    and strategy 'other' owns 7 AAPL and its own limit (external to 'keeper')."""
    (tmp_path / "keeper.py").write_text(textwrap.dedent(KEEPER))
    sim = sims(bars)
    for sid, qty in (("keeper", 10), ("other", 7)):
        run = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", f"qty={qty}", "--broker", "ib",
                  "--port", sim.port, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session",
                  "--max-bars", 2, "--strategy-id", sid, "--open-orders-at-end", "keep")  # fmt: skip
        assert run.exit_code == 0, run.output
    return sim


@pytest.fixture
def traded_alpaca(cli, sim, tmp_path):
    """Strategy 'keeper' owns 10 AAPL + 5 MSFT and a working limit; 'other' owns 7 AAPL and
    its own limit (external to 'keeper')."""
    (tmp_path / "keeper.py").write_text(textwrap.dedent(KEEPER))
    for sid, qty in (("keeper", 10), ("other", 7)):
        run = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", f"qty={qty}", "--broker", "alpaca",
                  "--host", sim.base_url, "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session",
                  "--max-bars", 2, "--strategy-id", sid, "--open-orders-at-end", "keep")  # fmt: skip
        assert run.exit_code == 0, run.output
    return sim
