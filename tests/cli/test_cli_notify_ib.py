"""``[notify]`` in a run's TOML: a run against the simulated IB Gateway sends the chosen events to
a JSON webhook started by the test (through apprise), and a target that cannot be reached does
not stop the run."""

from __future__ import annotations

import socket
import textwrap

from test_cli_ib import _error_lines, bars, cli, ib_errors, restore_loguru, sims  # noqa: F401

from tests.support.webhook import WebhookReceiver, fields

STRATEGY = """
from ml4t.backtest import Strategy

class BuyTwo(Strategy):
    def __init__(self):
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            broker.submit_order("AAPL", 10)
            broker.submit_order("MSFT", 5)
        if self.bars == 2:
            raise ValueError("boom")  # a venue run's error policy is 'log': the run goes on
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_run_sends_its_chosen_events_and_an_unreachable_target_does_not_stop_it(cli, bars, sims, tmp_path):  # noqa: F811
    sim = sims(bars)
    (tmp_path / "buy_two.py").write_text(textwrap.dedent(STRATEGY))
    hook = WebhookReceiver().start()
    try:
        dead = f"json://127.0.0.1:{_closed_port()}/secret-token-xyz"
        config = tmp_path / "session.toml"
        config.write_text(textwrap.dedent(f"""
            strategy = "buy_two.py:BuyTwo"
            broker = "ib"
            port = {sim.port}
            symbols = "AAPL,MSFT"
            bar_size = "1min"
            no_session = true
            strategy_id = "buytwo"
            [notify]
            urls = ["{dead}", "{hook.url}"]
            events = ["start", "fill", "error", "halt", "end_of_day"]
        """))
        result = cli("run", "--config", config, "--max-bars", 3)
        got = []
        while not hook.received.empty():
            got.append(fields(hook.received.get_nowait()))
    finally:
        hook.close()
    assert result.exit_code == 0, result.output
    assert [g["event"] for g in got] == ["start", "fill", "fill", "error", "end_of_day"], got
    start, *fills, error, end = got
    assert error["error"].startswith("BuyTwo.on_data raised ValueError at ") and error["error"].endswith(": boom")
    assert error["count"] == "1" and end["strategy_errors"] == "1"
    assert (start["strategy"], start["mode"], start["venue"]) == ("buytwo", "paper", "ib")
    assert sorted((f["asset"], f["side"], f["quantity"]) for f in fills) == [("AAPL", "buy", "10.0"),
                                                                              ("MSFT", "buy", "5.0")]  # fmt: skip
    assert all(f["client_order_id"].startswith("buytwo-") and float(f["price"]) > 0 for f in fills)
    assert (end["bars"], end["fills"], end["orders"]) == ("3", "2", "2")
    assert end["stop_reason"] == "bar limit reached (3 bars)"
    assert result.output.count("notification target 1 (json://…)") == 1, result.output
    assert "secret-token-xyz" not in result.output
    assert [line for line in _error_lines(result.output) if "BuyTwo.on_data raised" not in line] == [], result.output
