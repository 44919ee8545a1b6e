"""``OrderTracker.continues``: an order adopted on connect that replaced orders of ours counts
their fills in its cumulative quantity.

After a warm restart the connect snapshot adopts a working replacement ``<ours>.r<n>`` with its
own fills only; the restart's walk of its chain (:mod:`ml4t_live.venues.alpaca.away`) tells the
tracker what the replaced orders filled (``continues``). The runtime's book counts the whole
chain, and takes a fill made up from a REST view (no execution id within reach) by its cumulative
quantity: counted without the replaced orders' part, it falls below the book's and is dropped as
already applied. On the documented payloads (tests/resources/alpaca/alpaca_docs_examples.json):
doc-1 (100) stands for the replacement, adopted with 40 filled; the orders it replaced filled 25.
"""

from __future__ import annotations

import json
from pathlib import Path

from alpaca.trading.models import Order, TradeUpdate

from ml4t_live.venues.alpaca.tracker import OrderTracker

DOCS = json.loads((Path(__file__).parents[2] / "resources" / "alpaca" / "alpaca_docs_examples.json").read_text())
VENUE_ID = "308266a6-7b03-47a4-821a-d08a04e83444"  # doc-1's Alpaca id in the payloads
BEFORE = 25.0  # what the orders doc-1 replaced filled


def _adopted_continuing() -> OrderTracker:
    tracker = OrderTracker()
    tracker.register("doc-1")
    assert tracker.adopt(Order(**DOCS["partial_then_fill"][0]["order"])) == []  # its 40 count as reported
    tracker.continues(VENUE_ID, BEFORE)
    return tracker


def test_a_later_fill_of_an_adopted_replacement_counts_what_the_orders_it_replaced_filled() -> None:
    tracker = _adopted_continuing()
    assert tracker.filled_total(VENUE_ID) == BEFORE + 40  # a modify asks for what is left of the whole
    (fill,) = tracker.on_trade_update(TradeUpdate(**DOCS["partial_then_fill"][1]))
    assert (fill.quantity, fill.cumulative_quantity) == (60, BEFORE + 100)
    assert tracker.filled_total(VENUE_ID) == BEFORE + 100


def test_a_made_up_fill_of_an_adopted_replacement_counts_what_the_orders_it_replaced_filled() -> None:
    tracker = _adopted_continuing()
    view = Order(**{**DOCS["partial_then_fill"][0]["order"], "filled_qty": "70", "filled_avg_price": "179.11"})
    (fill,) = tracker.on_order_snapshot(view)  # its activities not read: a made-up execution id
    assert fill.reconstructed
    assert (fill.quantity, fill.cumulative_quantity) == (30, BEFORE + 70)


def test_continues_after_a_replace_counts_in_the_replacements_base_too() -> None:
    """The adopted order was replaced (a modify) before the walk of its chain succeeded: the
    replacement's base grows by what ``continues`` adds. Before, only the adopted order's base
    moved: the replacement's cumulative quantity and a later modify left the replaced part out."""
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.adopt(Order(**DOCS["partial_then_fill"][0]["order"]))  # 40 filled
    tracker.carry_over(VENUE_ID, "r2-id")  # replaced: r2 continues from 40
    assert tracker.filled_total("r2-id") == 40
    tracker.continues(VENUE_ID, BEFORE)
    assert tracker.filled_total(VENUE_ID) == BEFORE + 40
    assert tracker.filled_total("r2-id") == BEFORE + 40
