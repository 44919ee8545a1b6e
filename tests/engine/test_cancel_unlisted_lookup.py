"""A cancelling order the venue no longer lists is looked up by client order id in the session.

Same setting as tests/engine/test_cancel_resend_bounds.py: the operator halts the strategy during
its first bar, the next bar cancels its working limit order (t=30 s of the fake clock, 30 s a
bar). The venue carries the cancel out without ever confirming it (the order leaves its open
orders, no event comes: a dropped stream message). At the first check (t=60 s) the runtime finds
it no longer listed and asks the venue by client order id: the end the venue gives it ends it now.
Before, it stayed cancelling for the rest of the run (CANCELLED for the strategy, but counted as
working by ``max_open_orders``) and ended in an ALERT; only a warm restart looked it up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml4t.backtest import OrderStatus

from ml4t_live.errors import VenueError
from ml4t_live.protocols import VenueOrder
from tests.engine.test_cancel_resend import journal_of
from tests.engine.test_cancel_resend_bounds import CancelsSilently, run


@dataclass
class LooksUp(CancelsSilently):
    """CancelsSilently with a look-up by client order id: ``answer`` says what it finds
    ("cancelled", "filled": the fill is reported as the gateway's event first, None: not found,
    "fail": the look-up fails)."""

    answer: str | None = "cancelled"
    looked_up: list[list[str]] = field(default_factory=list)

    def lookup(self, cids):
        self.looked_up.append(list(cids))
        if self.answer == "fail":
            raise VenueError("GET /v2/orders:by_client_order_id: HTTP 503 (after 4 tries)")
        if self.answer is None:
            return {}
        out = {}
        for cid in cids:
            request = next(r for r in self.placed if r.client_order_id == cid)
            filled = 0.0
            if self.answer == "filled" and len(self.looked_up) == 1:
                self.fill(request)  # (a real gateway reports what the look-up found as events)
                filled = request.quantity
            out[cid] = VenueOrder(cid, "V1", request.asset, request.side, request.quantity, filled,
                                  request.order_type, self.answer, request.limit_price)  # fmt: skip
        return out


def _alerts(lines, cid):
    return [line for line in lines if line.startswith("ERROR") and "ALERT" in line and cid in line]


def test_an_unlisted_cancelling_order_the_venue_says_cancelled_ends_at_the_first_check(tmp_path):
    venue = LooksUp(fill_on_wait=False)
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    cid = strategy.orders[0].order_id
    assert venue.looked_up == [[cid]]  # once, at the first check; it ended there
    assert venue.times == [30.0]  # nothing sent again
    assert not _alerts(lines, cid)
    assert cid not in broker.book.cancelling and broker.left_at_venue == []
    intents, _, _ = journal_of(tmp_path)
    assert intents[cid]["status"] == "cancelled"


def test_an_unlisted_cancelling_order_the_venue_says_filled_takes_its_fill_once(tmp_path):
    venue = LooksUp(fill_on_wait=False, answer="filled")
    strategy, broker, lines = run(venue, 70, tmp_path, end="keep")
    order = strategy.orders[0]
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 5
    intents, positions, fills = journal_of(tmp_path)
    assert intents[order.order_id]["status"] == "filled" and fills == 1
    assert positions == {"AAA": 5.0}
    assert not _alerts(lines, order.order_id) and broker.left_at_venue == []


def test_an_unlisted_cancelling_order_not_found_stays_cancelling_to_its_alert(tmp_path):
    for answer in (None, "fail"):
        path = tmp_path / str(answer)
        venue = LooksUp(fill_on_wait=False, answer=answer)
        strategy, broker, lines = run(venue, 70, path, end="keep")
        cid = strategy.orders[0].order_id
        assert venue.looked_up == [[cid]] * 5  # at each check (60, 120, 240, 480, 960 s), no more
        alert = _alerts(lines, cid)
        assert len(alert) == 1 and "no longer lists it working" in alert[0], alert
        assert [o.order_id for o in broker.left_at_venue] == [cid]
