"""A submit of unknown outcome whose look-up (or second attempt) gets no request slot.

The client-side budget (1 request a minute) leaves exactly the slots the test names, so the
request after them is not sent (``RateLimitTimeout``, a VenueError). An order Alpaca may hold is
never refused for that: the submit is handed to the watcher of unknown outcomes (``place()``
returns, ``follows_unknown`` is true). Before, the RateLimitTimeout escaped ``place()`` and the
runtime journaled REJECTED an order working at Alpaca, which nothing looked up again. Through the
real alpaca-py client against SimulatedAlpaca.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alpaca_helpers import config_for, drain
from ml4t.backtest import OrderSide

from ml4t_live.events import VenueErrorReported
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

BURST = 20


@pytest.fixture
def gw(connect_gateway: Callable[..., AlpacaGateway]) -> AlpacaGateway:
    return connect_gateway(max_requests_per_minute=1, rate_limit_burst=BURST, request_timeout=1.0)


def _leave_slots(gw: AlpacaGateway, sim: SimulatedAlpaca, n: int, others: int = 0) -> None:
    """Spend the budget down to ``n`` request slots (the venue counted ``others`` requests that
    were not the gateway's)."""
    for _ in range(BURST - (sim.state()["rest_requests"] - others) - n):
        assert gw.bucket.try_acquire()


def _unconfirmed(gw: AlpacaGateway, cid: str) -> VenueErrorReported:
    reports = [e for e in drain(gw.events) if isinstance(e, VenueErrorReported) and e.client_order_id == cid]
    assert [r.code for r in reports] == ["submit_unconfirmed"], reports
    return reports[0]


def test_an_ambiguous_submit_whose_look_up_gets_no_slot_is_of_unknown_outcome(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    _leave_slots(gw, sim, 1)  # the POST's
    sim.inject("accept_then_504")  # Alpaca takes it, the answer is lost
    gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 10))  # before: raised RateLimitTimeout
    assert [o["client_order_id"] for o in sim.orders()] == ["t-a"]
    assert gw.follows_unknown("t-a")
    assert "no Alpaca request slot" in _unconfirmed(gw, "t-a").message


def test_a_duplicate_id_whose_look_up_gets_no_slot_is_of_unknown_outcome(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    before = sim.state()["rest_requests"]
    other = AlpacaGateway(config_for(sim), is_ours=lambda c: c.startswith("t-"))  # an earlier run
    other.connect()
    try:
        other.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 10))
    finally:
        other.close()
    _leave_slots(gw, sim, 1, others=sim.state()["rest_requests"] - before)
    gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 10))  # 422: ours is there; its look-up not sent
    assert gw.follows_unknown("t-a")
    assert "no Alpaca request slot" in _unconfirmed(gw, "t-a").message


def test_a_second_attempt_without_a_slot_leaves_the_first_of_unknown_outcome(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    _leave_slots(gw, sim, 2)  # the POST's and the look-up's (404)
    sim.inject("submit_error", accepted=False)  # a 500, nothing created: the look-up says 404
    gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 10))  # before: raised RateLimitTimeout
    assert gw.follows_unknown("t-a")
    assert "the second attempt was not sent" in _unconfirmed(gw, "t-a").message
