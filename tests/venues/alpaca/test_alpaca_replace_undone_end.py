"""``OrderTracker.replace_undone`` (a modify's check read the old order open and its replacement
ended) follows the old order again the way the stream's own path (``_undo``) does: the
replacement's end is kept on the old order and reported once, if the old order is shown
``replaced`` later.

Before, ``replace_undone`` kept no end: the old order's later ``replaced`` reported nothing, the
replacement's ``canceled`` was ignored (already finished), and our order's end was lost (the
tracker said ``closed``, the book kept the order working). On the documented payloads
(tests/resources/alpaca/alpaca_docs_examples.json): doc-1 (40 filled) is replaced by doc-1.r1.
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
    raw.update(event=event, timestamp="2026-11-23T14:32:00Z", price=None, qty=None, execution_id=None)
    raw["order"].update(order)
    return TradeUpdate(**raw)


def _replacement_canceled() -> TradeUpdate:
    return _update("canceled", id=NEW, client_order_id="doc-1.r1", status="canceled", filled_qty="0",
                   replaces=OLD, qty="60")  # fmt: skip


def _old_replaced() -> TradeUpdate:
    """The stream's ``replaced`` of doc-1 names the order replacing it (the simulator's stream, as
    Alpaca's, sends ``replaced_by`` with the status; only a REST read may lag it: replaced_by_late)."""
    return _update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=NEW)


def _replaced_by_modify() -> OrderTracker:
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.on_trade_update(TradeUpdate(**DOCS["partial_then_fill"][0]))  # 40 filled
    tracker.alias("doc-1.r1", "doc-1")
    tracker.carry_over(OLD, NEW)  # the modify of this session
    return tracker


def _ends(events: list) -> list:
    return [e for e in events if isinstance(e, OrderCancelled)]


def test_the_modify_check_path_keeps_the_end_and_reports_it_once_the_old_order_is_shown_replaced() -> None:
    tracker = _replaced_by_modify()
    tracker.replace_undone(OLD, _replacement_canceled().order)  # the check: old read open (stale), new canceled
    assert tracker.outcome("doc-1") == "open"
    assert tracker.followed_instead(NEW) == OLD
    out = tracker.on_trade_update(_old_replaced()) + tracker.on_trade_update(_replacement_canceled())
    assert _ends(out) == [OrderCancelled("doc-1", "canceled")]
    assert tracker.outcome("doc-1") == "closed"


def test_the_stream_path_reports_the_end_exactly_once() -> None:
    tracker = _replaced_by_modify()
    out = tracker.on_trade_update(_replacement_canceled()) + tracker.on_trade_update(_old_replaced())
    assert len(_ends(out)) == 1
    assert tracker.outcome("doc-1") == "closed"


def test_an_old_order_already_shown_replaced_is_not_followed_again() -> None:
    tracker = _replaced_by_modify()
    assert _ends(tracker.on_trade_update(_old_replaced())) == []
    tracker.replace_undone(OLD, _replacement_canceled().order)  # the check read a stale view of the old order
    assert tracker.followed_instead(NEW) is None
    assert _ends(tracker.on_trade_update(_replacement_canceled())) == [OrderCancelled("doc-1", "canceled")]
    assert tracker.outcome("doc-1") == "closed"


LATER = "7c2d9e4a-1b3f-4a5e-8c6d-0e1f2a3b4c5d"  # a later replacement of doc-1 (the runtime's cut made again)


def test_an_old_order_shown_replaced_by_a_later_replace_does_not_end_the_order() -> None:
    """The replacement undone (its end kept on the old order), the old order changed again (the
    runtime's re-cut; a strategy's next modify): the stream shows it ``replaced`` by that later
    replacement before the PATCH's answer is followed. That is not the undone replacement's
    replace carried out after all: the kept end is not our order's (before: OrderCancelled while
    the later replacement worked on and filled)."""
    tracker = _replaced_by_modify()
    tracker.on_trade_update(_replacement_canceled())  # undone: the old order followed again
    tracker.alias("doc-1.r2", "doc-1")  # the re-cut's PATCH sent
    out = tracker.on_trade_update(_update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=LATER))
    assert _ends(out) == []
    tracker.carry_over(OLD, LATER)  # the PATCH's answer followed
    assert tracker.outcome("doc-1") == "open"
    fill = _update("fill", id=LATER, client_order_id="doc-1.r2", status="filled", qty="60", filled_qty="60",
                   filled_avg_price="100", replaces=OLD)  # fmt: skip
    assert not _ends(tracker.on_trade_update(fill))
    assert tracker.outcome("doc-1") == "filled"


def test_an_old_order_shown_replaced_by_the_undone_replacement_reports_its_end() -> None:
    tracker = _replaced_by_modify()
    tracker.on_trade_update(_replacement_canceled())
    out = tracker.on_trade_update(_update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=NEW))
    assert _ends(out) == [OrderCancelled("doc-1", "canceled")]
    assert tracker.outcome("doc-1") == "closed"


def _replace_answer_lost() -> OrderTracker:
    """doc-1 replaced by a PATCH whose answer was lost: doc-1.r1 is known by its client id only."""
    tracker = OrderTracker()
    tracker.register("doc-1")
    tracker.on_trade_update(TradeUpdate(**DOCS["partial_then_fill"][0]))  # 40 filled
    tracker.alias("doc-1.r1", "doc-1")
    return tracker


def test_an_unlinked_replacement_that_ends_is_a_replace_not_carried_out() -> None:
    """Its ``canceled`` is not doc-1's end while doc-1 works on (before: OrderCancelled); the end is
    kept on doc-1, and is doc-1's should doc-1 be shown replaced by it after all."""
    tracker = _replace_answer_lost()
    assert _ends(tracker.on_trade_update(_replacement_canceled())) == []
    assert tracker.outcome("doc-1") == "open"
    assert tracker.followed_instead(NEW) == OLD
    out = tracker.on_trade_update(_update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=NEW))
    assert _ends(out) == [OrderCancelled("doc-1", "canceled")]


def test_an_unlinked_replacement_of_an_order_shown_replaced_ends_the_order() -> None:
    tracker = _replace_answer_lost()
    tracker.on_trade_update(_update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=NEW))
    assert _ends(tracker.on_trade_update(_replacement_canceled())) == [OrderCancelled("doc-1", "canceled")]
    assert tracker.outcome("doc-1") == "closed"


def _old_read_replaced(by: str | None):
    """A REST read of doc-1 (``GET /v2/orders/{id}``) shown replaced, ``by`` naming the replacing order."""
    return _update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=by).order


def test_an_old_order_read_replaced_by_none_named_keeps_the_end_until_a_view_names_the_later_replace() -> None:
    """The replacement undone, then a later replace of doc-1 (the runtime's re-cut, its answer lost):
    a read shows doc-1 ``replaced`` before Alpaca names the replacing order. That says neither which
    replace was carried out: nothing is reported (before: the kept end, OrderCancelled, while the
    later replacement worked on and bought 8 more: probe pA); the view naming the later replace
    drops the end."""
    tracker = _replaced_by_modify()
    tracker.on_trade_update(_replacement_canceled())  # undone: the old order followed again
    assert _ends(tracker.on_order_snapshot(_old_read_replaced(None))) == []
    assert _ends(tracker.on_order_snapshot(_old_read_replaced(LATER))) == []
    late = _update("replaced", id=OLD, status="replaced", filled_qty="40", replaced_by=NEW)  # (the end dropped)
    assert _ends(tracker.on_trade_update(late)) == []


def test_an_old_order_read_replaced_by_none_named_reports_the_end_once_a_view_names_the_undone_replacement() -> None:
    tracker = _replaced_by_modify()
    tracker.on_trade_update(_replacement_canceled())
    assert _ends(tracker.on_order_snapshot(_old_read_replaced(None))) == []
    assert _ends(tracker.on_order_snapshot(_old_read_replaced(NEW))) == [OrderCancelled("doc-1", "canceled")]
    assert _ends(tracker.on_trade_update(_old_replaced())) == []  # taken once
    assert tracker.outcome("doc-1") == "closed"


def test_an_unlinked_replacement_of_an_order_that_ended_does_not_bring_that_order_back() -> None:
    """doc-1 ended canceled on its own (its end reported) while the replace's answer was lost: the
    replacement's canceled that follows is not a replace not carried out, and doc-1 is not followed
    again (mutant m6 of rev-cutfix2, the fallback without ``replaced.terminal``: doc-1 'open' again,
    the end kept on it and an order_replace_rejected reported for an order that has ended)."""
    tracker = _replace_answer_lost()
    assert _ends(tracker.on_trade_update(_update("canceled", id=OLD, status="canceled", filled_qty="40"))) == [
        OrderCancelled("doc-1", "canceled")]  # fmt: skip
    out = tracker.on_trade_update(_replacement_canceled())
    assert not [e for e in out if getattr(e, "code", None) == "order_replace_rejected"], out
    assert tracker.followed_instead(NEW) is None
    assert tracker.outcome("doc-1") == "closed"
