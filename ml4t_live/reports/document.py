"""The report's sections, top to bottom: (heading, HTML) pairs for :func:`.page.write_page`."""

from __future__ import annotations

import polars as pl

from . import figures as f
from .page import orders_section, parity_section, problems_section, summary_section
from .parity import Parity, last_closes
from .rerun import BacktestRun
from .session_files import SessionData


def sections(session: SessionData, backtest: BacktestRun | None, result: Parity | None,
             why: str | None) -> list[tuple[str, str]]:  # fmt: skip
    """Every section; the parity ones say why parity is missing when ``result`` is None."""
    out = [("Summary", summary_section(session)),
           ("Equity and drawdown", f.as_div(f.equity_figure(session, backtest), "plot-equity")),
           ("Parity with the backtest", parity_section(result, why))]  # fmt: skip
    if result is not None and not result.fully_identical:
        out.append(("P&L attribution", f.as_div(f.attribution_figure(result), "plot-attribution")))
        if result.slippage_bps:
            out.append(("Slippage distribution", f.as_div(f.slippage_figure(result), "plot-slippage")))
    if result is not None:
        by_asset = f.pnl_by_asset(result, last_closes(session))
        out.append(("P&L by asset", f.as_div(f.pnl_by_asset_figure(by_asset), "plot-pnl-by-asset")))
    out += [("Positions over time", f.as_div(f.positions_figure(session), "plot-positions")),
            ("Prices and fills", f.as_div(f.prices_figure(session), "plot-prices")),
            ("Orders", orders_section(session)),
            ("Rejections and errors", problems_section(session)),
            ("Latency (bar → order → fill)", latency_section(session))]  # fmt: skip
    return out


def subtitle(session: SessionData) -> str:
    s = session.summary
    return (f"folder {session.path} · started {s.get('started_at', '?')} · last bar {s.get('last_bar', '?')} · "
            f"{session.bars['timestamp'].n_unique()} bars, {session.bars['asset'].n_unique()} assets")  # fmt: skip


def latency_section(session: SessionData) -> str:
    latency = session.latency
    if latency is not None and latency.height:
        q = latency.select(pl.col("bar_to_order_ms").median().alias("a"), pl.col("order_to_fill_ms").median().alias("b"),
                           pl.col("order_to_fill_ms").quantile(0.95).alias("c"))  # fmt: skip
        a, b, c = q.row(0)
        note = (f"<p>{latency.height:,} fills: median bar → order {_ms(a)}, median order → fill {_ms(b)}, "
                f"95th percentile order → fill {_ms(c)}.</p>")  # fmt: skip
        return note + f.as_div(f.latency_figure(latency), "plot-latency")
    if session.simulated_fills:
        return "<p class='muted'>Shadow and replay sessions fill inside the engine: no venue latency.</p>"
    return ("<p class='muted'>This session recorded no latency table (no fills, or written before "
            "latency.parquet existed); fill delays measured in bars are in the parity table "
            "(cause: venue latency).</p>")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"
