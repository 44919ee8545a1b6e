"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest
from loguru import logger


@pytest.fixture
def logs():
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG")
    yield lines
    logger.remove(sink)
