"""A simulated Alpaca (trading REST, trade_updates and market-data websockets, historical bars).

See :class:`SimulatedAlpaca` for how to point the unmodified alpaca-py clients at it.
"""

from .server import SimulatedAlpaca, generate_keys, load_fault_plan

__all__ = ["SimulatedAlpaca", "generate_keys", "load_fault_plan"]
