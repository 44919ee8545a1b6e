"""Fixtures for the report tests (the sessions themselves: tests/support/known_session.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml4t_live.cli import app
from tests.support.known_session import known_bars


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
