"""A resting OCO exit pair of unknown outcome (test_alpaca_unknown_oco_walk_woken.py's set-up) is
not woken by the trade stream's update of an order that is neither ours nor an OCO order: only an
update that may be of the pair (its take-profit's, or an OCO order's not ours yet of its symbol)
ends its rest, at most once a tick. Before (mutant M3 of review rev-awayfix, any foreign update
waking) nothing failed; a wake walks with blocking REST on the stream's loop, so a storm of other
orders' updates held that loop for every resting pair at each update.

Real alpaca-py against SimulatedAlpaca; a plain limit order placed by another client
(``x-other``, not ours) is the foreign update; the stream's handling of it is awaited through its
DEBUG line, then the pair's rest is read from the watcher's tick (``pending``). Under M3 the
woken walk runs first on the loop (the look-up's faults spent: it finds the pair and settles it,
so the pair is no longer followed as unknown) or the pair is due at once: either assertion fails.
"""

from __future__ import annotations

import threading

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce
from alpaca.trading.requests import LimitOrderRequest
from alpaca_helpers import inject
from loguru import logger
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def test_a_foreign_update_of_an_order_that_is_no_oco_does_not_wake_a_resting_pair(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    unknown_oco(sim, gw, silent=False, stop=150.0)
    limit = gw.config.unknown_order_lookups
    inject(sim, "lookup_error", count=ATTEMPTS * limit)
    for _ in range(limit):  # walks failing up to the ALERT: the pair rests limit - 1 ticks from it
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
    handled = threading.Event()
    sink = logger.add(lambda m: handled.set() if "foreign order x-other" in m.record["message"] else None,
                      level="DEBUG")  # fmt: skip
    try:
        raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
        raw.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side=AlpacaSide.BUY, limit_price=1.0,
                                           time_in_force=TimeInForce.DAY, client_order_id="x-other"))  # fmt: skip
        assert handled.wait(10.0), "the stream never reported x-other"
    finally:
        logger.remove(sink)
    # (the update's handler ran to its end on the stream's loop: it has no await after the line)
    due = gw.stream.session.call(lambda: [i.client_order_id for i in gw.stream.unknown.pending()])
    assert "t-tp" not in due, "a foreign update of an order that is no OCO woke the resting pair"
    assert gw.follows_unknown("t-tp")
