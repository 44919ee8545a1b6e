"""Alpaca adapter, split by concern: config, rate_limit + rest (REST policy), session (the two
websockets on bridge loop threads), tracker (trade updates -> events, once), gateway (the
VenueGateway), bars + feed (AlpacaFeed), parsing (pure translation), broker (AlpacaBroker).

alpaca-py 0.44.x is the client; the simulated Alpaca (:mod:`ml4t_live.sim.alpaca`) is how it is
tested.
"""

import warnings

# alpaca-py 0.44 imports ``websockets.legacy``, which warns (DeprecationWarning) once on import;
# silence exactly that warning here so ``-W error`` runs (and the test suite) can import us.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="websockets.legacy is deprecated", category=DeprecationWarning
    )
    import alpaca.data.live
    import alpaca.trading  # noqa: F401

from .broker import AlpacaBroker
from .config import AlpacaConfig
from .feed import AlpacaFeed
from .gateway import AlpacaGateway

__all__ = ["AlpacaBroker", "AlpacaConfig", "AlpacaFeed", "AlpacaGateway"]
