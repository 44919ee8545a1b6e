"""``ml4t-live report SESSION`` and ``ml4t-live parity SESSION``: read a session folder, never
the venue; and the report at the end of ``run`` (``--report`` / ``report = true``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger

from .app import Quiet, Verbose, _guard, app
from .ui import Display

_log = logger.bind(component="cli")

Session = Annotated[Path, typer.Argument(help="A session folder written by run / demo / replay.",
                                         show_default=False, file_okay=False)]  # fmt: skip
StrategyOverride = Annotated[str | None, typer.Option(
    "--strategy", help="The strategy to re-run (path/to/file.py:ClassName or package.module:ClassName) "
    "[default: the session's own, from its command.json].")]  # fmt: skip


@app.command()
@_guard
def report(
    session: Session,
    open_browser: Annotated[bool, typer.Option("--open", help="Open report.html in the browser.")] = False,
    strategy: StrategyOverride = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write report.html (one self-contained file, works offline), report.png (equity and
    drawdown) and parity.json into a session folder: plots, orders, rejections and errors, and
    the session compared decision by decision with ml4t.backtest on its own recorded bars."""
    display = Display(verbose=verbose, quiet=quiet)
    try:
        files = make_report(session, strategy=strategy, open_browser=open_browser, quiet=quiet)
        typer.echo(f"report: {files.html}\npng:    {files.png}")
        if files.parity is not None:
            typer.echo(f"parity: {files.parity.headline()}")
    finally:
        display.close()


@app.command()
@_guard
def parity(
    session: Session,
    as_json: Annotated[bool, typer.Option("--json", help="Print parity.json to stdout.")] = False,
    strategy: StrategyOverride = None,
    verbose: Verbose = False,
) -> None:
    """Compare a session with ml4t.backtest on its own recorded bars: orders matched one to one,
    every difference with its cause, the parity score and the P&L gap attributed (also written
    to the session's parity.json)."""
    from ml4t_live.reports import parity as compare
    from ml4t_live.session import json_safe

    display = Display(verbose=verbose, quiet=not verbose)
    try:
        result = compare(session, strategy=strategy)
        if as_json:
            typer.echo(json.dumps(json_safe(result.as_dict()), indent=2))
        else:
            typer.echo(render(result))
    finally:
        display.close()


def render(result: Any) -> str:
    from ml4t_live.reports.causes import LABELS

    lines = [result.headline(), "", "  decisions by cause"]
    lines += [f"    {LABELS[c]:<42}{n:>8,}" for c, n in result.counts().items()]
    lines += ["", "  P&L gap attribution (live - backtest)"]
    lines += [f"    {LABELS[c]:<42}{v:>+14,.2f}" for c, v in result.attribution.items()]
    lines += [f"    {'residual':<42}{result.residual:>+14,.2f}", f"    {'gap':<42}{result.gap:>+14,.2f}"]
    for d in result.differences[:50]:
        lines.append(f"  {d.decided_at}  {d.asset:<6} {d.side:<4} {LABELS[d.cause]}: {d.detail}")
    if len(result.differences) > 50:
        lines.append(f"  ... {len(result.differences) - 50} more in parity.json")
    return "\n".join(lines)


def make_report(session: Any, *, strategy: str | None = None, open_browser: bool = False,
                quiet: bool = False) -> Any:  # fmt: skip
    """The report, with a progress line per step on stderr (none when quiet)."""
    from ml4t_live.reports import report as write_report

    def progress(step: str) -> None:
        if not quiet:
            _log.info("report: {}", step)

    return write_report(session, strategy=strategy, open_browser=open_browser, progress=progress)


def report_after_run(session_dir: Path | None, display: Display) -> None:
    """``run --report``: the report of the session just written, also after a failed run (a
    failure to draw it is logged; the run's own outcome stands)."""
    if session_dir is None:
        _log.warning("--report: this run wrote no session folder (--no-session), so there is nothing to report")
        return
    try:
        files = make_report(session_dir, quiet=display.quiet)
    except Exception as exc:  # noqa: BLE001  (the run's outcome stands; its report is a by-product)
        _log.error("the session report could not be written: {}: {}", type(exc).__name__, exc)
        return
    display.out.print(f"  report         {files.html}", markup=False)
    if files.parity is not None:
        display.out.print(f"  parity         {files.parity.headline()}", markup=False)
