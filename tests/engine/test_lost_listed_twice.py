"""A lost order the venue lists twice in one listing (Alpaca during a pending replace: the old
order and its replacement, both under our id) is surfaced once: one cancel, one ERROR.

FakeVenue (tests/support/fakes.py, test_lost_order_mends.py's rig) is the remote side; its cancel
is refused, as Alpaca refuses a DELETE of an order whose replace is pending.
"""

from __future__ import annotations

from ml4t_live.errors import CancelRefused
from tests.engine.lookup_support import working
from tests.engine.unknown_outcome_support import UnknownVenue, run_limit_then_watch


class RefusesCancels(UnknownVenue):
    def cancel(self, client_order_id):
        self.cancelled.append(client_order_id)
        raise CancelRefused(f"order {client_order_id} is pending_replace (HTTP 422)")


def test_a_lost_order_listed_twice_at_a_warm_restart_is_cancelled_once(tmp_path, logs):
    """Failed before: each time it was listed it was surfaced: two cancels (the second refused
    too) and two ERRORs for one listing."""
    venue = RefusesCancels(reached=True, fill_on_wait=False)
    venue.lookup = lambda cids: (venue.looked_up.append(list(cids)), {})[1]  # its lists lag
    _, first = run_limit_then_watch(venue, 4, state_dir=tmp_path)
    cid = first.order.order_id
    assert first.order.rejection_code == "lost" and venue.cancelled == [cid]
    venue.open_orders += [working(cid), working(cid)]  # old and replacement, both under our id
    logs.clear()
    run_limit_then_watch(venue, 1, state_dir=tmp_path)
    surfaced = [m for level, m in logs if level == "ERROR" and cid in m and "listed working at" in m]
    assert len([m for m in surfaced if "listed working at the restart" in m]) == 1
    assert len(venue.cancelled) == 1 + len(surfaced)  # one cancel per listing (its reconciliations' too)
