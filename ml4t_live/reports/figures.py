"""The report's plots (plotly figures), each built from the session and the parity comparison.

Every function returns a ``plotly.graph_objects.Figure``; the HTML writer embeds them with one
copy of plotly.js. Price charts show at most ``MAX_PRICE_ASSETS`` assets (the most traded), one
at a time through a drop-down, so a 100-asset session stays a few MB.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from .causes import LABELS
from .parity import Parity
from .rerun import BacktestRun
from .session_files import SessionData

MAX_PRICE_ASSETS = 20
_LIVE, _BT = "#1f77b4", "#ff7f0e"
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=40), height=420)


def drawdown(equity: pl.Series) -> pl.Series:
    peak = equity.cum_max()
    return ((equity - peak) / peak).fill_nan(0.0).fill_null(0.0)


def equity_figure(session: SessionData, backtest: BacktestRun | None) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05,
                        subplot_titles=("Equity", "Drawdown"))  # fmt: skip
    eq = session.equity
    fig.add_trace(go.Scatter(x=eq["timestamp"], y=eq["equity"], name="live", line=dict(color=_LIVE)), 1, 1)
    fig.add_trace(go.Scatter(x=eq["timestamp"], y=drawdown(eq["equity"]) * 100, name="live drawdown %",
                             fill="tozeroy", line=dict(color=_LIVE)), 2, 1)  # fmt: skip
    if backtest is not None and backtest.equity.height:
        bq = backtest.equity
        fig.add_trace(go.Scatter(x=bq["timestamp"], y=bq["equity"], name="backtest",
                                 line=dict(color=_BT, dash="dot")), 1, 1)  # fmt: skip
        fig.add_trace(go.Scatter(x=bq["timestamp"], y=drawdown(bq["equity"]) * 100, name="backtest drawdown %",
                                 line=dict(color=_BT, dash="dot")), 2, 1)  # fmt: skip
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="%", row=2, col=1)
    return fig.update_layout(**{**_LAYOUT, "height": 520})


#: up to this many traded assets, positions are lines (shares); beyond, a heatmap of market value
MAX_POSITION_LINES = 8
MAX_HEATMAP_ASSETS = 100


def positions_figure(session: SessionData) -> go.Figure:
    fills = session.fills
    if not fills.height:
        return go.Figure().update_layout(title="Positions over time (no fills)", **_LAYOUT)
    signed = pl.when(pl.col("side") == "buy").then(pl.col("quantity")).otherwise(-pl.col("quantity"))
    fills = fills.sort("timestamp").with_columns(signed.alias("signed"))
    assets = _top_assets(session, MAX_HEATMAP_ASSETS)
    if len(assets) > MAX_POSITION_LINES:
        return _position_heatmap(session, fills, assets)
    fig = go.Figure()
    held = fills.with_columns(pl.col("signed").cum_sum().over("asset").alias("position"))
    for asset in assets:
        rows = held.filter(pl.col("asset") == asset)
        fig.add_trace(go.Scatter(x=rows["timestamp"], y=rows["position"], name=asset, line_shape="hv",
                                 mode="lines+markers"))  # fmt: skip
    return fig.update_layout(title="Positions over time (shares, after each fill)", **_LAYOUT)


def _position_heatmap(session: SessionData, fills: pl.DataFrame, assets: list[str]) -> go.Figure:
    """Market value held per asset (rows, most traded first) at each bar's close (columns)."""
    bars = session.bars.filter(pl.col("asset").is_in(assets)).select("timestamp", "asset", "close")
    moves = (fills.filter(pl.col("asset").is_in(assets))
             .with_columns(pl.col("timestamp").cast(bars.schema["timestamp"]))
             .join_asof(bars.select("timestamp").unique().sort("timestamp"), on="timestamp", strategy="forward")
             .group_by("timestamp", "asset").agg(pl.col("signed").sum()))  # fmt: skip
    grid = (bars.join(moves, on=["timestamp", "asset"], how="left").sort("timestamp")
            .with_columns(pl.col("signed").fill_null(0.0).cum_sum().over("asset").alias("held"))
            .with_columns((pl.col("held") * pl.col("close")).alias("value")))  # fmt: skip
    wide = grid.pivot(on="asset", index="timestamp", values="value").sort("timestamp")
    rows = [a for a in assets if a in wide.columns]
    z = [wide[a].fill_null(strategy="forward").fill_null(0.0).to_list() for a in rows]
    fig = go.Figure(go.Heatmap(x=wide["timestamp"], y=rows, z=z, colorscale="RdBu", zmid=0.0,
                               colorbar=dict(title="value")))  # fmt: skip
    height = max(420, 14 * len(rows) + 120)
    return fig.update_layout(title=f"Positions over time: market value of the {len(rows)} most traded assets "
                             "(blue long, red short)", **{**_LAYOUT, "height": height})  # fmt: skip


def prices_figure(session: SessionData) -> go.Figure:
    """Each asset's close with its fills marked (buys ▲, sells ▼); a drop-down picks the asset."""
    fig = go.Figure()
    assets = _top_assets(session, MAX_PRICE_ASSETS) or sorted(
        a for a in session.bars["asset"].unique().to_list() if a)[:MAX_PRICE_ASSETS]
    for i, asset in enumerate(assets):
        bars = session.bars.filter(pl.col("asset") == asset).sort("timestamp")
        fig.add_trace(go.Scatter(x=bars["timestamp"], y=bars["close"], name=f"{asset} close",
                                 visible=i == 0, line=dict(color="#555")))  # fmt: skip
        for side, symbol, color in (("buy", "triangle-up", "#2ca02c"), ("sell", "triangle-down", "#d62728")):
            fills = session.fills.filter((pl.col("asset") == asset) & (pl.col("side") == side)) \
                if session.fills.height else session.fills  # fmt: skip
            fig.add_trace(go.Scatter(
                x=fills["timestamp"] if fills.height else [], y=fills["price"] if fills.height else [],
                mode="markers", name=f"{asset} {side}s", visible=i == 0,
                marker=dict(symbol=symbol, size=11, color=color),
                text=[f"{side} {q:g} @ {p:.4f}" for q, p in zip(fills["quantity"], fills["price"], strict=True)]
                if fills.height else [],
            ))  # fmt: skip
    buttons = []
    for i, asset in enumerate(assets):
        visible = [False] * (3 * len(assets))
        visible[3 * i: 3 * i + 3] = [True, True, True]
        buttons.append(dict(label=asset, method="update", args=[{"visible": visible}]))
    if buttons:
        fig.update_layout(updatemenus=[dict(buttons=buttons, x=0.0, y=1.15, xanchor="left")])
    title = "Price and fills" + (f" (the {len(assets)} most traded assets)" if len(assets) == MAX_PRICE_ASSETS else "")
    return fig.update_layout(title=dict(text=title, x=0.3), **_LAYOUT)


def pnl_by_asset_figure(pnl: dict[str, tuple[float, float]]) -> go.Figure:
    """Live and backtest P&L per asset (fills marked to the last close)."""
    assets = sorted(pnl, key=lambda a: pnl[a][0])
    fig = go.Figure([
        go.Bar(x=assets, y=[pnl[a][0] for a in assets], name="live", marker_color=_LIVE),
        go.Bar(x=assets, y=[pnl[a][1] for a in assets], name="backtest", marker_color=_BT),
    ])  # fmt: skip
    return fig.update_layout(title="P&L by asset", barmode="group", **_LAYOUT)


def attribution_figure(parity: Parity) -> go.Figure:
    """Waterfall: backtest P&L, each cause's share of the gap, the residual, live P&L."""
    labels = ["backtest P&L"] + [LABELS[c] for c in parity.attribution] + ["residual", "live P&L"]
    values = [parity.backtest_pnl, *parity.attribution.values(), parity.residual, parity.live_pnl]
    measure = ["absolute"] + ["relative"] * (len(values) - 2) + ["total"]
    fig = go.Figure(go.Waterfall(x=labels, y=values, measure=measure,
                                 text=[f"{v:+,.2f}" for v in values], textposition="outside"))  # fmt: skip
    return fig.update_layout(title="Where the P&L gap comes from (live - backtest)", **_LAYOUT)


def slippage_figure(parity: Parity) -> go.Figure:
    fig = go.Figure(go.Histogram(x=parity.slippage_bps, nbinsx=40, marker_color=_LIVE))
    return fig.update_layout(title="Slippage against the backtest fill (bps, positive = worse)",
                             xaxis_title="bps", yaxis_title="fills", **_LAYOUT)  # fmt: skip


def latency_figure(latency: pl.DataFrame) -> go.Figure:
    """Histograms of bar received -> order sent and order sent -> fill received (ms)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bar received → order sent (ms)",
                                                        "order sent → fill received (ms)"))  # fmt: skip
    fig.add_trace(go.Histogram(x=latency["bar_to_order_ms"].drop_nulls(), nbinsx=40, name="bar → order",
                               marker_color=_LIVE), 1, 1)  # fmt: skip
    fig.add_trace(go.Histogram(x=latency["order_to_fill_ms"].drop_nulls(), nbinsx=40, name="order → fill",
                               marker_color=_BT), 1, 2)  # fmt: skip
    return fig.update_layout(title="Latency at the venue (one count per fill)", showlegend=False, **_LAYOUT)


def _top_assets(session: SessionData, n: int) -> list[str]:
    if not session.fills.height:
        return []
    traded = (session.fills.group_by("asset").agg((pl.col("quantity") * pl.col("price")).abs().sum().alias("n"))
              .sort(["n", "asset"], descending=[True, False]))  # fmt: skip
    return traded["asset"].head(n).to_list()


def pnl_by_asset(parity: Parity, marks: dict[str, float]) -> dict[str, tuple[float, float]]:
    from .parity import contribution

    out: dict[str, list[float]] = {}
    for d in parity.compared:
        for k, record in ((0, d.live), (1, d.backtest)):
            if record is not None:
                out.setdefault(record.asset, [0.0, 0.0])[k] += contribution(record, marks)
    return {a: (v[0], v[1]) for a, v in out.items()}


def as_div(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})  # fmt: skip

