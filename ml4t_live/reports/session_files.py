"""Reading one session folder back: the tables, the summary and the command it ran with.

Everything the report and the parity check need comes from here; neither ever needs the venue.
A session whose process died before it closed is read from its part files (as
:func:`ml4t_live.session.read_session_bars` does).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import ConfigError
from ..session_tables import read_table

#: modes whose fills come from ml4t.backtest's own fill model (parity is identical by design)
SIMULATED_MODES = ("shadow", "shadow replay")

#: session.log lines about activity in the account that was not the strategy's: an execution of
#: another client's order, another client's open order, a position reconciliation calls external
_EXTERNAL = re.compile(r"is not this strategy's: left to its owner \(external\)|was not placed by this "
                       r"strategy|reconciliation: external ")  # fmt: skip


@dataclass
class SessionData:
    """One session folder, read."""

    path: Path
    bars: pl.DataFrame
    signals: pl.DataFrame | None
    context: pl.DataFrame | None
    orders: pl.DataFrame
    fills: pl.DataFrame
    equity: pl.DataFrame
    summary: dict[str, Any]
    command: dict[str, Any]
    external: list[str]
    latency: pl.DataFrame | None = None  # venue runs: one row per fill (ml4t_live.latency)

    @property
    def external_events(self) -> int:
        return len(self.external)

    @property
    def mode(self) -> str:
        return str(self.command.get("mode") or self.summary.get("broker") or "unknown")

    @property
    def simulated_fills(self) -> bool:
        """Shadow and replay sessions fill with ml4t.backtest's own model."""
        return self.mode in SIMULATED_MODES or self.summary.get("broker") == "shadow"

    @property
    def strategy_name(self) -> str:
        target = str(self.command.get("strategy") or "")
        return target.rsplit(":", 1)[-1] if target else self.path.name.rsplit("-", 1)[0]

    @property
    def initial_cash(self) -> float:
        value = self.summary.get("initial_cash")
        if value is None and self.equity.height:
            value = self.equity["equity"][0]
        return float(value or 0.0)


def load_session(path: Path | str) -> SessionData:
    """Read the session folder ``path``; a :class:`ConfigError` says what is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"session folder {folder} does not exist")
    bars = _table(folder, "bars")
    if bars is None:
        raise ConfigError(f"{folder} holds no recorded bars (no bars.parquet): not a session folder")
    equity = _table(folder, "equity")
    if equity is None:
        equity = pl.DataFrame(schema={"timestamp": bars.schema["timestamp"], "equity": pl.Float64})
    return SessionData(
        path=folder,
        bars=bars,
        signals=_table(folder, "signals"),
        context=_table(folder, "context"),
        orders=_frame(folder, "orders"),
        fills=_frame(folder, "fills"),
        equity=equity,
        summary=_json(folder / "summary.json"),
        command=_json(folder / "command.json"),
        external=_external_lines(folder / "session.log"),
        latency=_table(folder, "latency"),
    )


def _table(folder: Path, name: str) -> pl.DataFrame | None:
    return read_table(folder, name)


def _frame(folder: Path, name: str) -> pl.DataFrame:
    table = _table(folder, name)
    return pl.DataFrame() if table is None else table


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return value if isinstance(value, dict) else {}


def _external_lines(log: Path) -> list[str]:
    """What the log says about activity in the account that was not the strategy's (each message
    once: a foreign open order is reported at connect and again as a venue notice)."""
    if not log.is_file():
        return []
    seen: dict[str, None] = {}
    with log.open(errors="replace") as fh:
        for line in fh:
            if _EXTERNAL.search(line):
                message = line.rsplit(" | ", 1)[-1].strip()
                message = message.removeprefix("alpaca error foreign_order: ").removeprefix("alpaca: ")
                seen.setdefault(message, None)
    return list(seen)
