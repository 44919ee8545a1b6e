"""Logging a failure with its traceback, never with the values of its frames' variables.

loguru's ``opt(exception=...)`` renders frame variables when the sink was added with
``diagnose=True`` (loguru's default): an application that enables ml4t_live's logs with its own
sink would then see request headers, API keys included. :func:`log_failure` logs the plain
traceback text instead, whatever the sink.
"""

from __future__ import annotations

import traceback
from typing import Any


def log_failure(log: Any, exc: BaseException, message: str, *args: Any) -> None:
    """``log.error(message, *args)`` followed by ``exc``'s traceback (no variable values)."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    log.error(message + "\n{}", *args, text)
