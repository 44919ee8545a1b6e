"""Third-party libraries' standard-library log records, through the command line's loguru sinks.

ib_async, eventkit, alpaca-py and websockets log with :mod:`logging`. Without a handler Python
prints their warnings and errors raw on stderr (``Error 202, reqId 7: Order Canceled`` at ERROR
for every cancel). While a command runs, :func:`route` sends their WARNING and ERROR records into
loguru (the stderr line and ``session.log``) at a level that says what they mean: IB's notices
that are not faults (an order cancelled as asked, data-farm connection messages) become INFO.
"""

from __future__ import annotations

import logging
import re

from loguru import logger

_log = logger.bind(component="library")

#: IB codes that inform rather than warn: 202 order cancelled (as asked, or by its OCA group),
#: 2104/2106/2158 data farm OK, 2107/2108 farm inactive, 2119 market data farm connecting
_IB_NOTICE = re.compile(r"\b(?:Error|Warning) (?:202|2104|2106|2107|2108|2119|2158)\b")


class _ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        level = "INFO" if _IB_NOTICE.search(message) else record.levelname
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            level = "WARNING"
        _log.log(level, "{}: {}", record.name, message)


_HANDLER = _ToLoguru(level=logging.WARNING)


def route() -> None:
    """Install the handler on the root logger (idempotent)."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)


def unroute() -> None:
    logging.getLogger().removeHandler(_HANDLER)
