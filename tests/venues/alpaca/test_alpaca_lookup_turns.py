"""Two orders whose reads keep failing do not keep the ids behind them unasked.

Every caller of the gateway's ``lookup`` (the cancel checks, a warm restart's reads, the unknown
orders, the owed executions) passes its ids in the same order at each look-up. Before, two ids
whose reads kept ending in a 5xx at the front ended every look-up ('two in a row': an outage), so
the ids behind them were 'not asked' at every look-up: an order another client cancelled was
never reported. The gateway now asks the ids whose read failed after the others at the next
look-up (:class:`~ml4t_live.venues.alpaca.lookups.Turns`). Real alpaca-py against
SimulatedAlpaca, the trade stream silent (only the look-up reports).
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
from ml4t_live.venues.alpaca.lookups import Turns, Unread, look_up_each
from ml4t_live.venues.alpaca.rest import VenueRequestFailed
from tests.venues.alpaca.test_alpaca_lookup_each import resting

CIDS = ["t-0", "t-1", "t-2"]


def test_an_id_not_asked_behind_two_failing_reads_is_asked_at_the_next_look_up(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Failed before: t-2 'not asked' at the second look-up too, its cancel never reported."""
    ids = resting(sim, gw, CIDS)
    for cid in ("t-0", "t-1"):  # their reads answer 503 after every retry, at both look-ups
        inject(sim, "order_read_error", order_id=ids[cid], count=2 * ATTEMPTS)
    TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).cancel_order_by_id(ids["t-2"])
    with pytest.raises(LookupIncomplete) as first:
        gw.lookup(CIDS)
    assert "not asked" in first.value.unread["t-2"]  # (an outage as far as this look-up can tell)
    with pytest.raises(LookupIncomplete) as second:
        gw.lookup(CIDS)
    assert {cid: o.status for cid, o in second.value.found.items()} == {"t-2": "cancelled"}
    assert set(second.value.unread) == {"t-0", "t-1"}
    assert [e.client_order_id for e in of(OrderCancelled, drain(gw.events))] == ["t-2"]


def test_turns_ask_the_ids_that_failed_last_the_longest_failing_first() -> None:
    turns = Turns()
    assert turns.order(["a", "b", "c", "d"]) == ["a", "b", "c", "d"]  # (the caller's order)
    turns.failed("b")
    turns.failed("a")
    assert turns.order(["a", "b", "c", "d"]) == ["c", "d", "b", "a"]
    turns.failed("b")  # (failing again: now the latest)
    turns.read("a")  # (answered: no longer behind)
    assert turns.order(["a", "b", "c", "d"]) == ["a", "c", "d", "b"]


def test_ids_failing_apart_gathered_by_their_turns_are_no_outage_once_a_read_was_answered(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """t-0 and t-2 fail 503 at every look-up, t-4 at the first only (then another client cancels
    it); t-1 and t-3 answer. Their turns gather t-0, t-2, t-4 at the end of the second look-up.
    Failed before: 'Alpaca failed the reads of t-0, t-2 in a row' there, t-4 'not asked' (found
    only at a later look-up), though no two of them failed in a row in the caller's order."""
    cids = ["t-0", "t-1", "t-2", "t-3", "t-4"]
    ids = resting(sim, gw, cids)
    for cid in ("t-0", "t-2"):
        inject(sim, "order_read_error", order_id=ids[cid], count=100 * ATTEMPTS)
    inject(sim, "order_read_error", order_id=ids["t-4"], count=ATTEMPTS)  # (at the first look-up only)
    with pytest.raises(LookupIncomplete) as first:
        gw.lookup(cids)
    assert set(first.value.unread) == {"t-0", "t-2", "t-4"}
    TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).cancel_order_by_id(ids["t-4"])
    with pytest.raises(LookupIncomplete) as second:
        gw.lookup(cids)
    assert second.value.found["t-4"].status == "cancelled"
    assert set(second.value.unread) == {"t-0", "t-2"}
    assert not [why for why in second.value.unread.values() if "not asked" in why]


def _asked(turns: Turns, cids: list[str], failing: set[str]) -> list[str]:
    """The ids one look-up asks, in its order: each in ``failing`` answered 503 after the
    retries (an Unread, as the gateway's look-up of one raises), the others found absent."""
    asked: list[str] = []

    def one(cid: str) -> None:
        asked.append(cid)
        if cid in failing:
            raise Unread(f"look-up of {cid} failed", failure=VenueRequestFailed("lookup " + cid, 503, "", "unavailable"))

    try:
        look_up_each(cids, one, turns)
    except LookupIncomplete:
        pass
    return asked


def test_an_outage_of_reads_asks_every_failing_id_in_turn() -> None:
    """Four ids failing 503 at every look-up, none answered (two in a row end each look-up): each
    look-up asks the two whose reads failed the longest ago, so every id is asked every second
    look-up. Kills mutant Mc (Turns.failed not refreshing an id's mark: a, b first for good, c and
    d never asked again: an order among them that recovers never found), which passed every test."""
    turns, cids = Turns(), ["a", "b", "c", "d"]
    assert [_asked(turns, cids, set(cids)) for _ in range(4)] == [["a", "b"], ["c", "d"], ["a", "b"], ["c", "d"]]


def test_an_id_answered_again_takes_its_place_in_the_callers_order() -> None:
    """Kills mutant Me (no Turns.read after an answered read: an id that failed once stays behind
    the others for good), which passed every test."""
    turns, cids = Turns(), ["a", "b", "c"]
    assert _asked(turns, cids, {"a"}) == ["a", "b", "c"]
    assert _asked(turns, cids, set()) == ["b", "c", "a"]  # (a failed last: asked after the others)
    assert _asked(turns, cids, set()) == ["a", "b", "c"]  # (a answered: back in the caller's order)


def test_two_unmarked_ids_failing_in_a_row_after_an_answered_read_end_the_look_up() -> None:
    """An outage that starts after a read was answered, at ids whose reads never failed before:
    two in a row end the look-up, the ids behind them not asked. Kills mutant M5 (the excuse of a
    marked id's failure without ``cid in marked``: b excused, d asked too), which passed every test."""
    turns, cids = Turns(), ["a", "b", "c", "d", "e"]
    assert _asked(turns, cids, {"b", "c", "d", "e"}) == ["a", "b", "c"]


TEN = [f"t-{i}" for i in range(10)]


def test_an_outage_after_an_answered_read_asks_at_most_three_failing_reads(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Every id marked by five look-ups in a 503 outage, which then clears for one read and goes
    on: the look-up asks one marked id's read counting in no run (EXCUSED) and then two in a row
    end it, 1 + 3 x ATTEMPTS requests. Failed before (review rev-lookfix3 finding 2): every marked
    id asked with all its retries, 37 requests."""
    resting(sim, gw, TEN)
    inject(sim, "order_read_error", count=10 * ATTEMPTS)
    for _ in range(5):  # (each asks two: two in a row, the turns rotating; all ten end up marked)
        with pytest.raises(LookupIncomplete):
            gw.lookup(TEN)
    inject(sim, "order_read_error", skip=1, count=100 * ATTEMPTS)  # (one read answered, then the outage)
    sent = sim.state()["rest_requests"]
    with pytest.raises(LookupIncomplete) as caught:
        gw.lookup(TEN)
    assert sim.state()["rest_requests"] - sent == 1 + 3 * ATTEMPTS  # (literal: EXCUSED = 2 must fail)
    assert len(caught.value.found) == 1
    assert len([why for why in caught.value.unread.values() if "not asked" in why]) == 10 - 1 - 3
