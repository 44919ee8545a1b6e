"""A modify's replace check left pending when the runtime stops is made again at the warm restart.

The check that cuts a replacement down when the old order filled more between the modify's read
and Alpaca's replace lives in memory (``Modifier._replace_checks``). Real alpaca-py against the
simulated Alpaca, through the runtime and its journal: the limit order of 20 (marketable) fills 3
a bar; once it has filled 3 the strategy re-prices it and the PATCH asks 17, but ``slow_replace``
leaves the replace pending while the old order fills 3 more (6), so the replacement asks for 3 the
chain has already bought. Run 1 stops before the replace is carried out (its check still
pending); run 2 is a warm restart on the same journal.
"""

from __future__ import annotations

from runtime_support import BuyThenReprice, filling_sim, run_runtime, trading_client

from ml4t_live.sim.alpaca import SimulatedAlpaca


def _orders(sim: SimulatedAlpaca) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def _run_stopped_with_the_check_pending(sim: SimulatedAlpaca, tmp_path, bars: int) -> str:
    """Run 1 until 14:33 with the re-price's replace left pending for ``bars`` bars; our id."""
    sim.inject("slow_replace", bars=bars)
    lines: list[str] = []
    run_runtime(sim, tmp_path, 3, lines, BuyThenReprice(), strategy_id="rcheck")
    (cid,) = [c for c in _orders(sim) if ".r" not in c]
    assert _orders(sim) == {cid: ("pending_replace", "20", "6"), f"{cid}.r1": ("pending_new", "17", "0")}
    assert any("is pending: checked again at the next bar" in line for line in lines), lines
    return cid


def _warm_restart(sim: SimulatedAlpaca, tmp_path, lines: list[str]):
    """Run 2, a warm restart on run 1's journal (12 bars); the runtime, and what the venue then
    holds: its fills, its orders and the quantities of the replaces it received."""
    second = run_runtime(sim, tmp_path, 12, lines, BuyThenReprice(), strategy_id="rcheck")
    return second, sim.fills(), _orders(sim), [form.qty for _, form in sim.replaces_received()]

def test_a_replace_carried_out_while_away_is_cut_down_at_the_restart(tmp_path):
    """The replace is carried out while no runtime runs (r1 of 17 working, 6 filled by the old
    order: 23 asked in all), r1 fills 3. The restart cuts r1 down to what is left of the 20.
    Failed before: nothing checked the chain after the restart, r1 filled its 17: 23 bought."""
    sim = filling_sim(16)
    lines: list[str] = []
    try:
        cid = _run_stopped_with_the_check_pending(sim, tmp_path, bars=2)
        trading_client(sim).get_clock()  # a bar while away: the replace is carried out, r1 fills 3
        assert _orders(sim)[cid] == ("replaced", "20", "6")
        assert _orders(sim)[f"{cid}.r1"][0] == "partially_filled"
        second, venue, orders, replaces = _warm_restart(sim, tmp_path, lines)
    finally:
        sim.close()
    assert sum(v.qty for v in venue) == 20, orders
    assert orders[cid] == ("replaced", "20", "6") and orders[f"{cid}.r1"][0] == "replaced"
    r1_filled = float(orders[f"{cid}.r1"][2])
    assert replaces == [17, 20 - 6 - r1_filled]  # the cut asks what is left of the 20
    assert orders[f"{cid}.r2"][0] == "filled"
    order = second.book.get(cid)
    assert order.filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in second.book.fills] == [v.qty for v in venue]
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == 1 and "asks 3 more than the 20 last recorded (a fill between a modify's read and its replace" in warned[0], lines
    assert f"cut down to the {20 - 6 - r1_filled:g} left" in warned[0]


def test_a_replace_still_pending_at_the_restart_is_checked_once_carried_out(tmp_path):
    """The restart finds the replace still pending (the old order listed ``pending_replace``, r1
    ``pending_new``): the check made again waits for it, at each end of bar, and cuts r1 down once
    Alpaca carries it out. Failed before: r1 filled its 17, 29 bought (the old order 12)."""
    sim = filling_sim(16)
    lines: list[str] = []
    try:
        cid = _run_stopped_with_the_check_pending(sim, tmp_path, bars=4)
        second, venue, orders, replaces = _warm_restart(sim, tmp_path, lines)
    finally:
        sim.close()
    assert sum(v.qty for v in venue) == 20, orders
    old_filled, r1_filled = float(orders[cid][2]), float(orders[f"{cid}.r1"][2])
    assert orders[cid][0] == "replaced" and old_filled > 6  # it filled on while its replace was pending
    assert orders[f"{cid}.r1"][0] == "replaced"
    assert replaces == [17, 20 - old_filled - r1_filled]  # the cut asks what is left of the 20
    assert orders[f"{cid}.r2"][0] == "filled"
    order = second.book.get(cid)
    assert order.filled_quantity == 20 and second.book.positions["AAPL"].quantity == 20
    assert any("is pending: checked again at the next bar" in line for line in lines), lines
    warned = [line for line in lines if line.startswith("WARNING")]
    assert len(warned) == 1 and f"asks {old_filled - 3:g} more than the 20 last recorded" in warned[0], lines


def test_a_chain_that_traded_more_than_asked_while_away_is_reported_and_stopped(tmp_path):
    """The replace is carried out while away and r1 fills 12 before the restart, 3 more before its
    check: the chain has bought 21 of the 20 asked. The check made again says so (an ERROR, the
    ``over_filled`` venue error) and cancels what r1 still asks (2).
    Failed before: nothing checked the chain, r1 filled its 17: 23 bought, nothing said."""
    sim = filling_sim(16)
    lines: list[str] = []
    try:
        cid = _run_stopped_with_the_check_pending(sim, tmp_path, bars=2)
        raw = trading_client(sim)
        for _ in range(4):  # bars while away: the replace is carried out, r1 fills 3 a bar
            raw.get_clock()
        assert _orders(sim)[f"{cid}.r1"] == ("partially_filled", "17", "12")
        second, venue, orders, replaces = _warm_restart(sim, tmp_path, lines)
    finally:
        sim.close()
    assert orders == {cid: ("replaced", "20", "6"), f"{cid}.r1": ("canceled", "17", "15")}
    assert replaces == [17] and sum(v.qty for v in venue) == 21
    assert second.book.positions["AAPL"].quantity == 21  # what the venue bought, said below
    (error,) = [line for line in lines if line.startswith("ERROR")]  # the check's, when it found it
    assert error.startswith("ERROR the chain of ") and cid in error
    assert "the chain traded 21, 1 more than the 20 asked" in error and "the replacement is cancelled" in error
