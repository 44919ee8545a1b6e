"""A walk of a replace chain at a warm restart that reads an order in the middle of the chain as
before its replace (``new`` / ``partially_filled``, no ``replaced_by``: the ``stale_replaced_read``
fault, a REST read lagging the replace): the chain is "not read yet", a VenueError the broker
reads again within its bounded reads (``AWAY_READS``, :mod:`ml4t_live.restart_reads`), never
``Unreadable`` (``permanent``: given up at once with the ALERT).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20 filled 3, was
re-priced three times (t-p.r1 and t-p.r2 filled 3 each, t-p.r3 listed working); a second gateway
(the restart) reads the chain. The walk finds a replacement in the symbol's order listing, which
the simulator never serves stale, and reads it by id only when the listing gets no answer: the
test's :class:`NoListing` answers the listing as a RestCaller answers a request that got no answer
(``VenueRequestFailed``), every other request goes to the simulated Alpaca.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar
from uuid import uuid4

import pytest
from alpaca_helpers import config_for, drain
from modify_support import REQUEST, Rig, rig
from runtime_support import filling_sim, log_lines, trading_client

from ml4t_live.errors import VenueError
from ml4t_live.venues.alpaca.away import Unreadable
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.rest import VenueRequestFailed

T = TypeVar("T")


class NoListing:
    """The gateway's RestCaller ``rest``, with every listing of the symbol's orders (the walk's
    :class:`~ml4t_live.venues.alpaca.listing.SymbolOrders` page) answered as a 503 that outlasted
    the retries: the walk reads the replacements by id (``GET /v2/orders/{id}``)."""

    def __init__(self, rest: Any) -> None:
        self.rest, self.refused = rest, 0

    def __call__(self, what: str, fn: Callable[[], T], *, repeatable: bool) -> T:
        if "(replacements, page" in what:
            self.refused += 1
            raise VenueRequestFailed(what, 503, "", "service unavailable")
        return self.rest(what, fn, repeatable=repeatable)


def _gateway(sim: Any, **config: Any) -> AlpacaGateway:
    return AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))


@contextmanager
def restarted(r: Rig) -> Iterator[AlpacaGateway]:
    """A second gateway (a fresh tracker) on ``r``'s venue, connected, its snapshot taken."""
    r.gw.close()
    gw = _gateway(r.sim, max_request_attempts=1)
    try:
        gw.connect()
        yield gw
    finally:
        gw.close()


def _four_order_chain(r: Rig) -> None:
    """t-p fills 3 and is replaced by t-p.r1, which fills 3 and is replaced by t-p.r2, which fills 3
    and is replaced by t-p.r3; t-p.r3 fills 3 while no gateway runs."""
    r.gw.place(REQUEST)
    for n, price in enumerate((149.5, 149.0, 148.5), start=1):
        r.bar(filled_to=3 * n)
        r.gw.modify(replace(REQUEST, limit_price=price, filled_quantity=3 * n))
    r.gw.close()
    r.bar()
    orders = r.orders()
    assert [orders[f"t-p.r{n}"][0] for n in (1, 2, 3)] == ["replaced", "replaced", "partially_filled"], orders


def test_a_stale_read_in_the_middle_of_the_chain_is_read_again_not_given_up():
    """Failed before: t-p.r1 read ``partially_filled`` with no ``replaced_by`` (t-p.r3, listed, replaces t-p.r2) raised Unreadable,
    ``permanent``: the broker gave the read up at once with the ALERT (what t-p.r3 filled while
    away never reached the book), though the next read shows t-p.r1 ``replaced``."""
    with rig(max_request_attempts=1) as r:
        _four_order_chain(r)
        with restarted(r) as gw:
            gw.away.rest = listing = NoListing(gw.away.rest)
            gw.holds("t-p", 9.0, 150.0)
            r.sim.inject("stale_replaced_read")  # the walk's GET of t-p.r1
            with pytest.raises(VenueError) as unread:
                gw.executions_since("t-p", 9.0, 150.0)
            assert not getattr(unread.value, "permanent", False), unread.value
            assert "read again later" in str(unread.value) and "t-p" in str(unread.value)
            assert listing.refused == 1 and "t-p" in gw.away.unread
            got = gw.executions_since("t-p", 9.0, 150.0)  # the next reconciliation: a fresh read
            assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 12.0)]
            assert "t-p" not in gw.away.unread
            drain(gw.events)


def test_a_walk_that_meets_an_order_ended_otherwise_than_replaced_is_unreadable_for_good():
    """The view kept of our order does not belong to the chain (another Alpaca id, replacing an
    order not on it): the walk from t-p reaches t-p.r3, the chain's end. Open, it may be a read
    lagging a replace (read again later); ended (another client of the account cancelled it), no
    later read leads on from it: Unreadable (``permanent``), given up at once."""
    with rig(max_request_attempts=1) as r:
        _four_order_chain(r)
        with restarted(r) as gw:
            listed = gw.away.listed["t-p"]
            gw.away.listed["t-p"] = listed.model_copy(update={"id": uuid4(), "replaces": uuid4()})
            with pytest.raises(VenueError) as open_end:
                gw.executions_since("t-p", 9.0, 150.0)
            assert not getattr(open_end.value, "permanent", False), open_end.value
            r.raw.cancel_order_by_id(r.venue_id("t-p.r3"))
            with pytest.raises(Unreadable) as ended:
                gw.executions_since("t-p", 9.0, 150.0)
            assert ended.value.permanent and "canceled" in str(ended.value), ended.value
            drain(gw.events)


def test_a_stale_read_in_the_walk_up_to_the_current_order_waits_for_the_next_end_of_bar():
    """The restart's check of the chain walks it again up to the order's current Alpaca id (two
    modifies made since the listing: t-p.r1 listed, t-p.r3 current); that walk reads t-p.r1 as
    before its replace. Failed before: Unreadable, the check given up at once with the ALERT (the
    ask dropped, t-p.r3 left asking 17 where 14 were left); now it waits (a WARNING) and the walk
    at the next end of bar checks the chain against the 20 asked: t-p.r3 cut down to 14."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first, second = _gateway(sim), _gateway(sim)
    try:
        with log_lines(lines):
            first.connect()
            first.place(REQUEST)
            raw.get_clock()  # t-p fills 3
            first.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))  # r1 asks 17
            first.close()
            raw.get_clock()  # while away: r1 fills 3
            second.connect()
            second.modify(replace(REQUEST, limit_price=148.5, filled_quantity=3))  # r2
            second.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))  # r3
            second.asked(replace(REQUEST, limit_price=148.0, filled_quantity=3))
            second.away.rest = NoListing(second.away.rest)
            sim.inject("stale_replaced_read", count=2)  # the reads of r1 (the listed one's, then the check's)
            second.executions_since("t-p", 3.0, 150.0)
            assert "t-p" in second.away.rewalks, lines
            second.away.walk_again(second._require())
            assert not second.away.rewalks, lines
    finally:
        second.close()
        first.close()
        sim.close()
    waits = [line for line in lines if "its check against what was last asked waits" in line]
    assert len(waits) == 1 and waits[0].startswith("WARNING") and "lagging" in waits[0], lines
    assert any("checked against the 20 last asked" in line for line in lines), lines
    assert any("cut down to the 14 left" in line for line in lines), lines  # (r2, r3 asked 17 each)
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines
