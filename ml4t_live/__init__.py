"""ml4t_live: run ml4t.backtest strategies unchanged in shadow, paper and live trading.

Public API::

    from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
    result = LiveEngine(MyStrategy(), ShadowBroker(config), ReplayFeed(prices_df)).run()
"""

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

__all__ = [
    "BridgeClosed",
    "BridgeError",
    "BridgeTimeout",
    "ConfigError",
    "ConnectionFailed",
    "FeedStalled",
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
    "read_session_bars",
]
