"""A change the venue gateway cannot make yet (ChangeDeferred, e.g. Alpaca's ReplaceNotChecked: the
order's last replace is not checked yet, as right after a restart's bring-back PATCH) is a routine
wait: a WARNING saying so, the order unchanged. Before, it was logged as an ERROR "change of X was
not accepted", as a real refusal is (and still is)."""

from __future__ import annotations

from loguru import logger
from ml4t.backtest import OrderType

from ml4t_live.errors import ChangeDeferred
from ml4t_live.venues.alpaca.modify import ReplaceNotChecked
from ml4t_live.venues.alpaca.submit import OrderRefused
from ml4t_live.venues.alpaca.unknown import BeingReported
from tests.engine.venue_broker_support import connected
from tests.support.fakes import FakeVenue


def _update_lines(refusal: Exception) -> tuple[bool, float, list[tuple[str, str]]]:
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    venue.raise_on["modify"] = refusal
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="INFO")
    try:
        ok = broker.update_order(order.order_id, limit_price=91.0)
    finally:
        logger.remove(sink)
        broker.close()
    return ok, order.limit_price, [(level, m) for level, m in lines if order.order_id in m]


def test_a_change_deferred_is_a_warning_and_the_order_is_unchanged():
    refusal = ReplaceNotChecked("the last replace of X is not checked yet; the next bar may ask again")
    assert isinstance(refusal, ChangeDeferred) and isinstance(refusal, OrderRefused)
    ok, limit, lines = _update_lines(refusal)
    assert not ok and limit == 90.0
    assert [level for level, _ in lines] == ["WARNING"], lines
    assert "not made yet (the last replace of X is not checked yet" in lines[0][1]
    assert "not accepted" not in lines[0][1]


def test_a_change_of_a_submit_of_unknown_outcome_being_reported_is_a_warning():
    """Alpaca's modify of a submit of unknown outcome whose report is not on the queue yet (still
    being reported, or its report failed: nothing sent, ask again at a later bar). Failed before:
    an ERROR "change of X was not accepted"."""
    ok, limit, lines = _update_lines(BeingReported("t-a, a submit of unknown outcome, is still being reported by "
                                                   "the adapter's watcher (after 10s): ask again at a later bar"))  # fmt: skip
    assert not ok and limit == 90.0
    assert [level for level, _ in lines] == ["WARNING"], lines
    assert "not made yet (t-a, a submit of unknown outcome, is still being reported" in lines[0][1]


def test_a_real_refusal_of_a_change_stays_an_error():
    ok, limit, lines = _update_lines(OrderRefused("Alpaca refused the replace: HTTP 422"))
    assert not ok and limit == 90.0
    assert [level for level, _ in lines] == ["ERROR"], lines
    assert "was not accepted (Alpaca refused the replace: HTTP 422)" in lines[0][1]
