"""``report.html``: one self-contained page (plotly.js inlined once, no CDN, works offline)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import polars as pl

from .causes import LABELS
from .parity import Parity
from .session_files import SessionData

_NUMBER_TEXT = re.compile(r"[+-]?[\d,]+(\.\d+)?%?")
_LOG_PROBLEM = re.compile(r"\|\s*(WARNING|ERROR|CRITICAL)\s*\|")
MAX_LOG_LINES = 500
MAX_ORDER_ROWS = 20_000

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
.muted{color:#666} .banner{padding:12px 16px;border-radius:6px;font-size:1.1em;margin:16px 0}
.ok{background:#e6f4ea;border:1px solid #34a853} .warn{background:#fef7e0;border:1px solid #f9ab00}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5;position:sticky;top:0} .num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{max-height:480px;overflow:auto;border:1px solid #eee} .plot{min-height:300px}
pre{background:#f8f8f8;padding:8px;font-size:12px;max-height:400px;overflow:auto}
input.filter{padding:4px 8px;width:320px;margin:4px 0}
"""

_FILTER_JS = """
function filterTable(input, id){var q=input.value.toLowerCase();var rows=document.getElementById(id).tBodies[0].rows;
for(var i=0;i<rows.length;i++){rows[i].style.display=rows[i].textContent.toLowerCase().indexOf(q)>=0?'':'none';}}
"""


def esc(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.2f}"
    return html.escape(str(value))


def _numeric(cell: Any) -> bool:
    if isinstance(cell, bool):
        return False
    return isinstance(cell, (int, float)) or (isinstance(cell, str) and bool(_NUMBER_TEXT.fullmatch(cell)))


def table(headers: list[str], rows: list[list[Any]], table_id: str | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if _numeric(c) else f"<td>{esc(c)}</td>"
                         for c in row) + "</tr>" for row in rows)  # fmt: skip
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def filterable(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    return (f'<input class="filter" placeholder="filter rows (any text)" '
            f'oninput="filterTable(this, \'{table_id}\')"><div class="scroll">'
            f"{table(headers, rows, table_id)}</div>")  # fmt: skip


def summary_section(session: SessionData) -> str:
    keys = ("broker", "stopped_reason", "bars", "initial_cash", "final_value", "total_return_pct",
            "max_drawdown", "num_orders", "num_fills", "num_rejected_orders", "num_open_orders",
            "num_strategy_errors", "total_commission", "total_slippage", "started_at", "last_bar")  # fmt: skip
    rows = [[k.replace("_", " "), _summary_value(k, session.summary[k])] for k in keys if k in session.summary]
    if session.summary.get("failed"):
        rows.insert(0, ["FAILED", session.summary.get("error")])
    return table(["", "value"], rows)


def _summary_value(key: str, value: Any) -> Any:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if key == "total_return_pct":
        return f"{value:+.2f}%"
    if key == "max_drawdown":
        return f"{value * 100:.2f}%"
    if key in ("initial_cash", "final_value", "total_commission", "total_slippage"):
        return f"{value:,.2f}"
    return value


def money(value: float) -> str:
    return f"{value:+,.2f}"


def parity_section(parity: Parity | None, error: str | None) -> str:
    if parity is None:
        return f'<div class="banner warn">No parity check: {esc(error)}</div>'
    css = "ok" if parity.fully_identical else "warn"
    counts = [[LABELS[c], n] for c, n in parity.counts().items()]
    attribution = [[LABELS[c], money(v)] for c, v in parity.attribution.items()]
    attribution += [["residual (not explained by the fills)", money(parity.residual)],
                    ["gap (live - backtest)", money(parity.gap)]]  # fmt: skip
    diffs = [[str(d.decided_at), d.asset, d.side, LABELS[d.cause], d.detail,
              d.live.order_id if d.live else "", d.backtest.order_id if d.backtest else "",
              f"{d.slippage_bps:+.1f}" if d.slippage_bps is not None else "", money(d.pnl_effect)]
             for d in parity.differences]  # fmt: skip
    return (f'<div class="banner {css}">{esc(parity.headline())}</div>'
            f"<h3>Decisions by cause</h3>{table(['cause', 'decisions'], counts)}"
            f"<h3>P&amp;L attribution</h3>{table(['cause', 'P&L effect'], attribution)}"
            + (f"<h3>External activity (not this strategy's; not in its P&amp;L)</h3>"
               f"<pre>{esc(chr(10).join(parity.external))}</pre>" if parity.external else "")
            + "<h3>Every difference</h3>"
            + (filterable(["decided at", "asset", "side", "cause", "what differs", "live order",
                           "backtest order", "slippage bps", "P&L effect"], diffs, "differences")
               if diffs else "<p>None.</p>"))  # fmt: skip


def orders_section(session: SessionData) -> str:
    orders = session.orders
    if not orders.height:
        return "<p>No orders.</p>"
    cols = [c for c in ("created_at", "order_id", "asset", "side", "order_type", "quantity", "filled_quantity",
                        "filled_price", "limit_price", "stop_price", "status", "filled_at", "commission_paid",
                        "rejection_reason", "cancellation_reason") if c in orders.columns]  # fmt: skip
    rows = [list(r) for r in orders.sort("created_at").select(cols).head(MAX_ORDER_ROWS).iter_rows()]
    note = f"<p class='muted'>first {MAX_ORDER_ROWS:,} of {orders.height:,}</p>" if orders.height > MAX_ORDER_ROWS else ""
    return note + filterable(cols, rows, "orders")


def problems_section(session: SessionData) -> str:
    orders = session.orders
    rejected = orders.filter(pl.col("status") == "rejected") if orders.height else orders
    parts = ["<h3>Rejected orders</h3>"]
    if rejected.height:
        cols = [c for c in ("created_at", "order_id", "asset", "side", "quantity", "rejection_reason",
                            "rejection_code") if c in rejected.columns]  # fmt: skip
        parts.append(table(cols, [list(r) for r in rejected.select(cols).iter_rows()]))
    else:
        parts.append("<p>None.</p>")
    lines = _log_problems(session.path / "session.log")
    parts.append(f"<h3>Warnings and errors in session.log ({len(lines)}{'+' if len(lines) >= MAX_LOG_LINES else ''})</h3>")
    parts.append(f"<pre>{esc(chr(10).join(lines))}</pre>" if lines else "<p>None.</p>")
    return "".join(parts)


def _log_problems(log: Path) -> list[str]:
    if not log.is_file():
        return []
    out = []
    with log.open(errors="replace") as fh:
        for line in fh:
            if _LOG_PROBLEM.search(line):
                out.append(line.rstrip()[:400])
                if len(out) >= MAX_LOG_LINES:
                    break
    return out


def write_page(target: Path, title: str, subtitle: str, sections: list[tuple[str, str]]) -> Path:
    """Write the page: ``sections`` are (heading, inner HTML); plotly.js is inlined once."""
    from plotly.offline import get_plotlyjs

    body = "".join(f"<h2>{esc(h)}</h2>{inner}" for h, inner in sections)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{_CSS}</style><script>{get_plotlyjs()}</script><script>{_FILTER_JS}</script></head>"
            f"<body><h1>{esc(title)}</h1><div class='muted'>{esc(subtitle)}</div>{body}</body></html>")  # fmt: skip
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target
