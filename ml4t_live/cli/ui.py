"""What the command line shows: log sinks, progress while a run goes, the summary after it.

Only entry points add or remove loguru sinks; this module is the CLI's place for them. Progress
and logs go to stderr; the summary goes to stdout (so ``ml4t-live run ... > summary.txt`` works).
On a terminal the progress is a rich bar (no background refresh thread: it is redrawn from the
engine's progress callback at most ten times a second); elsewhere (cron, CI) it is a log line
every 10% of the bars, or every 30 seconds for a feed of unknown length.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from . import library_logs

_log = logger.bind(component="cli")

_STDERR_FORMAT = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}"
_FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS!UTC}Z | {level: <7} | {extra[component]} | {name}:{line} | {message}"
_LINE_EVERY_SECONDS = 30.0


class Display:
    """Owns the stderr sink, the optional session-log sink and the progress display."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.quiet = quiet
        self.err = Console(stderr=True, highlight=False)
        self.out = Console(highlight=False, soft_wrap=True)
        self._progress: Progress | None = None
        self._file_sink: int | None = None
        self._stderr_sink: int | None = None
        logger.remove()
        logger.configure(extra={"component": "-"})
        logger.enable("ml4t_live")  # the library is silent until an application enables it
        library_logs.route()  # ib_async / alpaca-py records through these sinks, not raw
        self.set_level(verbose=verbose, quiet=quiet)

    def set_level(self, *, verbose: bool, quiet: bool) -> None:
        """(Re)install the stderr sink: DEBUG with ``verbose``, WARNING with ``quiet``, else INFO."""
        self.quiet = quiet
        if self._stderr_sink is not None:
            logger.remove(self._stderr_sink)
        level = "DEBUG" if verbose else ("WARNING" if quiet else "INFO")
        # diagnose=False: no variable values in tracebacks (they hold request headers, keys)
        self._stderr_sink = logger.add(self._write_stderr, diagnose=False, level=level,
                                       format=_STDERR_FORMAT, colorize=self.err.is_terminal)  # fmt: skip

    def _write_stderr(self, message: str) -> None:
        if self._progress is not None and self._progress.live.is_started:
            self._progress.console.print(message.rstrip("\n"), markup=False, highlight=False)
        else:
            sys.stderr.write(message)

    def log_to_file(self, path: Path) -> None:
        """Also write the full (DEBUG) log to ``path`` (the session's ``session.log``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file_sink = logger.add(path, diagnose=False, level="DEBUG", format=_FILE_FORMAT,
                                     encoding="utf-8")  # fmt: skip

    def close(self) -> None:
        """Stop the progress display and remove the session-log sink (the stderr sink stays)."""
        self.stop_progress()
        library_logs.unroute()
        if self._file_sink is not None:
            logger.remove(self._file_sink)
            self._file_sink = None

    # -- progress ------------------------------------------------------------------------
    def progress_callback(self, label: str) -> Any:
        """A callable for ``LiveEngine(progress=...)``; None when quiet."""
        if self.quiet:
            return None
        if self.err.is_terminal:
            return _BarProgress(self, label)
        return _LineProgress(label)

    def stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
            self._progress = None

    # -- summary -------------------------------------------------------------------------
    def summary(self, title: str, result: Any, mode: str) -> None:
        """The short report printed after a run."""
        self.stop_progress()
        m = result.metrics
        files = str(result.session_dir) if result.session_dir is not None else "(none: recording disabled)"
        rows = [
            ("orders", f"{m.get('num_orders', 0):>12,}"),
            ("fills", f"{m.get('num_fills', 0):>12,}"),
            ("rejections", f"{m.get('num_rejected_orders', 0):>12,}" + _catch_up(m)),
            ("open orders", f"{m.get('num_open_orders', 0):>12,}"),
            *([("strategy errors", f"{m['num_strategy_errors']:>12,}")] if m.get("num_strategy_errors") else []),
            *([("risk refusals", f"{m['num_risk_refusals']:>12,}  "
                + ", ".join(f"{k} {v}" for k, v in sorted(m.get("risk_refusals", {}).items())))]
              if m.get("num_risk_refusals") else []),
            *([("trading state", f"{m['trading_state']:>12}  {m.get('trading_state_reason', '')}")]
              if m.get("trading_state", "ACTIVE") != "ACTIVE" else []),
            *([("bad bars dropped", f"{m['num_bad_bars_dropped']:>11,}")] if m.get("num_bad_bars_dropped") else []),
            ("final equity", f"{m.get('final_value', float('nan')):>12,.2f}"),
            ("return", f"{m.get('total_return_pct', float('nan')):>+11.2f}%"),
            ("session files", f"  {files}"),
        ]  # fmt: skip
        lines = [f"{title}: {result.bars:,} bars, {mode} mode, stopped: {result.stopped_reason}"]
        lines += [f"  {label:<15}{value}" for label, value in rows]
        held = m.get("positions") or {}
        if held:
            where = "positions at the end" if mode.startswith("shadow") else "positions left at the venue"
            lines.append(f"  {where}: " + ", ".join(f"{a} {q:+,g}" for a, q in held.items()))
        left = m.get("left_at_venue") or []
        if left:
            lines.append(f"  left at the venue ({len(left)} order(s) still working):")
            lines += [f"    {order_id}" for order_id in left]
        self.out.print("\n".join(lines), markup=False)


def _catch_up(m: dict[str, Any]) -> str:
    count = m.get("num_rejected_catch_up") or 0
    return f"  ({count:,} made on catch-up bars: warm-up history or a replay, never sent)" if count else ""


class _BarProgress:
    """A rich progress bar, redrawn at most every 0.1 s (and at the end)."""

    def __init__(self, display: Display, label: str) -> None:
        self.display = display
        self.label = label
        self.task: int | None = None
        self.last = 0.0

    def __call__(self, p: Any) -> None:
        display = self.display
        if self.task is None:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[when]}  equity {task.fields[equity]:,.0f}  fills {task.fields[fills]}"),
                TimeRemainingColumn(),
                console=display.err,
                auto_refresh=False,  # no refresh thread: we redraw from this callback
                redirect_stdout=False,
                redirect_stderr=False,
            )
            progress.start()
            display._progress = progress
            self.task = progress.add_task(self.label, total=p.bars_total, when="", equity=0.0, fills=0)
        progress = display._progress
        if progress is None:
            return
        progress.update(self.task, completed=p.bars_done, when=_when(p.timestamp),
                        equity=p.equity, fills=p.fills)  # fmt: skip
        now = time.monotonic()
        if now - self.last >= 0.1 or p.bars_done == p.bars_total:
            self.last = now
            progress.refresh()


class _LineProgress:
    """One log line every 10% of the bars (or every 30 s when the total is unknown)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.next_tenth = 1
        self.last = time.monotonic()

    def __call__(self, p: Any) -> None:
        total = p.bars_total
        if total:
            if p.bars_done * 10 < total * self.next_tenth:
                return
            self.next_tenth = p.bars_done * 10 // total + 1
            done = f"{p.bars_done:,}/{total:,} bars ({100 * p.bars_done / total:.0f}%)"
        else:
            now = time.monotonic()
            if now - self.last < _LINE_EVERY_SECONDS:
                return
            self.last = now
            done = f"{p.bars_done:,} bars"
        _log.info("{}: {} at {}, equity {:,.2f}, orders {}, fills {}",
                  self.label, done, _when(p.timestamp), p.equity, p.orders, p.fills)  # fmt: skip


def _when(timestamp: Any) -> str:
    try:
        return timestamp.strftime("%Y-%m-%d %H:%M")
    except AttributeError:
        return str(timestamp)
