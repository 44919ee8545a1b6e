"""A look-up whose read of one order is answered, after every retry, with a body alpaca-py cannot
read (a 200 that is not an order: the simulator's ``order_read_error`` with status 200) leaves
that order alone unread: an :class:`~ml4t_live.venues.alpaca.rest.UnreadableAnswer`, the venue
answered. Before, it was a VenueRequestFailed without an HTTP status, taken as 'Alpaca could not
be asked' (the ids after it 'not asked', at every look-up) and said 'got no answer' of a 200.
Two such reads in a row end the look-up as two 5xx do (each would wait its retries). Real
alpaca-py against SimulatedAlpaca, the trade stream silent (only the look-up reports).
"""

from __future__ import annotations

import pytest
from alpaca.trading.client import TradingClient
from alpaca_helpers import drain, inject, of
from unknown_support import ATTEMPTS

from ml4t_live.errors import LookupIncomplete
from ml4t_live.events import OrderCancelled
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from tests.venues.alpaca.test_alpaca_lookup_each import resting


def test_an_answer_that_cannot_be_read_leaves_only_its_order_unread(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """Failed before: t-1 'not asked (Alpaca could not be asked for t-0)', its cancel unreported."""
    ids = resting(sim, gw, ["t-0", "t-1"])
    inject(sim, "order_read_error", order_id=ids["t-0"], count=ATTEMPTS, status=200)
    TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).cancel_order_by_id(ids["t-1"])
    with pytest.raises(LookupIncomplete) as caught:
        gw.lookup(["t-0", "t-1"])
    assert set(caught.value.unread) == {"t-0"}
    assert "look-up of t-0 got an answer that cannot be read" in caught.value.unread["t-0"]
    assert "unreadable answer (ValidationError)" in caught.value.unread["t-0"]
    assert ") failed: unreadable answer (ValidationError)" in caught.value.unread["t-0"]  # (no 'HTTP None code -')
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-1": "cancelled"}
    assert [e.client_order_id for e in of(OrderCancelled, drain(gw.events))] == ["t-1"]


def test_two_answers_in_a_row_that_cannot_be_read_end_the_look_up(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    ids = resting(sim, gw, ["t-0", "t-1", "t-2"])
    for cid in ("t-0", "t-1"):
        inject(sim, "order_read_error", order_id=ids[cid], count=ATTEMPTS, status=200)
    with pytest.raises(LookupIncomplete) as caught:
        gw.lookup(["t-0", "t-1", "t-2"])
    assert caught.value.found == {}
    assert "t-2 not asked (Alpaca failed the reads of t-0, t-1 in a row)" in caught.value.unread["t-2"]


def test_a_read_that_gets_no_answer_is_no_unreadable_answer(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """A read by id answered with a TCP reset after every retry (the simulator's ``order_read_error``
    with ``reset``) got no answer: Alpaca could not be asked, the ids after it not asked. Kills
    mutant Mh (every failure after the retries, a reset too, raised as an UnreadableAnswer: t-0
    'got an answer that cannot be read' and t-1 asked), which passed every test."""
    ids = resting(sim, gw, ["t-0", "t-1"])
    inject(sim, "order_read_error", order_id=ids["t-0"], count=ATTEMPTS, reset=True)
    with pytest.raises(LookupIncomplete) as caught:
        gw.lookup(["t-0", "t-1"])
    assert "look-up of t-0 got no answer" in caught.value.unread["t-0"]
    assert ") failed: ConnectionError" in caught.value.unread["t-0"]  # (no 'HTTP None code -')
    assert caught.value.unread["t-1"] == "t-1 not asked (Alpaca could not be asked for t-0)"
    assert caught.value.found == {}
