"""Interactive Brokers through ib_async: config, session (async, loop thread), gateway and feed
(sync facades), parsing and bar_parsing (pure). See each module's docstring."""

from .broker import IBBroker
from .config import IBConfig
from .feed import IBFeed
from .gateway import IBGateway

__all__ = ["IBBroker", "IBConfig", "IBFeed", "IBGateway"]
