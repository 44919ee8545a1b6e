"""Used as a library, ml4t_live prints and logs nothing until the application enables it."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.examples import DemoMomentum, demo_bars_path
result = LiveEngine(DemoMomentum(), ShadowBroker(BacktestConfig()), ReplayFeed(demo_bars_path()),
                    session_dir=False).run()
assert result.metrics["num_fills"] > 0
if len(sys.argv) > 1:
    from loguru import logger
    logger.enable("ml4t_live")
    LiveEngine(DemoMomentum(), ShadowBroker(BacktestConfig()), ReplayFeed(demo_bars_path()),
               session_dir=False).run()
"""


def run(*args: str) -> subprocess.CompletedProcess:
    code = "import sys\n" + SCRIPT
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_the_library_is_silent_until_the_application_enables_its_logs():
    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == ""
    enabled = run("enable")
    assert enabled.returncode == 0, enabled.stderr
    assert "run finished after 780 bars" in enabled.stderr


def test_the_command_line_says_its_version():
    from importlib.metadata import version

    from typer.testing import CliRunner

    from ml4t_live.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"ml4t-live {version('ml4t-live')}"


def test_a_logged_failure_never_shows_the_values_of_variables_even_with_a_diagnosing_sink():
    from datetime import UTC, datetime

    from loguru import logger
    from ml4t.backtest import Strategy

    from ml4t_live import LiveEngine
    from ml4t_live.venue_broker import VenueBroker
    from tests.support.fakes import FakeVenue, ListFeed, bar

    class Leaky(Strategy):
        def on_data(self, timestamp, data, context, broker):
            api_secret = "TOPSECRET-0123456789"  # a local a variable dump would show
            raise RuntimeError("boom" if api_secret else "")  # the line names the local

    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", diagnose=True, backtrace=True)  # block + full traceback
    try:
        feed = ListFeed([bar(datetime(2024, 1, 2, 14, 30, tzinfo=UTC), {"AAA": 1.0})])
        LiveEngine(Leaky(), VenueBroker(FakeVenue(), strategy_id="leaky"), feed, session_dir=False,
                   error_policy="log").run()  # fmt: skip
    finally:
        logger.remove(sink)
    text = "".join(lines)
    assert "Leaky.on_data raised RuntimeError at 2024-01-02 14:30:00+00:00: boom" in text  # the block
    assert "RuntimeError: boom" in text and "Traceback" in text  # the first occurrence in full
    assert 'raise RuntimeError("boom" if api_secret else "")' in text
    assert "TOPSECRET" not in text
