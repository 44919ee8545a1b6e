"""The backtest side of parity: the session's strategy through ``ml4t.backtest.Engine`` on the
session's own recorded bars, with the strategy, parameters and account it ran with (its
``command.json``; the cash the live run started from when none was given)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
from loguru import logger

from ..errors import ConfigError
from ..session import OPTIONAL_BAR_COLUMNS, fill_row, order_row
from .session_files import SessionData
from .warmup import WarmupGate, warmup_end

_log = logger.bind(component="report")


@dataclass
class BacktestRun:
    """What ml4t.backtest did with the same bars: orders and fills as session-file rows."""

    orders: pl.DataFrame
    fills: pl.DataFrame
    equity: pl.DataFrame
    final_value: float
    initial_cash: float


def strategy_options(session: SessionData, strategy: str | None = None,
                     params: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The recorded strategy target, parameters and account options (``strategy`` overrides)."""
    command = session.command
    target = strategy or command.get("strategy")
    if not target:
        raise ConfigError(f"{session.path} does not record its strategy (no command.json, or one "
                          "without 'strategy'): name it, e.g. ml4t-live parity SESSION "
                          "--strategy path/to/file.py:ClassName")  # fmt: skip
    return {
        "strategy": target,
        "params": {**(command.get("params") or {}), **(params or {})},
        "preset": command.get("preset"),
        "initial_cash": command.get("initial_cash") or session.initial_cash or None,
        "backtest": command.get("backtest") or {},
    }


def run_backtest(session: SessionData, strategy: str | None = None,
                 params: dict[str, Any] | None = None) -> BacktestRun:  # fmt: skip
    """Re-run the session's strategy through ``ml4t.backtest.Engine`` on its recorded bars."""
    from ml4t.backtest import DataFeed, Engine

    from ..cli import options as opt

    o = strategy_options(session, strategy, params)
    cls = opt.load_strategy_class(o["strategy"])
    instance = opt.build_strategy(cls, o["params"])
    config = opt.build_config(o["preset"], o["initial_cash"], o["backtest"])
    declared = {f"{c}_col": c for c in OPTIONAL_BAR_COLUMNS if c in session.bars.columns}
    feed = DataFeed(prices_df=session.bars, signals_df=_nonempty(session.signals),
                    context_df=_nonempty(session.context), **declared)  # fmt: skip
    engine = Engine(feed, instance, config)
    end = warmup_end(session)
    gate = WarmupGate(engine.broker, instance, end) if end is not None else None
    _log.info("backtest re-run of {} on {} recorded bar rows (warm-up before {})", cls.__name__,
              session.bars.height, end or "none")  # fmt: skip
    result = engine.run()
    refused = gate.refused if gate is not None else []
    orders = [order_row(o) for o in [*refused, *engine.broker.orders]]
    fills = [fill_row(f) for f in result.fills]
    ts_dtype = session.bars.schema["timestamp"]
    equity = pl.DataFrame(
        {"timestamp": [t for t, _ in result.equity_curve], "equity": [float(v) for _, v in result.equity_curve]},
        schema={"timestamp": ts_dtype, "equity": pl.Float64}, strict=False,
    )  # fmt: skip
    final = float(result.equity_curve[-1][1]) if result.equity_curve else float(config.initial_cash)
    return BacktestRun(
        orders=pl.DataFrame(orders, infer_schema_length=None) if orders else pl.DataFrame(),
        fills=pl.DataFrame(fills, infer_schema_length=None) if fills else pl.DataFrame(),
        equity=equity,
        final_value=final,
        initial_cash=float(config.initial_cash),
    )


def _nonempty(frame: pl.DataFrame | None) -> pl.DataFrame | None:
    return frame if frame is not None and frame.height else None
