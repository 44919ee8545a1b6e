"""A strategy's exceptions as short, readable blocks: its own frames first, the rest collapsed.

A traceback through the engine holds a dozen frames of ml4t_live, ml4t.backtest and the standard
library around the two or three lines of the strategy that matter. :func:`strategy_block` keeps
the strategy's frames (those of the strategy class's file, and of any file outside the installed
libraries) and collapses the others into one line; :func:`full_traceback` is the whole thing (never
with variable values), for the session log.

:class:`PassedOver` is the error policy "log": each error is one ERROR block, counted; the first
occurrence of each distinct error (type and raising line) is also logged in full at DEBUG (the
session log; stderr only with ``--verbose``); a repeat is one line saying how many so far.
"""

from __future__ import annotations

import inspect
import sysconfig
import traceback
from pathlib import Path
from typing import Any

import ml4t.backtest
from loguru import logger

import ml4t_live

_log = logger.bind(component="engine")

_LIBRARY_ROOTS = tuple(
    str(Path(p).resolve())
    for p in (
        Path(ml4t_live.__file__).parent,
        Path(ml4t.backtest.__file__).parent.parent,  # the ml4t namespace (backtest, specs ...)
        *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    )
    if p
)


def strategy_block(exc: BaseException, strategy_file: str | None = None) -> str:
    """``exc``'s frames that belong to the strategy, then one line for the collapsed rest."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if _is_strategy_frame(f.filename, strategy_file)]
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {(f.line or "").strip()}' for f in own]
    hidden = len(frames) - len(own)
    if hidden:
        lines.append(f"  ({hidden} frame(s) of ml4t_live / ml4t.backtest / the standard library collapsed)")
    return "\n".join(lines)


def full_traceback(exc: BaseException) -> str:
    """The whole traceback, chained causes included, without variable values."""
    return "".join(traceback.format_exception(exc)).rstrip()


def strategy_file_of(strategy: Any) -> str | None:
    try:
        return str(Path(inspect.getfile(type(strategy))).resolve())
    except (TypeError, OSError):
        return None


def _is_strategy_frame(filename: str, strategy_file: str | None) -> bool:
    try:
        path = str(Path(filename).resolve())
    except OSError:
        return True
    if strategy_file is not None and path == strategy_file:
        return True
    return not path.startswith(_LIBRARY_ROOTS) and not filename.startswith("<frozen")


def _origin(exc: BaseException) -> tuple[str, str, int]:
    """(type, file, line) where ``exc`` was raised: what makes two errors 'the same'."""
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return type(exc).__name__, last.filename if last else "?", (last.lineno or 0) if last else 0


class PassedOver:
    """The strategy errors a run logged and continued after (error policy 'log')."""

    def __init__(self, strategy: Any) -> None:
        self.strategy_name = type(strategy).__name__
        self.strategy_file = strategy_file_of(strategy)
        self.count = 0
        self._seen: dict[tuple[str, str, int], int] = {}

    def log_fatal(self, exc: BaseException, hook: str) -> None:
        """The error that ends the run, in full at DEBUG (session.log); whoever catches the
        StrategyError reports it (the CLI: one block)."""
        _log.debug("the strategy error in full ({}.{}):\n{}", self.strategy_name, hook, full_traceback(exc))

    def log(self, exc: BaseException, hook: str, where: str) -> None:
        """One readable ERROR block for ``exc`` (raised by ``hook`` ``where``), counted."""
        self.count += 1
        origin = _origin(exc)
        seen = self._seen[origin] = self._seen.get(origin, 0) + 1
        head = f"{self.strategy_name}.{hook} raised {type(exc).__name__}{where}: {exc}"
        if seen > 1:
            _log.error("{} (the same error {} times so far, {} strategy errors in all); error policy "
                       "'log': continuing", head, seen, self.count)  # fmt: skip
            return
        _log.error("{}; error policy 'log': continuing with the next bar (the full traceback is "
                   "logged at DEBUG: session.log)\n{}", head, strategy_block(exc, self.strategy_file))  # fmt: skip
        _log.debug("the first {} from {}.{}, in full:\n{}", type(exc).__name__, self.strategy_name, hook,
                   full_traceback(exc))  # fmt: skip
