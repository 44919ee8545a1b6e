"""The replace check's own corrective PATCH (a cut down to what is left, or a restart's bring-back
to the book's terms) left pending by Alpaca (``slow_replace``) while the order it changes fills on to
its end: Alpaca then cancels the PATCH's replacement. The check it came from is made again at that
end: the chain's over-fill is an ERROR and a ``VenueErrorReported`` ``over_filled`` (as the check's
own over-fill is), and a bring-back the fill outran is an ERROR (the venue and the book disagree),
the book holding what the venue filled. Failed before: the check returned with nothing said (the old
order "not replaced after all"). Real alpaca-py against SimulatedAlpaca (in session: the modify rig;
at a warm restart: run 1, and a run 2, child processes killed as kill -9)."""

from __future__ import annotations

from alpaca_helpers import collect
from change_crash_support import HERE, NEVER, crash_at_change, error_lines, venue_orders
from crash_support import ResizeOnceThenReprice
from modify_support import rig
from runtime_support import filling_sim, run_runtime

from ml4t_live.events import VenueErrorReported
from tests.support.child_process import run_script

#: run 2 as a child that dies (as kill -9) right after Alpaca answered its first PATCH (the
#: restart's bring-back: the replay's resize is refused before anything is sent)
_RUN_2_KILLED_AFTER_THE_BRING_BACK = """
import os, sys
from datetime import timedelta
sys.path.insert(0, sys.argv[1])
from alpaca_helpers import SESSION_OPEN, config_for
from crash_support import ResizeOnceThenReprice
from ml4t.backtest import BacktestConfig
from ml4t_live import LiveEngine
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed
from ml4t_live.venues.alpaca import modify

_replace = modify.Modifier.replace
def replace_then_die(self, request, venue_id, filled):
    _replace(self, request, venue_id, filled)
    os._exit(137)
modify.Modifier.replace = replace_then_die

class Venue:
    key_id, secret_key, base_url = sys.argv[2:5]

cfg = config_for(Venue)
broker = AlpacaBroker(cfg, strategy_id="resize", state_dir=sys.argv[5])
feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=10))
LiveEngine(ResizeOnceThenReprice(float(sys.argv[6]), int(sys.argv[7])), broker, feed, config=BacktestConfig(),
           session_dir=False, settle_timeout=0.5, open_orders_at_end="keep").run()
"""


def _restart(sim, tmp_path, new_qty: float, lines: list[str]):
    """A run to the end (the replay's resize refused): what the venue bought, its orders, the
    book's order and position."""
    broker = run_runtime(sim, tmp_path, 19, lines, ResizeOnceThenReprice(new_qty, NEVER), strategy_id="resize")
    orders = venue_orders(sim)
    (cid,) = [c for c in orders if ".r" not in c]
    return sum(v.qty for v in sim.fills()), orders, broker.book.get(cid), broker.book.positions["AAPL"].quantity


def test_a_pending_cut_outrun_by_the_replacement_filling_is_an_over_fill_error():
    """t-p (20) re-priced while its old order fills 3 more (r1 asks 17: 3 too much); the cut of r1
    stays pending while r1 fills its 17, so Alpaca cancels the cut's replacement: 23 bought."""
    with rig() as r:
        r.reprice_with_slow_replace(bars=2)
        r.sim.inject("slow_replace", bars=8)  # the cut: pending until r1 has filled
        for _ in range(8):
            r.bar()
            r.gw.modifier.check_replaces()
        seen = collect(r.gw.events, lambda s: any(isinstance(e, VenueErrorReported) for e in s))
        bought, orders, lines = r.bought(), r.orders(), r.lines
    assert bought == 23 and orders["t-p.r1"] == ("filled", "17", "17") and orders["t-p.r2"][0] == "canceled"
    (error,) = error_lines(lines)
    assert "the chain traded 23, 3 more than the 20 asked" in error, lines
    (event,) = [e for e in seen if isinstance(e, VenueErrorReported)]
    assert event.code == "over_filled" and event.client_order_id == "t-p", event


def test_a_pending_restart_cut_outrun_by_the_replacement_filling_is_an_over_fill_error(tmp_path):
    """Crashed grow 20 -> 22 (r1 asks 19, filling 3 a bar while away 3 bars); run 2's cut to what is
    left stays pending while r1 fills the rest of its 19: 22 bought, the book's 20 over-filled."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 22.0, bars_away=3)
        sim.inject("slow_replace", bars=5)
        bought, orders, order, position = _restart(sim, tmp_path, 22.0, lines)
    finally:
        sim.close()
    assert bought == 22, orders
    errors = error_lines(lines)
    assert len(errors) == 1 and "the chain traded 22, 2 more than the 20 asked" in errors[0], lines
    assert order.filled_quantity == position == 22, (order.filled_quantity, position)


def test_a_pending_bring_back_outrun_by_the_replacement_filling_is_an_error(tmp_path):
    """Crashed shrink 20 -> 15 (r1 asks 12); run 2's bring-back to the book's 20 stays pending while
    r1 fills its 12 (Alpaca cancels the bring-back's replacement): 15 bought where the book holds 20.
    Said as an ERROR; the book holds what the venue filled."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 15.0)
        sim.inject("slow_replace", bars=5)
        bought, orders, order, position = _restart(sim, tmp_path, 15.0, lines)
    finally:
        sim.close()
    assert bought == 15, orders
    errors = error_lines(lines)
    assert len(errors) == 1 and "could not be brought back to the terms last recorded (20)" in errors[0], lines
    assert "the chain filled 15: the venue and the book disagree" in errors[0], errors
    assert order.filled_quantity == position == 15, (order.filled_quantity, position)


def test_a_bring_back_pending_across_a_second_crash_outrun_by_a_fill_is_an_error(tmp_path):
    """Crashed shrink 20 -> 15; run 2 is killed right after Alpaca answered its bring-back PATCH, which
    stays pending; run 3 walks the chain (r1 pending_replace, the bring-back's r2) while r1 fills its
    12 and Alpaca cancels r2: the check of r1's replace (built at the restart, against the book) is
    made again at r1's end: an ERROR, 15 bought where the book holds 20."""
    sim = filling_sim(20)
    lines: list[str] = []
    try:
        crash_at_change(sim, tmp_path, 15.0)
        sim.inject("slow_replace", bars=6)
        killed = run_script(_RUN_2_KILLED_AFTER_THE_BRING_BACK, HERE, sim.key_id, sim.secret_key, sim.base_url,
                            str(tmp_path), "15.0", str(NEVER))  # fmt: skip
        assert killed.returncode == 137, killed.stderr[-3000:]
        listed = venue_orders(sim)
        bought, orders, order, position = _restart(sim, tmp_path, 15.0, lines)
    finally:
        sim.close()
    (cid,) = [c for c in orders if ".r" not in c]
    assert listed[cid + ".r1"][0] == "pending_replace" and listed[cid + ".r2"][0] == "pending_new", listed
    assert bought == 15 and orders[cid + ".r2"][0] == "canceled", orders
    errors = error_lines(lines)
    assert len(errors) == 1 and "could not be brought back to the terms last recorded (20)" in errors[0], lines
    assert order.filled_quantity == position == 15, (order.filled_quantity, position)
