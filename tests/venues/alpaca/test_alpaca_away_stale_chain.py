"""A walk of a replace chain at a warm restart that reads an order in the middle of the chain as
before its replace (``new`` / ``partially_filled``, no ``replaced_by``: the simulator's
``stale_listing``, a listing of the symbol's orders lagging the replace): the chain is "not read
yet", a VenueError the broker reads again within its bounded reads (``AWAY_READS``,
:mod:`ml4t_live.restart_reads`), never ``Unreadable`` (``permanent``: given up at once with the
ALERT). Only an order that ended otherwise than ``replaced`` is Unreadable (:func:`_no_successor`,
on recorded payloads).

Real alpaca-py against the simulated Alpaca (modify_support.py's rig): t-p of 20 filled 3, was
re-priced three times (t-p.r1 and t-p.r2 filled 3 each, t-p.r3 listed working); a second gateway
(the restart) reads the chain. The walk finds the replacements in the symbol's order listing
(:class:`~ml4t_live.venues.alpaca.listing.SymbolOrders`), which ``stale_listing`` answers lagging.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.models import Order
from alpaca_helpers import config_for, drain
from modify_support import REQUEST, Rig, rig
from runtime_support import filling_sim, log_lines, trading_client

from ml4t_live.errors import VenueError
from ml4t_live.venues.alpaca.away import Unreadable, _no_successor
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

RECORDED = json.loads((Path(__file__).parents[2] / "resources" / "alpaca" / "payloads.json").read_text())


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
    """t-p.r1 listed ``partially_filled`` with no ``replaced_by`` (t-p.r3, listed, replaces
    t-p.r2). Failed before 35d69b4: Unreadable, ``permanent``: the broker gave the read up at once
    with the ALERT (what t-p.r3 filled while away never reached the book), though the next read
    shows t-p.r1 ``replaced``."""
    with rig(max_request_attempts=1) as r:
        _four_order_chain(r)
        with restarted(r) as gw:
            gw.holds("t-p", 9.0, 150.0)
            r.sim.inject("stale_listing")  # the walk's listing of the replacements
            with pytest.raises(VenueError) as unread:
                gw.executions_since("t-p", 9.0, 150.0)
            assert not getattr(unread.value, "permanent", False), unread.value
            assert "a read lagging its replace; read again later" in str(unread.value), unread.value
            assert r.venue_id("t-p.r1") in str(unread.value) and "t-p" in gw.away.unread
            got = gw.executions_since("t-p", 9.0, 150.0)  # the next reconciliation: a fresh read
            assert [(e.quantity, e.cumulative_quantity) for e in got] == [(3.0, 12.0)]
            assert "t-p" not in gw.away.unread
            drain(gw.events)


def _recorded(cid: str, **changed: Any) -> Order:
    """The order ``cid`` as Alpaca's listing answered it in the recording, with ``changed``."""
    (body,) = [o for o in RECORDED["rest"]["orders_all"] if o["client_order_id"] == cid]
    return Order(**{**body, **changed})


_LAST = _recorded("rec-lim.r1")  # (the listed order the walk leads to)


@pytest.mark.parametrize("order", [
    _recorded("rec-part"), _recorded("rec-cxl"), _recorded("rec-cxl", status="expired"), _recorded("rec-rej"),
], ids=["filled", "canceled", "expired", "rejected"])  # fmt: skip
def test_an_order_that_ended_otherwise_than_replaced_is_unreadable_for_good(order: Order):
    """No later read shows an ended order ``replaced``: the chain ends there, Unreadable
    (``permanent``), given up at once."""
    with pytest.raises(Unreadable) as ended:
        _no_successor("rec-lim", order, _LAST)
    assert ended.value.permanent, ended.value
    status = order.status.value
    assert f"ended {status}, not replaced" in str(ended.value) and str(_LAST.id) in str(ended.value)


@pytest.mark.parametrize("order", [
    _recorded("rec-lim", replaced_by=None), _recorded("rec-lim", status="new", replaced_by=None),
    _recorded("rec-lim", status="partially_filled", replaced_by=None, filled_qty="1"),
], ids=["replaced", "new", "partially_filled"])  # fmt: skip
def test_an_order_replaced_or_working_with_no_replacement_is_read_again(order: Order):
    """``replaced`` without ``replaced_by`` (named a moment later) or read still working (a read
    lagging its replace): read again later, not permanent."""
    with pytest.raises(VenueError) as unread:
        _no_successor("rec-lim", order, _LAST)
    assert not isinstance(unread.value, Unreadable) and not getattr(unread.value, "permanent", False)
    assert "read again later" in str(unread.value), unread.value


def test_a_stale_read_in_the_walk_up_to_the_current_order_waits_for_the_next_end_of_bar():
    """The restart's check of the chain walks it again up to the order's current Alpaca id (two
    modifies made since the listing: t-p.r1 listed, t-p.r3 current); that walk's listing shows
    t-p.r1 as before its replace. Failed before 35d69b4: Unreadable, the check given up at once with the ALERT (the
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
            sim.inject("stale_listing")  # the check's walk's listing (the listed one's walk, t-p -> t-p.r1, reads none)
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
