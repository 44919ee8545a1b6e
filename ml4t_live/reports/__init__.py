"""Session reports: what happened in a session, and how it compares with the backtest.

::

    report(session_dir)  -> ReportFiles   report.html (self-contained), report.png, parity.json
    parity(session_dir)  -> Parity        the live-vs-backtest comparison only (parity.json)

Layout: :mod:`.session_files` reads the folder; :mod:`.rerun` runs the session's strategy
through ``ml4t.backtest.Engine`` on its recorded bars; :mod:`.orders` matches orders one to one;
:mod:`.causes` classifies each difference; :mod:`.parity` attributes the P&L gap;
:mod:`.document` puts the sections together from :mod:`.figures` (plotly) and
:mod:`.page` (tables, the HTML file); :mod:`.png` draws report.png. Nothing here needs the venue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from ..errors import ConfigError, Ml4tLiveError
from ..session import json_safe
from .parity import Parity, compare
from .rerun import BacktestRun, run_backtest
from .session_files import SessionData, load_session

__all__ = ["Parity", "ReportFiles", "load_session", "parity", "report"]

_log = logger.bind(component="report")

Progress = Callable[[str], None]


@dataclass
class ReportFiles:
    html: Path
    png: Path
    parity_json: Path | None
    parity: Parity | None
    seconds: float


def _quiet(_: str) -> None:
    return None


def parity(session_dir: Path | str, *, strategy: str | None = None, write: bool = True,
           progress: Progress | None = None) -> Parity:  # fmt: skip
    """Compare the session with ml4t.backtest on its recorded bars; writes ``parity.json``."""
    step = progress or _quiet
    step("reading the session files")
    session = load_session(session_dir)
    step("re-running the strategy through ml4t.backtest on the recorded bars")
    result = compare(session, run_backtest(session, strategy))
    if write:
        write_parity_json(session.path, result)
    return result


def write_parity_json(folder: Path, result: Parity) -> Path:
    target = folder / "parity.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(json_safe(result.as_dict()), indent=2) + "\n")
    tmp.replace(target)
    return target


def report(session_dir: Path | str, *, strategy: str | None = None, open_browser: bool = False,
           progress: Progress | None = None) -> ReportFiles:  # fmt: skip
    """Write ``report.html``, ``report.png`` and ``parity.json`` into the session folder.

    A session whose strategy cannot be re-run (no ``command.json``, an import error) still gets
    its report, with the reason parity is missing in it.
    """
    from .document import (  # plotly and matplotlib load here, not for parity()
        sections,
        subtitle,
    )
    from .page import write_page
    from .png import write_png

    started = time.monotonic()
    step = progress or _quiet
    step("reading the session files")
    session = load_session(session_dir)
    backtest, result, why = _parity_or_reason(session, strategy, step)
    parity_json = write_parity_json(session.path, result) if result is not None else None
    step("drawing the plots")
    title = f"{session.strategy_name}: {session.mode} session {session.path.name}"
    parts = sections(session, backtest, result, why)
    step("writing report.html and report.png")
    html = write_page(session.path / "report.html", title, subtitle(session), parts)
    png = write_png(session.path / "report.png", session, backtest, title, _png_note(session, result))
    seconds = time.monotonic() - started
    _log.info("report written: {} ({:.1f}s)", html, seconds)
    if open_browser:
        import webbrowser

        webbrowser.open(html.resolve().as_uri())
    return ReportFiles(html, png, parity_json, result, seconds)


def _png_note(session: SessionData, result: Parity | None) -> str:
    s = session.summary
    parts = []
    if "final_value" in s:
        parts.append(f"final equity {s['final_value']:,.2f} ({s.get('total_return_pct', 0.0):+.2f}%)")
    if result is not None:
        parts.append("100% identical to the backtest" if result.fully_identical
                     else f"parity {result.score:.0%} of decisions, P&L gap {result.gap:+,.2f} vs the backtest")  # fmt: skip
    return " · ".join(parts)


def _parity_or_reason(session: SessionData, strategy: str | None,
                      step: Progress) -> tuple[BacktestRun | None, Parity | None, str | None]:  # fmt: skip
    step("re-running the strategy through ml4t.backtest on the recorded bars")
    try:
        backtest = run_backtest(session, strategy)
    except (ConfigError, Ml4tLiveError, ImportError) as exc:
        _log.warning("no parity check for {}: {}", session.path, exc)
        return None, None, str(exc)
    except Exception as exc:  # noqa: BLE001  (the strategy's own code raised in the backtest)
        why = f"the strategy raised in the backtest re-run: {type(exc).__name__}: {exc}"
        _log.warning("no parity check for {}: {}", session.path, why)
        return None, None, why
    step("matching orders and classifying differences")
    return backtest, compare(session, backtest), None
