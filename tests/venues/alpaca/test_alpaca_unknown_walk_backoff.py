"""The schedule of the walks of a submit of unknown outcome that the trade stream reported (it
exists: never lost; an OCO pair walked for its stop leg) while its walks keep failing: as the
look-ups of one whose report keeps raising (``UnknownOutcomes.spacing``), walked at every tick up
to ``limit`` failures, then every ``limit``-th tick, then from ``2 x limit`` failures at a spacing
doubling at each failure, at most ``MOST_TICKS_APART`` ticks; the caller's ALERT is asked for
once. Failed before: from the ``limit``-th failure on it was walked every ``limit``-th tick for
good (no growing back-off), and the ``limit``-th failure itself did not rest."""

from __future__ import annotations

from itertools import pairwise

from ml4t_live.venues.alpaca.unknown import MOST_TICKS_APART, UnknownOutcomes


def _walked_at(unknown: UnknownOutcomes, ticks: int) -> tuple[list[int], list[int]]:
    """The ticks (from 1) at which the entry t-tp is due and its walk fails; those whose failure
    asks for the ALERT."""
    walked, alerts = [], []
    for tick in range(1, ticks + 1):
        if [item for item in unknown.pending() if item.client_order_id == "t-tp"]:
            walked.append(tick)
            if unknown.walk_failed("t-tp"):
                alerts.append(tick)
    return walked, alerts


def test_failed_walks_back_off_doubling_up_to_the_cap_with_one_alert():
    unknown = UnknownOutcomes(limit=3)
    unknown.add("t-tp", "a cut answer", also="t-sl")
    walked, alerts = _walked_at(unknown, 300)
    gaps = [b - a for a, b in pairwise(walked)]
    assert walked[:3] == [1, 2, 3] and alerts == [3]
    assert gaps[:10] == [1, 1, 3, 3, 3, 6, 12, 24, 48, 64], walked
    assert set(gaps[9:]) == {MOST_TICKS_APART}, walked
    assert "t-tp" in unknown and unknown.claim("t-tp") is not None  # never forgotten


def test_the_cap_is_the_limit_when_that_is_more():
    unknown = UnknownOutcomes(limit=100)
    unknown.add("t-tp", "a cut answer", also="t-sl")
    walked, alerts = _walked_at(unknown, 1000)
    gaps = [b - a for a, b in pairwise(walked)]
    assert alerts == [100] and gaps[:99] == [1] * 99 and set(gaps[99:]) == {100}, gaps


def test_an_update_of_an_oco_order_ends_the_rest_of_the_pairs_it_may_be_of():
    """``wake_pairs``: an update of ours (the take-profit's id) wakes that pair only; one not ours
    (a stop leg under Alpaca's id) wakes every resting pair of its symbol, none of another; a pair
    is woken once while its walk is under way (a storm of updates walks it once, not at each;
    before, each woke it again), again once that walk ended; a pair whose walks never failed, or an
    entry that is no pair, is left to its schedule. Woken, the pair is due at once."""
    unknown = UnknownOutcomes(limit=3)
    for cid in ("t-tp", "t-tp2"):
        unknown.add(cid, "a cut answer", also=cid.replace("tp", "sl"), symbol="AAPL")
    unknown.add("t-fresh", "a cut answer", also="t-sl3")
    unknown.add("t-plain", "a cut answer")
    for _ in range(3):  # t-tp, t-tp2: walks failing to the ALERT, resting 2 ticks from the third
        for item in unknown.pending():
            if item.client_order_id in ("t-tp", "t-tp2"):
                unknown.walk_failed(item.client_order_id)
    unknown.walk_failed("t-plain")
    assert [i.client_order_id for i in unknown.wake_pairs("t-tp")] == ["t-tp"]
    assert "t-tp" in [i.client_order_id for i in unknown.pending()]  # due at once
    assert unknown.wake_pairs("t-tp") == []  # (its walk not ended yet)
    unknown.walk_ended(["t-tp"])  # (walked: found claimed by another, say)
    assert unknown.wake_pairs(None, "MSFT") == []  # (an OCO order not ours of another symbol)
    assert sorted(i.client_order_id for i in unknown.wake_pairs(None, "AAPL")) == ["t-tp", "t-tp2"]
    assert unknown.wake_pairs(None, "AAPL") == [] and unknown.wake_pairs("t-tp") == []  # walks under way
    for cid in ("t-tp", "t-tp2"):
        unknown.walk_failed(cid)  # (the woken walks failed: resting again)
    assert not {"t-tp", "t-tp2"} & {i.client_order_id for i in unknown.pending()}  # a new tick
    assert sorted(i.client_order_id for i in unknown.wake_pairs(None, "AAPL")) == ["t-tp", "t-tp2"]
    assert unknown.wake_pairs("t-other") == []


def test_the_stop_legs_update_after_a_woken_walk_that_failed_wakes_the_pair_again():
    """Review rev-awayfix2 (p_woken.py): a resting pair woken by another client's OCO update of its
    symbol, whose walk fails (run before its stop leg filled, or a 503), rests again; its own stop
    leg's fill update (under Alpaca's id) in the same tick must wake it again (the woken walk has
    ended), not leave it to a rest of many ticks. Failed before (woken cleared only at the next
    tick): the second wake returned [] and the pair was walked again only about 48 ticks later."""
    unknown = UnknownOutcomes(limit=3)
    unknown.add("t-tp", "a cut answer", also="t-sl", symbol="AAPL")
    for _ in range(8):  # walks failing for a while (an outage): backed off
        unknown.walk_failed("t-tp")
    assert unknown.spacing(8) > 1
    unknown.pending()  # a tick
    assert [i.client_order_id for i in unknown.wake_pairs(None, "AAPL")] == ["t-tp"]  # another's OCO update
    unknown.walk_failed("t-tp")  # that woken walk failed: resting again
    assert [i.client_order_id for i in unknown.wake_pairs(None, "AAPL")] == ["t-tp"]  # our stop leg's fill
    assert "t-tp" in [i.client_order_id for i in unknown.pending()]  # due at once
