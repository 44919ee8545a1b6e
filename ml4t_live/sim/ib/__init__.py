"""Simulated IB Gateway: the TWS API socket protocol on 127.0.0.1, replaying recorded bars and
filling orders like ml4t.backtest (see ``gateway.py``)."""

from .contracts import SymbolInfo
from .faults import KINDS as FAULT_KINDS
from .framing import SERVER_VERSION
from .gateway import AccountView, SimulatedIBGateway

__all__ = ["FAULT_KINDS", "SERVER_VERSION", "AccountView", "SimulatedIBGateway", "SymbolInfo"]
