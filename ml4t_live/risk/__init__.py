"""Pre-trade risk rails: limits checked before an order leaves, and the trading state.

* :mod:`.config`: :class:`RiskConfig`, the ``[risk]`` table (every key optional; safe defaults).
* :mod:`.limits`: :class:`PreTradeRisk`, the O(1) per-order checks -> :class:`Refusal` or None.
* :mod:`.exposure`: :class:`Exposure`, positions / prices / working orders kept incrementally.
* :mod:`.rate`: :class:`OrderRate`, the per-minute limit and its per-second burst cap.
* :mod:`.state`: :class:`TradingState`, ACTIVE / REDUCING / HALTED and what moves it.

Pure objects on the engine thread: no I/O, no threads, no clocks read (the caller passes
``now``). The runtime persists the trading state in the strategy's journal.

Not wired in yet (issue 10). The wiring this module was built for:

* the ``[risk]`` TOML table -> :meth:`RiskConfig.from_table` (exit 2 on a bad key) -> the broker;
* venue runs: in ``order_commands._place``, after the catch-up and HALTED refusals, call
  :meth:`PreTradeRisk.check` (``now=time.time()``, ``open_orders=len(book.open)``, the last
  marked equity); a :class:`Refusal` is ``(code, reason)`` like the others, journaled with the
  command; ``update_order`` uses ``check(..., replacing=order_id)``; flatten orders under HALTED
  bypass the check;
* feed :class:`Exposure` from the book: ``set_position`` on fills, ``set_price(asset, close,
  as_of=bar end)`` each bar, ``order_working`` / ``order_filled`` / ``order_closed`` from the
  order events, ``rebuild()`` after connect and after a warm restart; bracket legs pass
  ``parent_quantity`` only when their entry was not refused;
* shadow runs: the same check in front of the backtest broker's ``submit_order``;
* :class:`TradingState`: ``observe_equity`` after each bar, ``strategy_error`` / ``strategy_ok``
  from the engine's error policy, ``operator`` from ``ml4t-live halt/resume``; REDUCING is kept
  in the journal's meta next to HALTED (``ownership.Ownership`` knows ACTIVE/HALTED today).
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
