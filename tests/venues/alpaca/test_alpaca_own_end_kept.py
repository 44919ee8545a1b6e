"""The end an old order showed of its own while its replace was pending (``Tracked.own_end``) stays
noted once reported, so a modify's check that reads the ended old order open (a REST read lagging
the stream) never follows it again.

The simulated Alpaca cannot show an ended order open (its ``stale_order_read`` keeps an expired or
canceled status, ``stale_old`` and ``stale_replaced_read`` apply to a pending or replaced order
only), so this is the tracker on the documented payloads
(tests/resources/alpaca/alpaca_docs_examples.json) through alpaca-py's TradeUpdate: doc-1 (40
filled) is replaced by doc-1.r1 (a modify of this session), expires with the replace pending, and
Alpaca then cancels the replacement.
"""

from __future__ import annotations

import json
from pathlib import Path

from alpaca.trading.models import TradeUpdate

from ml4t_live.events import OrderCancelled
from ml4t_live.venues.alpaca.tracker import OrderTracker

DOCS = json.loads((Path(__file__).parents[2] / "resources" / "alpaca" / "alpaca_docs_examples.json").read_text())
OLD = "308266a6-7b03-47a4-821a-d08a04e83444"  # doc-1's Alpaca id in the payloads
NEW = "5f5b1c9e-0c1e-4b8e-9d0a-2f9e6c1d7a11"


def _update(event: str, **order: object) -> TradeUpdate:
    raw = json.loads(json.dumps(DOCS["partial_then_fill"][0]))
    raw.update(event=event, timestamp="2026-11-23T16:00:00Z", price=None, qty=None, execution_id=None)
    raw["order"].update(order)
    return TradeUpdate(**raw)


def _old_expired() -> TradeUpdate:
    return _update("expired", id=OLD, status="expired", filled_qty="40")


def _replacement_canceled() -> TradeUpdate:
    return _update("canceled", id=NEW, client_order_id="doc-1.r1", status="canceled", filled_qty="0",
                   replaces=OLD, qty="60")  # fmt: skip


def _expired_with_its_replace_pending() -> OrderTracker:
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.on_trade_update(TradeUpdate(**DOCS["partial_then_fill"][0]))  # 40 filled
    tracker.alias("doc-1.r1", "doc-1")
    tracker.carry_over(OLD, NEW)  # the modify of this session
    assert tracker.on_trade_update(_old_expired()) == []  # (our order is the replacement: not its end yet)
    return tracker


def test_an_old_order_that_ended_first_is_not_followed_again_before_its_end_is_reported() -> None:
    """The check reads the expired old order open and its replacement canceled before the stream
    brings the replacement's end. Fails without the ``own_end`` guard of ``replace_undone``: the
    expired order followed again (followed_instead names it)."""
    tracker = _expired_with_its_replace_pending()
    assert tracker.replace_undone(OLD, _replacement_canceled().order) is False
    assert tracker.followed_instead(NEW) is None
    assert tracker.on_trade_update(_replacement_canceled()) == [OrderCancelled("doc-1", "expired")]
    assert tracker.outcome("doc-1") == "closed"


def test_an_old_order_that_ended_first_is_not_followed_again_after_its_end_was_reported() -> None:
    """The replacement's end reports the old order's (once); a check reading the old order open
    then, and later views of either order, change nothing. Failed before: the report cleared the
    end, so replace_undone followed the expired order again (True, followed_instead named it)."""
    tracker = _expired_with_its_replace_pending()
    assert tracker.on_trade_update(_replacement_canceled()) == [OrderCancelled("doc-1", "expired")]
    assert tracker.replace_undone(OLD, _replacement_canceled().order) is False
    assert tracker.followed_instead(NEW) is None
    assert tracker.on_trade_update(_old_expired()) == []  # (a later view of it: reported already)
    assert tracker.on_trade_update(_replacement_canceled()) == []
    assert tracker.outcome("doc-1") == "closed"
