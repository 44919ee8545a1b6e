"""Session reports: what happened in a session, and how it compares with the backtest.

::

    report(session_dir)  -> ReportFiles   report.html (self-contained), report.png, parity.json
    parity(session_dir)  -> Parity        the live-vs-backtest comparison only (parity.json)

Layout: :mod:`.session_files` reads the folder; :mod:`.rerun` runs the session's strategy
through ``ml4t.backtest.Engine`` on its recorded bars; :mod:`.orders` matches orders one to one;
:mod:`.causes` classifies each difference; :mod:`.parity` attributes the P&L gap;
:mod:`.figures` / :mod:`.page` / :mod:`.png` draw and write. Nothing here needs the venue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from loguru import logger

from ..errors import ConfigError, Ml4tLiveError
from ..session import json_safe
from .parity import Parity, compare, last_closes
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
    from . import figures as f
    from .page import orders_section, parity_section, problems_section, summary_section, write_page
    from .png import write_png

    started = time.monotonic()
    step = progress or _quiet
    step("reading the session files")
    session = load_session(session_dir)
    backtest, result, why = _parity_or_reason(session, step)
    parity_json = write_parity_json(session.path, result) if result is not None else None
    step("drawing the plots")
    title = f"{session.strategy_name}: {session.mode} session {session.path.name}"
    sections = _sections(session, backtest, result, why, f, summary_section, parity_section,
                         orders_section, problems_section)  # fmt: skip
    step("writing report.html and report.png")
    html = write_page(session.path / "report.html", title, _subtitle(session), sections)
    png = write_png(session.path / "report.png", session, backtest, title)
    seconds = time.monotonic() - started
    _log.info("report written: {} ({:.1f}s)", html, seconds)
    if open_browser:
        import webbrowser

        webbrowser.open(html.resolve().as_uri())
    return ReportFiles(html, png, parity_json, result, seconds)


def _parity_or_reason(session: SessionData, step: Progress) -> tuple[BacktestRun | None, Parity | None, str | None]:
    step("re-running the strategy through ml4t.backtest on the recorded bars")
    try:
        backtest = run_backtest(session)
    except (ConfigError, Ml4tLiveError, ImportError) as exc:
        _log.warning("no parity check for {}: {}", session.path, exc)
        return None, None, str(exc)
    step("matching orders and classifying differences")
    return backtest, compare(session, backtest), None


def _subtitle(session: SessionData) -> str:
    s = session.summary
    return (f"folder {session.path} · started {s.get('started_at', '?')} · last bar {s.get('last_bar', '?')} · "
            f"{session.bars['timestamp'].n_unique()} bars, {session.bars['asset'].n_unique()} assets")  # fmt: skip


def _sections(session: SessionData, backtest: BacktestRun | None, result: Parity | None, why: str | None,
              f: Any, summary_section: Any, parity_section: Any, orders_section: Any,
              problems_section: Any) -> list[tuple[str, str]]:  # fmt: skip
    sections = [("Summary", summary_section(session)),
                ("Equity and drawdown", f.as_div(f.equity_figure(session, backtest), "plot-equity")),
                ("Parity with the backtest", parity_section(result, why))]  # fmt: skip
    if result is not None and not result.fully_identical:
        sections.append(("P&L attribution", f.as_div(f.attribution_figure(result), "plot-attribution")))
        if result.slippage_bps:
            sections.append(("Slippage distribution", f.as_div(f.slippage_figure(result), "plot-slippage")))
    if result is not None:
        by_asset = f.pnl_by_asset(result, last_closes(session))
        sections.append(("P&L by asset", f.as_div(f.pnl_by_asset_figure(by_asset), "plot-pnl-by-asset")))
    sections += [("Positions over time", f.as_div(f.positions_figure(session), "plot-positions")),
                 ("Prices and fills", f.as_div(f.prices_figure(session), "plot-prices")),
                 ("Orders", orders_section(session)),
                 ("Rejections and errors", problems_section(session)),
                 ("Latency (bar → order → fill)", _latency(session, f))]  # fmt: skip
    return sections


def _latency(session: SessionData, f: Any) -> str:
    latency = session.latency
    if latency is not None and latency.height:
        q = latency.select(pl.col("bar_to_order_ms").median().alias("a"), pl.col("order_to_fill_ms").median().alias("b"),
                           pl.col("order_to_fill_ms").quantile(0.95).alias("c"))  # fmt: skip
        a, b, c = q.row(0)
        note = (f"<p>{latency.height:,} fills: median bar → order {_ms(a)}, median order → fill {_ms(b)}, "
                f"95th percentile order → fill {_ms(c)}.</p>")  # fmt: skip
        return note + f.as_div(f.latency_figure(latency), "plot-latency")
    return _latency_note(session)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _latency_note(session: SessionData) -> str:
    if session.simulated_fills:
        return "<p class='muted'>Shadow and replay sessions fill inside the engine: no venue latency.</p>"
    return ("<p class='muted'>This session recorded no latency table (no fills, or written before "
            "latency.parquet existed); fill delays measured in bars are in the parity table "
            "(cause: venue latency).</p>")
