"""``[notify]`` in a run's TOML: a run against the simulated IB Gateway sends the chosen events to
a JSON webhook started by the test (through apprise), and a target that cannot be reached does
not stop the run."""

from __future__ import annotations

import socket
import textwrap

import pytest

from tests.support.cli_output import error_lines
from tests.support.webhook import WebhookReceiver, fields

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test

#: what ib_async logs at ERROR for the faults injected on purpose (a rejection, a gateway restart)
IB_ERRORS_EXPECTED = ("Error 201", "Peer closed connection", "API connection failed", "Make sure API port")

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


def test_a_run_sends_its_chosen_events_and_an_unreachable_target_does_not_stop_it(cli, bars, sims, tmp_path):
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
    assert [line for line in error_lines(result.output) if "BuyTwo.on_data raised" not in line] == [], result.output


def test_a_venue_rejection_a_long_disconnect_and_a_halt_are_sent(cli, bars, sims, tmp_path):
    sim = sims(bars)
    sim.inject("reject_next", reason="Insufficient buying power")  # the AAPL buy on bar 1
    sim.inject("gateway_restart", seconds=1.0, at_bar=2)  # every client dropped, refused for 1 s
    (tmp_path / "buy_two.py").write_text(textwrap.dedent(STRATEGY))
    hook = WebhookReceiver().start()
    try:
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
            urls = ["{hook.url}"]
            events = ["rejection", "disconnect", "halt"]
            disconnect_seconds = 0.2
        """))
        first = cli("run", "--config", config, "--max-bars", 4)
        halted = cli("halt", "--strategy-id", "buytwo", "--reason", "desk says stop")
        second = cli("run", "--config", config, "--max-bars", 1)
        got = []
        while not hook.received.empty():
            got.append(fields(hook.received.get_nowait()))
    finally:
        hook.close()
    assert first.exit_code == 0 and halted.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    rejection = [g for g in got if g["event"] == "rejection"]
    assert [("Insufficient buying power" in r["reason"], r["client_order_id"][:7]) for r in rejection] == [
        (True, "buytwo-")], rejection
    # the gateway restart drops both links; the feed reports its outage as it happens (the
    # broker's is seen by the engine only at its next bar: by then it was over, never told)
    feed_link = [(g["state"], float(g["seconds"]) >= 0.2) for g in got
                 if g["event"] == "disconnect" and g["link"] == "ib feed"]  # fmt: skip
    assert feed_link == [("down", True), ("up", True)], got
    assert [(g["state"], g["reason"]) for g in got if g["event"] == "halt"] == [("HALTED", "desk says stop")]
