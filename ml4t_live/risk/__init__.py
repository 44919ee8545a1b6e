"""Pre-trade risk rails: limits checked before an order leaves, and the trading state.

* :mod:`.config`: :class:`RiskConfig`, the ``[risk]`` table (every key optional; safe defaults).
* :mod:`.limits`: :class:`PreTradeRisk`, the O(1) per-order checks -> :class:`Refusal` or None.
* :mod:`.limit_usage`: what ``status`` shows of those limits' use (``PreTradeRisk.usage`` calls it).
* :mod:`.exposure`: :class:`Exposure`, positions / prices / working orders kept incrementally.
* :mod:`.rate`: :class:`OrderRate`, the per-minute limit and its per-second burst cap.
* :mod:`.state`: :class:`TradingState`, ACTIVE / REDUCING / HALTED and what moves it.
* :mod:`.gate`: :class:`RiskGate`, all of the above behind the calls a broker makes (bar,
  check, track, equity, strategy outcome, operator), on the market clock.

Pure objects on the engine thread: no I/O, no threads. The shadow broker puts a gate in front
of the backtest broker's ``submit_order`` (:mod:`ml4t_live.shadow_rails`); a venue broker checks
in its journaled submit (:mod:`ml4t_live.venue_rails`) and persists the state in the journal
(:mod:`ml4t_live.rails`). What each limit does, the defaults and the operator's commands:
``docs/operations.md``, "Risk rails".
"""

from .config import RiskConfig, parse_duration
from .exposure import Exposure
from .gate import RiskGate
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
    "RiskGate",
    "TradingState",
    "Transition",
    "parse_duration",
]
