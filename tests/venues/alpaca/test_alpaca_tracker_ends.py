"""An order's end (``replaced``, ``canceled``, ``expired``) that shows more filled than reported.

On the documented payloads (tests/resources/alpaca/alpaca_docs_examples.json, string numbers, no
``execution_id``): doc-1 (100) partly filled 40 at 179.08 (its ``partial_fill`` update), then a
fill of 30 whose own update was lost, then the end, whose ``filled_qty`` says 70 at an average of
179.11. The tracker reports the 30 before the end, once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.models import TradeUpdate

from ml4t_live.events import OrderCancelled, OrderPartiallyFilled
from ml4t_live.venues.alpaca.parsing import made_up_exec_id
from ml4t_live.venues.alpaca.tracker import OrderTracker

DOCS = json.loads((Path(__file__).parents[2] / "resources" / "alpaca" / "alpaca_docs_examples.json").read_text())
OLD_ID = "308266a6-7b03-47a4-821a-d08a04e83444"  # doc-1's Alpaca id in the payloads
NEW_ID = "5f5b1c9e-0c1e-4b8e-9d0a-2f9e6c1d7a11"
STAMP = "2026-11-23T14:32:00Z"
MISSED_PRICE = (179.11 * 70 - 179.08 * 40) / 30  # the 30 the end shows, from the average prices


def _update(event: str, *, price: str | None = None, qty: str | None = None, **order: Any) -> TradeUpdate:
    raw = json.loads(json.dumps(DOCS["partial_then_fill"][0]))
    raw.update(event=event, timestamp=STAMP, price=price, qty=qty)
    raw["order"].update(order)
    return TradeUpdate(**raw)


def _partly_filled() -> OrderTracker:
    tracker = OrderTracker()
    tracker.register("doc-1")
    (first,) = tracker.on_trade_update(TradeUpdate(**DOCS["partial_then_fill"][0]))
    assert (first.quantity, first.cumulative_quantity) == (40, 40)
    return tracker


def _the_missed_30(event: Any, cumulative: float = 70) -> None:
    assert isinstance(event, OrderPartiallyFilled) and event.client_order_id == "doc-1"
    assert (event.quantity, event.cumulative_quantity) == (30, cumulative)
    assert event.price == pytest.approx(MISSED_PRICE)
    assert event.exec_id == made_up_exec_id(OLD_ID, 70) and event.reconstructed


@pytest.mark.parametrize("end", ["canceled", "expired", "replaced"])
def test_an_end_that_shows_more_filled_reports_the_excess_first_once(end: str) -> None:
    """The end reports the missed 30 (made-up execution id, price from the average fill prices),
    then the end itself (OrderCancelled; a replace ends quietly: its replacement carries on).
    A repeat of the end, and the lost fill's own update arriving late, report nothing more.
    Before, the end reported only OrderCancelled (or nothing): the 30 waited for a look-up."""
    tracker = _partly_filled()
    ending = _update(end, status=end, filled_qty="70", filled_avg_price="179.11")
    events = tracker.on_trade_update(ending)
    _the_missed_30(events[0])
    assert [type(e) for e in events[1:]] == ([] if end == "replaced" else [OrderCancelled])
    assert tracker.on_trade_update(ending) == []
    late = _update("partial_fill", price="179.15", qty="30", status="partially_filled", filled_qty="70",
                   filled_avg_price="179.11")  # fmt: skip
    assert tracker.on_trade_update(late) == []
    assert tracker.open_venue_ids() == []


def test_a_replaced_end_after_the_modify_carried_over_counts_in_the_replacement() -> None:
    """The modify has carried doc-1's 40 over to its replacement doc-1.r1 when the ``replaced``
    update shows 70: the 30 are reported (cumulative 70) and count in doc-1.r1's base, so its own
    fills continue from 70. Before, doc-1 was already ended by the carry-over and the update was
    dropped."""
    tracker = _partly_filled()
    tracker.alias("doc-1.r1", "doc-1")
    tracker.carry_over(OLD_ID, NEW_ID)
    (event,) = tracker.on_trade_update(_update("replaced", status="replaced", filled_qty="70",
                                               filled_avg_price="179.11", replaced_by=NEW_ID))  # fmt: skip
    _the_missed_30(event)
    assert tracker.filled_total(NEW_ID) == 70
