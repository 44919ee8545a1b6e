"""ml4t_live: run ml4t.backtest strategies unchanged in shadow, paper and live trading.

Public API::

    from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
    result = LiveEngine(MyStrategy(), ShadowBroker(config), ReplayFeed(prices_df)).run()

    from ml4t_live import IBBroker, IBConfig, IBFeed                # Interactive Brokers (ib_async)
    from ml4t_live import AlpacaBroker, AlpacaConfig, AlpacaFeed    # Alpaca (alpaca-py)

The venue classes are imported on first use, so a shadow run never loads ib_async or alpaca-py.

The library logs through loguru and is silent until the application asks:
``from loguru import logger; logger.enable("ml4t_live")`` (the ``ml4t-live`` command does).
"""

from importlib import import_module
from typing import Any

from loguru import logger as _logger

_logger.disable("ml4t_live")  # a library is silent until the application enables it

from .engine import LiveEngine, Progress
from .errors import (
    BridgeClosed,
    BridgeError,
    BridgeTimeout,
    ConfigError,
    ConnectionFailed,
    FeedStalled,
    LiveTradingRefused,
    Ml4tLiveError,
    ReconciliationError,
    StrategyError,
    VenueError,
)
from .feeds.replay import ReplayFeed
from .results import LiveResult
from .session import SessionWriter, read_session_bars
from .shadow import ShadowBroker

_VENUE_EXPORTS = {
    "IBBroker": "ml4t_live.venues.ib",
    "IBConfig": "ml4t_live.venues.ib",
    "IBFeed": "ml4t_live.venues.ib",
    "AlpacaBroker": "ml4t_live.venues.alpaca",
    "AlpacaConfig": "ml4t_live.venues.alpaca",
    "AlpacaFeed": "ml4t_live.venues.alpaca",
}
#: ``ml4t_live.report(session_dir)`` / ``ml4t_live.parity(session_dir)``: plotly loads on first use
_REPORT_EXPORTS = {"report": "ml4t_live.reports", "parity": "ml4t_live.reports"}


def __getattr__(name: str) -> Any:
    module = _VENUE_EXPORTS.get(name) or _REPORT_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml4t_live' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "AlpacaBroker",
    "AlpacaConfig",
    "AlpacaFeed",
    "BridgeClosed",
    "BridgeError",
    "BridgeTimeout",
    "ConfigError",
    "ConnectionFailed",
    "FeedStalled",
    "IBBroker",
    "IBConfig",
    "IBFeed",
    "LiveEngine",
    "LiveResult",
    "LiveTradingRefused",
    "Ml4tLiveError",
    "Progress",
    "ReconciliationError",
    "ReplayFeed",
    "SessionWriter",
    "ShadowBroker",
    "StrategyError",
    "VenueError",
    "parity",
    "read_session_bars",
    "report",
]
