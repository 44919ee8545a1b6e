"""A modify of a partly filled order asks Alpaca for what is left, never the order's total.

Alpaca's replace (PATCH /v2/orders/{id}) is a new order for the PATCH's ``qty`` (without one, the
old order's whole ``qty``) while the old order's fills stand (alpacahq/Alpaca-API#165): asking for
the total would trade the filled part again. Through the real alpaca-py client against
SimulatedAlpaca, with the trade stream silent (the fills so far known only from Alpaca).

Not exercised end to end here: the replacement itself. The simulator refuses to replace an order
whose fill its ``partial_fill`` fault split (its matching core cannot take back a remainder
already executing; see docs/simulators.md; test_alpaca_replacement_away.py replaces one filling
in parts over bars), so these tests read the PATCH the venue received
(``SimulatedAlpaca.replaces_received``) and the 422 that follows; the replacement's fills
counting on from the original's is shown on payloads in test_alpaca_parsing.py.
"""

from __future__ import annotations

import pytest
from alpaca_helpers import drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderFilled, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.rest import VenueRequestFailed
from ml4t_live.venues.alpaca.submit import OrderRefused


def _limit(price: float) -> OrderRequest:
    return OrderRequest("t-p", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=price)


def _fills(seen: list) -> list:
    return [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]


def _bar(gateway: AlpacaGateway) -> None:
    gateway.rest("clock", gateway._require().get_clock, repeatable=True)


def _partly_filled(sim: SimulatedAlpaca, gateway: AlpacaGateway) -> None:
    """t-p (limit 10 at 150, marketable: the market is near 100) fills 5 at the next bar, 5 at
    the one after; the trade stream says nothing once it is accepted."""
    inject(sim, "partial_fill", parts=2)
    gateway.place(_limit(150.0))
    assert len(of(OrderAccepted, drain(gateway.events), "t-p")) == 1
    inject(sim, "silence_trade_stream")
    _bar(gateway)  # 5 of 10 fill


def test_a_modify_of_a_partly_filled_order_asks_for_what_is_left(sim: SimulatedAlpaca, gateway: AlpacaGateway) -> None:
    """5 of 10 filled (unreported: the stream is silent): the modify re-reads the order, reports
    the 5 under the venue's execution id, then PATCHes qty 5 (was 10, the total: at Alpaca the
    replacement would buy 10 more, 15 in all)."""
    _partly_filled(sim, gateway)
    (first,) = sim.fills()
    with pytest.raises(VenueRequestFailed, match="partially filled"):  # the simulator's refusal
        gateway.modify(_limit(149.0))
    ((order_id, form),) = sim.replaces_received()
    assert (form.qty, form.limit_price, form.client_order_id) == (5, 149.0, "t-p.r1")
    assert order_id == gateway.tracker.venue_id_of("t-p")
    (partial,) = _fills(drain(gateway.events))  # reported before the PATCH, once
    assert (partial.exec_id, partial.quantity, partial.cumulative_quantity) == (first.execution_id, 5, 5)
    _bar(gateway)  # the rest fills
    assert gateway.stream.session.call(gateway.stream.resync) > 0
    (rest,) = _fills(drain(gateway.events))
    assert isinstance(rest, OrderFilled) and (rest.quantity, rest.cumulative_quantity) == (5, 10)


def test_a_modify_of_an_order_filled_meanwhile_sends_no_patch(sim: SimulatedAlpaca, gateway: AlpacaGateway) -> None:
    """All 10 filled while the stream was silent: the modify reports the fills and is refused
    before anything is sent (a PATCH with the total would have bought 10 more)."""
    _partly_filled(sim, gateway)
    _bar(gateway)  # the rest fills
    with pytest.raises(OrderRefused, match="nothing left"):
        gateway.modify(_limit(149.0))
    assert sim.replaces_received() == []
    fills = _fills(drain(gateway.events))
    assert [(f.quantity, f.cumulative_quantity) for f in fills] == [(5, 5), (5, 10)]
    assert [f.exec_id for f in fills] == [v.execution_id for v in sim.fills()]


def test_a_modify_subtracts_what_the_book_says_filled_when_alpacas_order_carries_less(
    sim: SimulatedAlpaca, gateway: AlpacaGateway
) -> None:
    """After a restart the snapshot adopts a working replacement ``t-p.r1`` with its own fills
    only (its predecessors' are not walked), while the runtime's book, journal-backed, knows the
    order filled more: 4 of 10 here, none on the order Alpaca now has. The PATCH asks for the 6
    left (was 10: Alpaca's new order for 10 plus the 4 standing, 14 traded for an order of 10)."""
    gateway.place(_limit(50.0))  # below the market: nothing fills
    assert len(of(OrderAccepted, drain(gateway.events), "t-p")) == 1
    booked = OrderRequest("t-p", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=51.0,
                          filled_quantity=4)  # fmt: skip
    gateway.modify(booked)
    ((_, form),) = sim.replaces_received()
    assert (form.qty, form.limit_price) == (6, 51.0)
    replacement = next(o for o in sim.orders() if o["client_order_id"] == "t-p.r1")
    assert float(replacement["qty"]) == 6
