"""AlpacaBroker: the strategy-facing broker for Alpaca.

All strategy-facing logic (ml4t.backtest ``Order`` objects, client order ids, the fill barrier)
is the generic :class:`~ml4t_live.venue_broker.VenueBroker`; this class builds the
:class:`~ml4t_live.venues.alpaca.gateway.AlpacaGateway` it drives and tells the gateway which
client order ids are this strategy's (so their trade updates count and open ones are adopted).
"""

from __future__ import annotations

from typing import Any

from ...venue_broker import VenueBroker
from .config import AlpacaConfig
from .gateway import AlpacaGateway


class AlpacaBroker(VenueBroker):
    """``AlpacaBroker(AlpacaConfig())``: paper by default (keys from ``APCA_API_KEY_ID`` /
    ``APCA_API_SECRET_KEY``); ``AlpacaConfig(paper=False, allow_live=True, confirm_live=...)``
    makes it a live broker (the gateway still checks the account)."""

    def __init__(self, config: AlpacaConfig | None = None, **kw: Any) -> None:
        config = config or AlpacaConfig()
        kw.setdefault("mode", "live" if config.allow_live else "paper")
        gateway = AlpacaGateway(config)
        super().__init__(gateway, **kw)
        gateway.is_ours = self.ids.is_ours
        self.alpaca_config = config
