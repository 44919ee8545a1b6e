"""A stdlib logging handler that keeps the records it is given, ERROR and above: the IB test
guards hook it to ib_async's, eventkit's (and asyncio's) loggers and fail a test on what it kept."""

from __future__ import annotations

import logging


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
