"""The gateway's ``lookup`` reads each client order id on its own: one it cannot read is its own.

Before, the first id whose read failed, or whose report raised, ended the whole look-up: a read
refused made it ConnectionFailed with nothing found (the ids after it never asked, those before
it read and reported but not returned), and a report that raised for an order not of unknown
outcome came out of ``lookup()`` as the raw exception (here a RuntimeError), which the cancel
checks and the reconciliation do not catch: the run ended. Now the others are read and answered,
and the look-up raises LookupIncomplete (a ConnectionFailed) carrying them and the ids it could
not read, which stay as they were (unknown, never absent). A read without an answer at all (here:
no request slot) ends the look-up there: each id after it would wait as long. Real alpaca-py
against SimulatedAlpaca, the trade stream silent (only the look-up reports).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca_helpers import collect, drain, inject, of
from loguru import logger
from ml4t.backtest import OrderSide, OrderType
from unknown_support import ATTEMPTS

from ml4t_live.errors import ConnectionFailed, LookupIncomplete
from ml4t_live.events import OrderAccepted, OrderCancelled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.executions import ExecutionReader
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

CIDS = ["t-1", "t-2", "t-3"]


def three_resting(sim: SimulatedAlpaca, gw: AlpacaGateway) -> dict[str, str]:
    """t-1, t-2, t-3 rest (limit 50, the market near 100), accepted; then the trade stream goes
    silent and another client cancels t-3 (its end reaches the gateway only by the look-up).
    Their Alpaca ids."""
    for cid in CIDS:
        gw.place(OrderRequest(cid, "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    collect(gw.events, lambda seen: all(of(OrderAccepted, seen, cid) for cid in CIDS))
    drain(gw.events)
    inject(sim, "silence_trade_stream")
    ids = {o["client_order_id"]: o["id"] for o in sim.orders()}
    TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).cancel_order_by_id(ids["t-3"])
    return ids


class BreaksFor(ExecutionReader):
    """Our execution reader, raising when it reads the view of Alpaca order ``order_id`` (a report
    that breaks on one order), until ``order_id`` is None."""

    def __init__(self, reader: ExecutionReader, order_id: str) -> None:
        super().__init__(reader.rest, reader.tracker)
        self.order_id: str | None = order_id

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> Any:
        if str(order.id) == self.order_id:
            raise RuntimeError("a report that breaks")
        return super().for_view(client, order, adopting=adopting)


def test_a_refused_read_of_one_order_leaves_the_others_read(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """Failed before: ConnectionFailed (not LookupIncomplete), nothing found, t-3 never asked."""
    ids = three_resting(sim, gw)
    inject(sim, "order_read_error", order_id=ids["t-2"], count=ATTEMPTS)  # t-2's read: 503 after every retry
    with pytest.raises(LookupIncomplete, match="could not read 1 of 3 .* look-up of t-2 got no answer") as caught:
        gw.lookup(CIDS)
    assert set(caught.value.unread) == {"t-2"}
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-1": "open", "t-3": "cancelled"}
    seen = drain(gw.events)
    assert [e.client_order_id for e in of(OrderCancelled, seen)] == ["t-3"]  # reported by the look-up
    assert {cid: o.status for cid, o in gw.lookup(CIDS).items()} == {"t-1": "open", "t-2": "open",
                                                                     "t-3": "cancelled"}  # fmt: skip


def test_a_report_that_raises_for_one_order_leaves_it_unread_and_the_others_read(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Failed before: the RuntimeError out of ``lookup()`` (t-3 never asked). Now t-2 is unread
    (an ERROR line with the traceback), t-1 and t-3 answered, t-3's end reported; t-2 stays as it
    was, and the next look-up reads it."""
    ids = three_resting(sim, gw)
    reader = gw.stream.executions = BreaksFor(gw.stream.executions, ids["t-2"])
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="ERROR")
    try:
        with pytest.raises(LookupIncomplete, match="look-up of t-2 found it, but its report failed") as caught:
            gw.lookup(CIDS)
    finally:
        logger.remove(sink)
    assert isinstance(caught.value, ConnectionFailed) and set(caught.value.unread) == {"t-2"}
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-1": "open", "t-3": "cancelled"}
    assert any("look-up of t-2 found it" in line and "RuntimeError: a report that breaks" in line for line in lines)
    assert [e.client_order_id for e in of(OrderCancelled, drain(gw.events))] == ["t-3"]
    reader.order_id = None
    assert gw.lookup(["t-2"])["t-2"].status == "open"


def test_a_read_without_a_request_slot_ends_the_look_up(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """No request slot for t-1's read: t-2 and t-3 are not asked (nothing sent), all unread."""
    three_resting(sim, gw)
    gw.bucket.hold_until(time.monotonic() + 60.0)  # (as after a 429: no slot within request_timeout)
    sent = sim.state()["rest_requests"]
    with pytest.raises(LookupIncomplete, match="t-2 not asked") as caught:
        gw.lookup(CIDS)
    assert caught.value.found == {} and list(caught.value.unread) == CIDS
    assert "no Alpaca request slot" in caught.value.unread["t-1"]
    assert sim.state()["rest_requests"] == sent
