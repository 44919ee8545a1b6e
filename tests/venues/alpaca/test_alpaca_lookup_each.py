"""The gateway's ``lookup`` reads each client order id on its own: one it cannot read is its own.

Before, the first id whose read failed, or whose report raised, ended the whole look-up: a read
refused made it ConnectionFailed with nothing found (the ids after it never asked, those before
it read and reported but not returned), and a report that raised for an order not of unknown
outcome came out of ``lookup()`` as the raw exception (here a RuntimeError), which the cancel
checks and the reconciliation do not catch: the run ended. Now the others are read and answered,
and the look-up raises LookupIncomplete (a ConnectionFailed) carrying them and the ids it could
not read, which stay as they were (unknown, never absent). A read that says the venue cannot be
asked now (no request slot, 429 beyond ``rate_limit_patience``) or a second read in a row ending
in a 5xx after the retries (an outage) ends the look-up there: each id after it would wait as
long (before, an outage or a 429 storm cost each id its own retries). Real alpaca-py against
SimulatedAlpaca, the trade stream silent (only the look-up reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import ReplaceOrderRequest
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


def resting(sim: SimulatedAlpaca, gw: AlpacaGateway, cids: list[str]) -> dict[str, str]:
    """``cids`` rest (limit 50, the market near 100), accepted; then the trade stream goes silent.
    Their Alpaca ids."""
    for cid in cids:
        gw.place(OrderRequest(cid, "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    collect(gw.events, lambda seen: all(of(OrderAccepted, seen, cid) for cid in cids))
    drain(gw.events)
    inject(sim, "silence_trade_stream")
    return {o["client_order_id"]: o["id"] for o in sim.orders()}


def three_resting(sim: SimulatedAlpaca, gw: AlpacaGateway) -> dict[str, str]:
    """t-1, t-2, t-3 rest (:func:`resting`); another client cancels t-3 (its end reaches the
    gateway only by the look-up). Their Alpaca ids."""
    ids = resting(sim, gw, CIDS)
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
    with pytest.raises(LookupIncomplete, match="could not read 1 of 3 .* look-up of t-2 failed: .* HTTP 503") as caught:
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


TEN = [f"t-{i}" for i in range(10)]


def test_an_outage_of_reads_ends_the_look_up_at_the_second_order_in_a_row_it_fails(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """Every read by id answers 503 (an outage). Failed before: each of the 10 ids read with all its
    retries (40 requests, ten times the wait, on the engine thread); now t-0 and t-1 (one 503 after
    the retries may be one order's, two in a row are the venue's), the 8 after them not asked."""
    resting(sim, gw, TEN)
    inject(sim, "order_read_error", count=10 * ATTEMPTS)
    sent = sim.state()["rest_requests"]
    with pytest.raises(LookupIncomplete, match=r"t-2 not asked \(Alpaca failed the reads of t-0, t-1 in a row\)") as caught:
        gw.lookup(TEN)
    assert caught.value.found == {} and list(caught.value.unread) == TEN
    assert "HTTP 503" in caught.value.unread["t-0"] and "HTTP 503" in caught.value.unread["t-1"]
    assert sim.state()["rest_requests"] - sent == 2 * ATTEMPTS


def test_server_errors_of_orders_not_in_a_row_leave_the_others_read(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """t-1 and t-3 each answer 503 after every retry, t-2 between them is read: each failure is its
    order's own, t-0, t-2 and t-4 are answered."""
    cids = TEN[:5]
    ids = resting(sim, gw, cids)
    for cid in ("t-1", "t-3"):
        inject(sim, "order_read_error", order_id=ids[cid], count=ATTEMPTS)
    with pytest.raises(LookupIncomplete, match="could not read 2 of 5") as caught:
        gw.lookup(cids)
    assert set(caught.value.unread) == {"t-1", "t-3"}
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-0": "open", "t-2": "open", "t-4": "open"}


def test_refused_reads_in_a_row_are_each_their_orders_own(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """t-0 and t-1 are refused 403 (a 4xx: Alpaca's answer about that order, never an outage), t-2
    after them is read. A mutant counting any status from 400 as a server error ended the look-up
    at t-1 (t-2 'not asked')."""
    ids = resting(sim, gw, TEN[:3])
    for cid in ("t-0", "t-1"):
        inject(sim, "order_read_error", order_id=ids[cid], count=1, status=403)
    with pytest.raises(LookupIncomplete, match="could not read 2 of 3") as caught:
        gw.lookup(TEN[:3])
    assert set(caught.value.unread) == {"t-0", "t-1"} and "look-up of t-0 failed: " in caught.value.unread["t-0"]
    assert "HTTP 403" in caught.value.unread["t-0"]  # (an answer: before, the look-up said it 'got no answer')
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-2": "open"}


def test_a_refused_read_between_two_server_errors_breaks_their_run(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """t-0 answers 503 after every retry, t-1 is refused 403, t-2 answers 503 after every retry:
    no two 5xx in a row, so t-3 is read. A mutant keeping the run of 5xx over a read failed
    otherwise ended the look-up at t-2 (t-3 'not asked')."""
    cids = TEN[:4]
    ids = resting(sim, gw, cids)
    inject(sim, "order_read_error", order_id=ids["t-0"], count=ATTEMPTS)
    inject(sim, "order_read_error", order_id=ids["t-1"], count=1, status=403)
    inject(sim, "order_read_error", order_id=ids["t-2"], count=ATTEMPTS)
    with pytest.raises(LookupIncomplete, match="could not read 3 of 4") as caught:
        gw.lookup(cids)
    assert set(caught.value.unread) == {"t-0", "t-1", "t-2"}
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-3": "open"}


def test_a_rate_limit_beyond_patience_ends_the_look_up(
    sim: SimulatedAlpaca, connect_gateway: Callable[..., AlpacaGateway]
) -> None:
    """A 429 storm, no patience: t-0's read answered 429 says the account may not ask now, so the
    9 after it are not asked (nothing sent). Failed before: the 429 counted as t-0's refusal, t-1
    asked (429 too), and the 8 after the storm read (each id asked in a storm waits up to
    ``rate_limit_patience``, 65 s by default, on the engine thread)."""
    gw = connect_gateway(rate_limit_patience=0.0)
    resting(sim, gw, TEN)
    inject(sim, "rate_limit_storm", count=2)
    sent = sim.state()["rest_requests"]  # (a storm's 429 is not counted)
    with pytest.raises(LookupIncomplete, match=r"t-1 not asked \(Alpaca could not be asked for t-0\)") as caught:
        gw.lookup(TEN)
    assert caught.value.found == {} and list(caught.value.unread) == TEN
    assert "HTTP 429" in caught.value.unread["t-0"]
    assert sim.state()["rest_requests"] == sent


def test_a_submit_of_unknown_outcome_whose_report_raises_is_unread_and_the_others_read(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    """t-a is a submit of unknown outcome (its answer cut, its look-up unanswered), t-b an order
    resting; t-a's report raises when the look-up finds it. It is not read (LookupIncomplete naming
    it), t-b is answered, and t-a stays of unknown outcome (its fills not counted) until a look-up
    whose report works settles it. Fails when the report's failure escapes ``lookup()`` as a
    ConnectionFailed for all (t-b's answer lost with it)."""
    resting(sim, gw, ["t-b"])
    inject(sim, "truncated_body")  # Alpaca takes t-a, the answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
    gw.place(OrderRequest("t-a", "AAPL", OrderSide.BUY, 1, OrderType.LIMIT, limit_price=50.0))
    assert gw.follows_unknown("t-a")
    ids = {o["client_order_id"]: o["id"] for o in sim.orders()}
    reader = gw.stream.executions = BreaksFor(gw.stream.executions, ids["t-a"])
    drain(gw.events)
    with pytest.raises(LookupIncomplete, match="look-up of t-a found it .a submit of unknown outcome., but its "
                       "report failed") as caught:  # fmt: skip
        gw.lookup(["t-a", "t-b"])
    assert list(caught.value.unread) == ["t-a"]
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-b": "open"}
    assert gw.follows_unknown("t-a") and not of(OrderAccepted, drain(gw.events), "t-a")
    reader.order_id = None
    assert {cid: o.status for cid, o in gw.lookup(["t-a", "t-b"]).items()} == {"t-a": "open", "t-b": "open"}
    assert not gw.follows_unknown("t-a") and of(OrderAccepted, drain(gw.events), "t-a")


def test_a_chain_that_cannot_be_followed_leaves_only_its_order_unread(sim: SimulatedAlpaca, gw: AlpacaGateway) -> None:
    """Another client replaced t-1, and Alpaca's read shows it replaced without naming its
    replacement (``replaced_by_late``): t-1's walk cannot go on, t-1 alone is unread, t-2 and t-3
    are read. Failed before: the walk's own error counted as the venue not answering, t-2 and t-3
    not asked."""
    ids = three_resting(sim, gw)
    other = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    other.replace_order_by_id(ids["t-1"], ReplaceOrderRequest(limit_price=51.0))
    inject(sim, "replaced_by_late")
    with pytest.raises(LookupIncomplete, match="could not read 1 of 3 .* look-up of t-1 found it, but .* names no replacement") as caught:
        gw.lookup(CIDS)
    assert set(caught.value.unread) == {"t-1"}
    assert {cid: o.status for cid, o in caught.value.found.items()} == {"t-2": "open", "t-3": "cancelled"}
    found = gw.lookup(["t-1"])["t-1"]  # (Alpaca names it now: the replacement, under our id)
    assert (found.status, found.limit_price) == ("open", 51.0)
