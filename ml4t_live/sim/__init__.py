"""Simulated venues: replay recorded bars as real-time data and fill like ml4t.backtest.

Threading rule: nothing here is thread-safe; each simulated venue runs its core objects
(:class:`~ml4t_live.sim.matching.SimExchange`, :class:`~ml4t_live.sim.clock.VirtualClock`) on its
one venue loop.

The venue-agnostic core shared by ``sim/ib`` (TWS wire protocol) and ``sim/alpaca`` (REST and
websockets):

* :mod:`.bars` - load recorded bars (DataFeed's long format) and group them per timestamp.
* :mod:`.clock` - the virtual clock that paces the replay (speed mode or step mode).
* :mod:`.matching` - ``SimExchange``: ml4t.backtest's own Broker driven like ``Engine._run_once``,
  with its parts: :mod:`.orders` (specs, events, validation), :mod:`.backtest_steps` (the only
  calls into the Broker's private steps), :mod:`.executions` (execution reports, split fills),
  :mod:`.order_endings` (how orders end: OCA groups, held bracket children),
  :mod:`.time_in_force`, :mod:`.tracking`, :mod:`.account_views`.
* :mod:`.market_hours` - NYSE sessions (holidays, early closes) for clocks and calendars.
* :mod:`.faults` - scripted fault plans (TOML) that the venue servers interpret.

Names are imported lazily so importing a venue's pure modules stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SimBar": "bars",
    "bar_groups": "bars",
    "load_bars": "bars",
    "VirtualClock": "clock",
    "Fault": "faults",
    "FaultPlan": "faults",
    "load_fault_plan": "faults",
    "SimExchange": "matching",
    "SimExecution": "matching",
    "SimOrder": "matching",
    "SimOrderSpec": "matching",
    "UnknownOrder": "matching",
    "OrderNotCancelable": "matching",
    "OrderNotReplaceable": "matching",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
