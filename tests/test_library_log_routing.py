"""Third-party log records through our sinks: IB notices at INFO, alpaca-py's reconnect errors at
WARNING, and a message repeated within a minute shown once (the rest at DEBUG, counted)."""

from __future__ import annotations

import logging

from loguru import logger

from ml4t_live.cli.library_logs import _ToLoguru


def _route(name: str):
    now = [0.0]
    handler = _ToLoguru(logging.WARNING, clock=lambda: now[0])
    source = logging.getLogger(name)
    source.addHandler(handler)
    source.propagate = False
    seen: list[tuple[str, str]] = []
    sink = logger.add(lambda m: seen.append((m.record["level"].name, m.record["message"])), level="DEBUG",
                      filter=lambda r: r["extra"].get("component") == "library")  # fmt: skip
    return source, handler, now, seen, sink


def _unroute(source, handler, sink):
    logger.remove(sink)
    source.removeHandler(handler)
    source.propagate = True


def test_a_killed_venues_reconnect_errors_are_one_warning_a_minute():
    source, handler, now, seen, sink = _route("alpaca.trading.stream")
    try:
        failed = "error during websocket communication: [Errno 111] Connect call failed ('127.0.0.1', 8766)"
        for second in range(0, 150, 2):  # alpaca-py retries every couple of seconds for 2.5 minutes
            now[0] = float(second)
            source.error(failed)
    finally:
        _unroute(source, handler, sink)
    shown = [(level, text) for level, text in seen if level != "DEBUG"]
    assert shown == [
        ("WARNING", f"alpaca.trading.stream: {failed}"),
        ("WARNING", f"alpaca.trading.stream: {failed} (29 more like it in the last minute)"),
        ("WARNING", f"alpaca.trading.stream: {failed} (29 more like it in the last minute)"),
    ]
    assert sum(level == "DEBUG" for level, _ in seen) == 75 - 3  # every one still reaches session.log


def test_ib_notices_are_info_and_other_errors_keep_their_level():
    source, handler, now, seen, sink = _route("ib_async.wrapper")
    try:
        source.error("Error 202, reqId 7: Order Canceled - reason:")
        source.error("Error 201, reqId 8: Order rejected - reason:insufficient margin")
    finally:
        _unroute(source, handler, sink)
    assert [level for level, _ in seen] == ["INFO", "ERROR"]
