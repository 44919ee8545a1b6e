"""Unreadable answers to the watcher's look-ups of a submit of unknown outcome (review rev-lookfix4
finding 1). Only the watcher's own walk that is answered with a body that cannot be read is
excused (no miss, nothing carried over: UnknownOutcomes.unread_answer); an unreadable answer to any
other look-up (the runtime's, a modify's, a cancel's) excuses nothing, so the watcher's next 404
still counts toward the loss of a submit that never reached Alpaca."""

from __future__ import annotations

import pytest
from alpaca_helpers import drain, inject, of
from ml4t.backtest import OrderSide, OrderType
from unknown_support import ATTEMPTS

from ml4t_live.errors import LookupIncomplete
from ml4t_live.events import OrderLost
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway


def _place_never_created(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body", accepted=False)  # t-n never created at Alpaca; its answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # its first look-up: 503
    gw.place(OrderRequest("t-n", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    assert gw.follows_unknown("t-n")


def test_an_unreadable_answer_to_another_look_up_does_not_excuse_the_watcher_s_404(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Before each watcher tick, a look-up that is not the watcher's (gw.lookup) reads t-n and
    gets a body that cannot be read; the watcher's own read then gets a 404. Failed before
    (probe P1): that look-up raised a one-shot flag the watcher's next miss consumed, so no 404
    ever counted (20 rounds: OrderLost [], misses 0)."""
    _place_never_created(sim, gw)
    seen: list = []
    for _ in range(gw.stream.unknown.limit):
        inject(sim, "lookup_error", count=ATTEMPTS, status=200)
        with pytest.raises(LookupIncomplete):
            gw.lookup(["t-n"])
        gw.stream.session.call(gw.stream.resolve_unconfirmed)  # the watcher's read: 404
        seen += drain(gw.events)
    assert [e.client_order_id for e in of(OrderLost, seen)] == ["t-n"]
    assert not gw.follows_unknown("t-n")

