"""Fixtures for the report tests (the sessions themselves: tests/support/known_session.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from loguru import logger
from typer.testing import CliRunner

from ml4t_live.cli import app
from tests.support.known_session import known_bars


@pytest.fixture(autouse=True)
def restore_loguru():
    """The CLI owns loguru's sinks while it runs; give the rest of the suite the default back."""
    yield
    logger.remove()
    logger.add(lambda message: sys.stderr.write(message))


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def bars_file(tmp_path) -> Path:
    path = tmp_path / "bars.parquet"
    known_bars().write_parquet(path)
    return path
