"""A request the client-side budget cannot send in time: what ``lookup`` and ``snapshot`` raise.

The token bucket (:mod:`ml4t_live.venues.alpaca.rate_limit`) is configured at 1 request a minute,
so once it is empty no slot comes back within ``request_timeout`` and the request is not sent
(``RateLimitTimeout``). Every caller (the restart's look-ups in restart_reads, the unknown-order
and cancel checks, the reconciliation, the CLI) catches VenueError; what each method raises is
its documented one: ``lookup`` ConnectionFailed (no answer: unknown, never "absent"),
``snapshot`` ReconciliationError (the account state cannot be read). Through the real alpaca-py
client against SimulatedAlpaca.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alpaca_helpers import config_for

from ml4t_live.errors import ConnectionFailed, ReconciliationError
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


@pytest.fixture
def starved(sim: SimulatedAlpaca) -> Iterator[AlpacaGateway]:
    """A connected gateway whose request budget (1 a minute) is spent."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, max_requests_per_minute=1, rate_limit_burst=10),
                       is_ours=lambda c: c.startswith("t-"))  # fmt: skip
    gw.connect()
    while gw.bucket.try_acquire():
        pass
    yield gw
    gw.close()


def test_a_look_up_without_a_request_slot_raises_connection_failed(sim: SimulatedAlpaca, starved: AlpacaGateway) -> None:
    """Before, the RateLimitTimeout reached the caller as itself, not as the look-up's
    ConnectionFailed."""
    sent = sim.state()["rest_requests"]
    with pytest.raises(ConnectionFailed, match="look-up of t-x got no answer: no Alpaca request slot"):
        starved.lookup(["t-x"])
    assert sim.state()["rest_requests"] == sent  # nothing was sent


def test_a_snapshot_without_a_request_slot_raises_reconciliation_error(sim: SimulatedAlpaca, starved: AlpacaGateway) -> None:
    """Before, the RateLimitTimeout of the account read escaped the snapshot as itself."""
    sent = sim.state()["rest_requests"]
    with pytest.raises(ReconciliationError, match="cannot read the Alpaca account state: no Alpaca request slot"):
        starved.snapshot()
    assert sim.state()["rest_requests"] == sent
