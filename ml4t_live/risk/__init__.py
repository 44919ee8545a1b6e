"""Pre-trade risk rails: limits checked before an order leaves, and the trading state.

* :mod:`.config`: :class:`RiskConfig`, the ``[risk]`` table (every key optional; safe defaults).
* :mod:`.limits`: :class:`PreTradeRisk`, the O(1) per-order checks -> :class:`Refusal` or None.
* :mod:`.exposure`: :class:`Exposure`, positions / prices / working orders kept incrementally.
* :mod:`.rate`: :class:`OrderRate`, the per-minute limit and its per-second burst cap.
* :mod:`.state`: :class:`TradingState`, ACTIVE / REDUCING / HALTED and what moves it.

Pure objects on the engine thread: no I/O, no threads, no clocks read (the caller passes
``now``). The runtime persists the trading state in the strategy's journal.
"""

from .config import RiskConfig, parse_duration
from .exposure import Exposure
from .limits import PreTradeRisk, Refusal
from .rate import OrderRate
from .state import ACTIVE, HALTED, REDUCING, TradingState, Transition

__all__ = [
    "ACTIVE",
    "HALTED",
    "REDUCING",
    "Exposure",
    "OrderRate",
    "PreTradeRisk",
    "Refusal",
    "RiskConfig",
    "TradingState",
    "Transition",
    "parse_duration",
]
