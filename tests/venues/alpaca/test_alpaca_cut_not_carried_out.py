"""The replace check's own corrective PATCH (a cut down to what is left, or a restart's bring-back
to the book's terms) that Alpaca answers and then does not carry out (AL-14: ``slow_replace``
``fail``): the check it came from is made again, so the chain is cut / brought back again, at most
MAX_CUTS times, then an ERROR. Real alpaca-py against SimulatedAlpaca (in session: the modify rig;
at a warm restart: run 1 a child process killed right after a change, as kill -9)."""

from __future__ import annotations

from change_crash_support import NEVER, crash_at_change, error_lines, venue_orders
from crash_support import ResizeOnceThenReprice
from modify_support import rig
from runtime_support import filling_sim, run_runtime

from ml4t_live.venues.alpaca.cut import MAX_CUTS

UNTRUE = "the strategy's change did not take effect"


def _restart(sim, tmp_path, new_qty: float, lines: list[str]):
    """Run 2 (the replay's resize refused): what the venue bought, its orders, the book's order."""
    second = run_runtime(sim, tmp_path, 19, lines, ResizeOnceThenReprice(new_qty, NEVER), strategy_id="resize")
    orders = venue_orders(sim)
    (cid,) = [c for c in orders if ".r" not in c]
    return sum(v.qty for v in sim.fills()), orders, cid, second.book.get(cid)


def _ends(r) -> None:
    for _ in range(12):  # the chain's fills run out (3 a bar), each bar's checks made
        r.bar()
        r.gw.modifier.check_replaces()


def test_a_cut_alpaca_does_not_carry_out_is_made_again():
    """t-p (20) re-priced while its old order fills 3 more (r1 asks 17: 3 too much); the cut of r1
    to 11 is answered, then not carried out (r2 canceled). Failed before: the check was dropped as
    the strategy's modify ("the strategy's change did not take effect") and r1 bought its 17: 23."""
    with rig() as r:
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=1, fail=True)  # the cut: answered, not carried out
        _ends(r)
        bought, orders, lines = r.bought(), r.orders(), r.lines
    assert bought == 20, (orders, lines)
    assert orders["t-p.r2"][0] == "canceled" and orders["t-p.r3"] == ("filled", "8", "8"), orders
    assert any("did not carry out the runtime's own change" in line for line in lines), lines
    assert not [line for line in lines if UNTRUE in line], lines
    # the cut made again is the modify's race, said as such (not a race of the cut that never was)
    assert sum("filled 3 more between the modify's read" in line for line in r.logged("WARNING")) == 2, lines
    assert not error_lines(lines), lines


def test_a_cut_alpaca_never_carries_out_is_an_error_after_max_cuts():
    """Every cut answered, then not carried out: cut again MAX_CUTS times in all, then one ERROR
    (the venue and the book disagree), nothing more sent."""
    with rig() as r:
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=1, fail=True, count=MAX_CUTS + 2)
        for _ in range(2 * MAX_CUTS + 2):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, lines = r.orders(), r.lines
    assert [c for c in orders if c.startswith("t-p.r")] == [f"t-p.r{n}" for n in range(1, MAX_CUTS + 2)], orders
    errors = error_lines(lines)
    assert len(errors) == 1 and f"still asks too much after {MAX_CUTS} changes" in errors[0], lines
    assert "the venue and the book disagree" in errors[0], errors


def test_a_restart_cut_alpaca_does_not_carry_out_is_made_again(tmp_path):
    """Crashed grow 20 -> 30 (r1 asks 27); run 2's cut of r1 to the book's 20 answered 200, then not
    carried out. Failed before: r1 bought its 27, 30 in all, the book's order FILLED 30 of 20, no ERROR."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 30.0)
        sim.inject("slow_replace", bars=1, fail=True)  # run 2's cut: answered, not carried out
        bought, orders, cid, order = _restart(sim, tmp_path, 30.0, lines)
    finally:
        sim.close()
    assert bought == 20, (orders, lines)
    assert order.quantity == 20 and order.filled_quantity == 20, (order.quantity, order.filled_quantity, orders)
    assert orders[cid + ".r2"][0] == "canceled", orders
    assert not [line for line in lines if UNTRUE in line], lines
    assert not error_lines(lines), lines


def test_a_restart_bring_back_alpaca_does_not_carry_out_is_made_again(tmp_path):
    """Crashed shrink 20 -> 10 (2 fill a bar: r1 asks 8); run 2's bring-back of r1 to the book's 20
    answered 200, then not carried out while r1 still works: brought back again, 20 bought, the
    book's order 20 filled 20. Failed before: the chain stayed at 10 where the book holds 20."""
    sim = filling_sim(20, participation=0.002)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 10.0)
        sim.inject("slow_replace", bars=1, fail=True)  # run 2's bring-back: answered, not carried out
        bought, orders, cid, order = _restart(sim, tmp_path, 10.0, lines)
    finally:
        sim.close()
    assert orders[cid + ".r2"][0] == "canceled", orders
    assert bought == 20, (orders, lines)
    assert order.quantity == 20 and order.filled_quantity == 20, (order.quantity, order.filled_quantity, orders)
    assert sum("is brought back to them" in line for line in lines) == 2, lines
    assert not [line for line in lines if UNTRUE in line], lines
    assert not error_lines(lines), lines
