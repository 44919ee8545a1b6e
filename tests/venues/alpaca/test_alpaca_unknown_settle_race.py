"""The watcher settling a submit of unknown outcome vs. a snapshot taken meanwhile.

The watcher (``OrderStream.resolve_unconfirmed``, on the trade stream's loop thread) finds the
order and reads its executions over REST before it reports them; a reconciliation's snapshot (the
engine thread) may list the order in that gap. Through the real alpaca-py client against
SimulatedAlpaca; the trade stream is silent, so only the REST views report.
"""

from __future__ import annotations

import threading

from alpaca_helpers import drain, of
from unknown_support import (
    WAIT,
    HeldOnLoop,
    fill_events,
    rest_reported_once,
    unknown_half_filled,
)

from ml4t_live.events import OrderAccepted
from ml4t_live.sim.alpaca import SimulatedAlpaca


def test_a_snapshot_while_the_watcher_reports_an_unknown_submit_leaves_it_to_the_watcher(sim: SimulatedAlpaca) -> None:
    """The watcher finds t-u and, while it reads t-u's executions, a snapshot lists t-u. The
    snapshot leaves t-u to the watcher, whose report then holds t-u's acceptance and first 5
    (under the venue's execution id), each once; the rest reported when it fills, 10 in all.
    Before, the watcher's settle removed t-u from the unknown submits before its report, so the
    snapshot adopted t-u (its 5 taken as known) and the report found nothing new: no
    OrderAccepted, the first 5 never reported (the broker's view 5 short)."""
    gw = unknown_half_filled(sim)
    try:
        held = gw.stream.executions = HeldOnLoop(gw.stream.executions)
        errors: list[BaseException] = []

        def tick() -> None:  # the watcher's tick, on the stream's loop thread
            try:
                gw.stream.session.call(gw.stream.resolve_unconfirmed, timeout=WAIT + 5)
            except BaseException as exc:  # noqa: BLE001  (re-raised by the test below)
                errors.append(exc)

        watcher = threading.Thread(target=tick, name="test-watcher-tick")
        watcher.start()
        try:
            assert held.inside.wait(WAIT), "the watcher never read t-u's executions"
            snap = gw.snapshot()  # a reconciliation in the gap
        finally:
            held.release.set()
            watcher.join(WAIT + 10)
        assert not watcher.is_alive() and not errors, errors
        assert [(o.client_order_id, o.filled_quantity) for o in snap.open_orders] == [("t-u", 5)]
        assert not gw.follows_unknown("t-u")
        seen = drain(gw.events)
        first, = sim.fills()
        assert len(of(OrderAccepted, seen, "t-u")) == 1
        assert [(f.exec_id, f.quantity, f.cumulative_quantity) for f in fill_events(seen)] == [
            (first.execution_id, 5, 5)]
        seen = rest_reported_once(sim, gw, seen)
        assert len(of(OrderAccepted, seen, "t-u")) == 1
    finally:
        gw.close()


def test_a_snapshot_whose_look_up_of_an_unknown_submit_gets_no_request_slot_leaves_it_to_the_watcher(
    sim: SimulatedAlpaca,
) -> None:
    """The request budget (1 a minute, so none comes back during the test) holds just the
    snapshot's three reads: its look-up of the listed t-u raises RateLimitTimeout (not sent).
    The snapshot still answers (t-u listed) and t-u stays of unknown outcome, with nothing
    reported: the watcher keeps looking it up (its look-up, settling and report: the test above
    and test_alpaca_snapshot_unknown). Before, the RateLimitTimeout escaped the snapshot (only a
    refused request left t-u to the watcher)."""
    burst = 40
    gw = unknown_half_filled(sim, max_requests_per_minute=1, rate_limit_burst=burst)
    try:
        taken = sim.state()["rest_requests"]  # every request of ours so far took a token
        for _ in range(burst - taken - 3):  # leave three: account, positions, open orders
            assert gw.bucket.try_acquire()
        snap = gw.snapshot()
        assert not gw.bucket.try_acquire()  # the look-up found no slot
        assert [(o.client_order_id, o.filled_quantity) for o in snap.open_orders] == [("t-u", 5)]
        assert gw.follows_unknown("t-u")
        assert not of(OrderAccepted, drain(gw.events), "t-u")
    finally:
        gw.close()
