"""Alpaca adapter: config, REST (rate limit + retry policy), streams (session), gateway, feed, parsing.

alpaca-py 0.44.x is the client; the simulated Alpaca (:mod:`ml4t_live.sim.alpaca`) is how it is
tested. Public names: :class:`AlpacaConfig`, :class:`AlpacaGateway`, :class:`AlpacaFeed`,
:class:`AlpacaBroker`.
"""

from .config import AlpacaConfig
from .gateway import AlpacaGateway

__all__ = ["AlpacaConfig", "AlpacaGateway"]
