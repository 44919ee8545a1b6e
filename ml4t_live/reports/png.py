"""``report.png``: equity and drawdown, for a chat message or an email (matplotlib, no browser)."""

from __future__ import annotations

from pathlib import Path

from .rerun import BacktestRun
from .session_files import SessionData


def write_png(target: Path, session: SessionData, backtest: BacktestRun | None, title: str,
              note: str = "") -> Path:  # fmt: skip
    """``note``: a second title line (final equity, return, parity score)."""
    # a bare Figure (no pyplot): drawn by the Agg canvas savefig picks for PNG, so no display is
    # needed and the caller's matplotlib backend is left as it is
    from matplotlib.figure import Figure

    from .figures import drawdown

    fig = Figure(figsize=(10, 5.5), dpi=110, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[7, 3])
    eq = session.equity
    if eq.height:
        top.plot(eq["timestamp"].to_list(), eq["equity"].to_list(), color="#1f77b4", label="live")
        bottom.fill_between(eq["timestamp"].to_list(), (drawdown(eq["equity"]) * 100).to_list(), 0,
                            color="#1f77b4", alpha=0.4, label="live")  # fmt: skip
    if backtest is not None and backtest.equity.height:
        bq = backtest.equity
        top.plot(bq["timestamp"].to_list(), bq["equity"].to_list(), color="#ff7f0e", ls=":", label="backtest")
        bottom.plot(bq["timestamp"].to_list(), (drawdown(bq["equity"]) * 100).to_list(), color="#ff7f0e", ls=":")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")
    top.set_title(f"{title}\n{note}" if note else title)
    top.set_ylabel("equity")
    top.legend(loc="best")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.savefig(target)
    return target
