"""IBBroker: the strategy-facing broker for Interactive Brokers.

All strategy-facing logic (ml4t.backtest ``Order`` objects, client order ids, the fill barrier)
is the generic :class:`~ml4t_live.venue_broker.VenueBroker`; this class only builds the
:class:`~ml4t_live.venues.ib.gateway.IBGateway` it drives.
"""

from __future__ import annotations

from typing import Any

from ...venue_broker import VenueBroker
from .config import IBConfig
from .gateway import IBGateway


class IBBroker(VenueBroker):
    """``IBBroker(IBConfig(port=7497))``: paper by default; ``IBConfig(allow_live=True,
    confirm_live=...)`` makes it a live broker (the gateway still checks the account kind)."""

    def __init__(self, config: IBConfig | None = None, **kw: Any) -> None:
        config = config or IBConfig()
        kw.setdefault("mode", "live" if config.allow_live else "paper")
        super().__init__(IBGateway(config), **kw)
        self.ib_config = config
