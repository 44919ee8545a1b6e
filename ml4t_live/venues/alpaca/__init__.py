"""Alpaca adapter, split by concern:

config (AlpacaConfig, secret scrubbing) | rate_limit + rest (token bucket, timeouts, retry and
ambiguity policy) | session (the two websockets, each on its bridge loop thread) | tracker (trade
updates -> events, each execution once) | order_stream (the gateway's stream side: re-sync,
watchdog) | held (OCO pairs, bracket exits) | gateway (the VenueGateway) | bars + feed (AlpacaFeed)
| parsing (pure translation) | broker (AlpacaBroker) | entry (the CLI seam).

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
