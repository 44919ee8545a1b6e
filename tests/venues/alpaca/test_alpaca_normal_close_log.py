"""alpaca-py's log line for a clean (1000) close when we stop a stream is dropped; real errors pass."""

from __future__ import annotations

import logging

from ml4t_live.venues.alpaca import session  # noqa: F401  (installs the filter)


def _passes(logger_name: str, message: str) -> bool:
    logger = logging.getLogger(logger_name)
    record = logger.makeRecord(logger_name, logging.WARNING, __file__, 1, message, (), None)
    return logger.filter(record)


def test_a_normal_closure_is_not_reported_as_an_error():
    clean = "data websocket error, restarting connection: sent 1000 (OK); then received 1000 (OK)"
    assert not _passes("alpaca.data.live.websocket", clean)
    assert not _passes("alpaca.trading.stream", clean.replace("data", "trading stream"))


def test_real_websocket_errors_still_pass():
    broken = "data websocket error, restarting connection: no close frame received or sent"
    assert _passes("alpaca.data.live.websocket", broken)
