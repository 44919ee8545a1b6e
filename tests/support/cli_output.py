"""Readers of what the ``ml4t-live`` commands print: the summary block, ERROR lines, a JSON
answer, and a child process's pipe read until a pattern shows (with a timeout)."""

from __future__ import annotations

import json
import os
import re
import selectors
import time


def summary_rows(output: str) -> dict[str, str]:
    """The summary block's ``label   value`` lines as a dict."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("  ") and "  " in line.strip():
            label, value = line.strip().split("  ", 1)
            rows[label] = value.strip()
    return rows


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"\bERROR\b", line)]


def read_until(stream, pattern: str, timeout: float) -> re.Match[str]:
    """Read ``stream`` (raw pipe) until ``pattern`` matches what was read; fail after ``timeout``."""
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if (m := re.search(pattern, seen.decode(errors="replace"))) is not None:
                return m
            if selector.select(left):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    raise AssertionError(
        f"{pattern!r} not seen within {timeout}s: {seen.decode(errors='replace')}"
    )


def json_output(result) -> dict:
    return json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
