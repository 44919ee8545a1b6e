"""Third-party libraries' standard-library log records, through the command line's loguru sinks.

ib_async, eventkit, alpaca-py and websockets log with :mod:`logging`. Without a handler Python
prints their warnings and errors raw on stderr (``Error 202, reqId 7: Order Canceled`` at ERROR
for every cancel). While a command runs, :func:`route` sends their WARNING and ERROR records into
loguru (the stderr line and ``session.log``) at a level that says what they mean: IB's notices
that are not faults (an order cancelled as asked, data-farm connection messages) become INFO;
alpaca-py's failed reconnect attempts (one ERROR every second or two while a venue is down, after
our own WARNING that the stream was lost and is being reconnected) become WARNING. A message
repeated within a minute goes to the session log only (DEBUG); the next one after that minute
says how many were held back.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from loguru import logger

_log = logger.bind(component="library")

#: IB codes that inform rather than warn: 202 order cancelled (as asked, or by its OCA group),
#: 2104/2106/2158 data farm OK, 2107/2108 farm inactive, 2119 market data farm connecting
_IB_NOTICE = re.compile(r"\b(?:Error|Warning) (?:202|2104|2106|2107|2108|2119|2158)\b")


#: alpaca-py's reconnect attempts while the venue is unreachable (we already said the stream was lost)
_RECONNECTING = re.compile(r"error during websocket communication|restarting\s+connection")
#: the same message again within this many seconds goes to the session log only
REPEAT_SECONDS = 60.0


class _ToLoguru(logging.Handler):
    def __init__(self, level: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(level=level)
        self._clock = clock
        self._shown: dict[tuple[str, str], tuple[float, int]] = {}  # (logger, message) -> (shown at, held back)

    def forget(self) -> None:
        self._shown.clear()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        level = _level(record, message)
        key, now = (record.name, message), self._clock()
        shown_at, held = self._shown.get(key, (None, 0))
        if shown_at is not None and now - shown_at < REPEAT_SECONDS:
            self._shown[key] = (shown_at, held + 1)
            _log.debug("{}: {} (repeated)", record.name, message)
            return
        if len(self._shown) > 1000:  # bounded: a long session's distinct messages
            self._shown.clear()
        self._shown[key] = (now, 0)
        more = f" ({held} more like it in the last minute)" if held else ""
        _log.log(level, "{}: {}{}", record.name, message, more)


def _level(record: logging.LogRecord, message: str) -> str:
    if _IB_NOTICE.search(message):
        return "INFO"
    if _RECONNECTING.search(message) and record.name.startswith("alpaca"):
        return "WARNING"
    level = record.levelname
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "WARNING"


_HANDLER = _ToLoguru(level=logging.WARNING)


def route() -> None:
    """Install the handler on the root logger (idempotent); each command starts with no
    messages held back."""
    _HANDLER.forget()
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)


def unroute() -> None:
    logging.getLogger().removeHandler(_HANDLER)
