"""Shared set-up for the Alpaca tests of submits of unknown outcome: gateways whose submit's answer
was cut and whose look-up got no answer (the trade stream silent), execution readers that hold or
break the watcher's report, and the checks of what was reported. Real alpaca-py against
SimulatedAlpaca.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.models import Order
from alpaca.trading.requests import ReplaceOrderRequest
from alpaca_helpers import collect, config_for, drain, inject, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderFilled, OrderLost, OrderPartiallyFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.executions import ExecutionReader
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.unknown import UnknownOutcomes

DOCS = json.loads((Path(__file__).parents[2] / "resources" / "alpaca" / "alpaca_docs_examples.json").read_text())
WAIT = 10.0
ATTEMPTS = 4  # max_request_attempts (AlpacaConfig default): what one look-up retries


def fill_events(seen: list) -> list:
    return [e for e in seen if isinstance(e, OrderPartiallyFilled | OrderFilled)]


def unknown_half_filled(sim: SimulatedAlpaca, **config: Any) -> AlpacaGateway:
    """A connected gateway whose t-u (market 10, filled over two bars) is of unknown outcome, 5 of
    its 10 filled and not reported (the trade stream silent)."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))
    gw.connect()
    inject(sim, "silence_trade_stream")  # none of t-u's updates arrive
    inject(sim, "truncated_body")  # Alpaca takes t-u, the answer is cut
    inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
    inject(sim, "partial_fill", parts=2)
    gw.place(OrderRequest("t-u", "AAPL", OrderSide.BUY, 10))
    assert gw.follows_unknown("t-u")
    gw.rest("clock", gw._require().get_clock, repeatable=True)  # a bar: 5 of 10 fill
    assert len(sim.fills()) == 1
    return gw


def rest_reported_once(sim: SimulatedAlpaca, gw: AlpacaGateway, seen: list) -> list:
    """The rest of t-u fills and the silent stream's watchdog reports it: with what was ``seen``,
    10 in all, each once, under the venue's execution ids, nothing lost. Returns all seen."""
    gw.rest("clock", gw._require().get_clock, repeatable=True)  # the rest fills
    assert gw.stream.session.call(gw.stream.resync) > 0  # the silent stream's watchdog
    seen = seen + drain(gw.events)
    fills = fill_events(seen)
    assert [(f.exec_id, f.quantity, f.cumulative_quantity) for f in fills] == [
        (v.execution_id, 5, c) for v, c in zip(sim.fills(), (5, 10), strict=True)]
    assert isinstance(fills[-1], OrderFilled) and not of(OrderLost, seen)
    return seen


class HeldOnLoop(ExecutionReader):
    """Our execution reader, holding a read made on the trade stream's loop thread (the
    watcher's report) until the test releases it."""

    def __init__(self, reader: ExecutionReader) -> None:
        super().__init__(reader.rest, reader.tracker)
        self.inside, self.release = threading.Event(), threading.Event()

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> Any:
        if threading.current_thread().name.startswith("ml4t-alpaca-trade"):
            self.inside.set()
            assert self.release.wait(WAIT)
        return super().for_view(client, order, adopting=adopting)


class Waits(UnknownOutcomes):
    """Our unknown submits, telling the test when a caller starts waiting for another's claim."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.waiting = threading.Event()

    def wait_settled(self, client_order_id: str, timeout: float) -> bool:
        self.waiting.set()
        return super().wait_settled(client_order_id, timeout)


def limit(price: float) -> OrderRequest:
    return OrderRequest("t-a", "AAPL", OrderSide.BUY, 10, OrderType.LIMIT, limit_price=price)


def unknown_limit(sim: SimulatedAlpaca, price: float, **config: Any) -> AlpacaGateway:
    """A connected gateway (its unknown submits :class:`Waits`) whose t-a (buy 10, limit ``price``)
    is of unknown outcome; the trade stream delivers nothing. Closed again if that fails."""
    gw = AlpacaGateway(config_for(sim, order_poll_interval=300.0, **config), is_ours=lambda c: c.startswith("t-"))
    gw.stream.unknown = Waits(gw.stream.unknown.limit)
    try:
        gw.connect()
        inject(sim, "silence_trade_stream")
        inject(sim, "truncated_body")  # Alpaca takes t-a, the answer is cut
        inject(sim, "lookup_error", count=ATTEMPTS)  # and its look-up gets no answer
        gw.place(limit(price))
        assert gw.follows_unknown("t-a")
    except BaseException:
        gw.close()
        raise
    return gw


def replaced_unknown(sim: SimulatedAlpaca, **config: Any) -> tuple[AlpacaGateway, Any]:
    """A connected gateway whose t-a (limit 50, resting) is of unknown outcome and was replaced
    by another client with t-a.r1 (a chain of two); the trade stream delivers nothing."""
    gw = unknown_limit(sim, 50.0, **config)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    first = raw.get_order_by_client_id("t-a")
    r1 = raw.replace_order_by_id(first.id, ReplaceOrderRequest(limit_price=51.0, client_order_id="t-a.r1"))
    return gw, r1


def ours(sim: SimulatedAlpaca) -> list[tuple[str, Any]]:
    """The PATCH bodies Alpaca received from the gateway (the other client's t-a.r1 left out)."""
    return [(v, form) for v, form in sim.replaces_received() if form.client_order_id != "t-a.r1"]


class WatcherTick:
    """One tick of the watcher on the stream's loop thread, its report held until :meth:`done`."""

    def __init__(self, gw: AlpacaGateway) -> None:
        self.held = gw.stream.executions = HeldOnLoop(gw.stream.executions)
        self.errors: list[BaseException] = []

        def tick() -> None:
            try:
                gw.stream.session.call(gw.stream.resolve_unconfirmed, timeout=WAIT + 5)
            except BaseException as exc:  # noqa: BLE001  (asserted by done())
                self.errors.append(exc)

        self.thread = threading.Thread(target=tick, name="test-watcher-tick")
        self.thread.start()
        assert self.held.inside.wait(WAIT), "the watcher never reported t-a"

    def done(self) -> None:
        self.held.release.set()
        self.thread.join(WAIT + 10)
        assert not self.thread.is_alive() and not self.errors, self.errors


class NoActivitiesRaisesSecond(ExecutionReader):
    """Our execution reader without the activities (each fill reported under a made-up id), whose
    second read on the stream's loop thread raises: a report that breaks after the chain's first
    order was reported."""

    def __init__(self, reader: ExecutionReader) -> None:
        super().__init__(reader.rest, reader.tracker)
        self.reads = 0

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> Any:
        self.reads += 1
        if self.reads == 2:
            raise RuntimeError("a report that breaks")
        return None


def doc_order(**fields: Any) -> Order:
    """An Alpaca order in the documented shape (string numbers) with ``fields`` changed."""
    return Order(**{**DOCS["partial_then_fill"][0]["order"], **fields})


#: Alpaca's ids of t-a and of its replacement t-a.r1 in :func:`replaced_chain`
CHAIN_IDS = ("0a0a0a0a-0000-4000-8000-000000000001", "0a0a0a0a-0000-4000-8000-000000000002")


def replaced_chain() -> list[Order]:
    """t-a (10, limit) replaced after filling 4 at 50 by t-a.r1 (6), which filled 3 at 51: a chain
    as Alpaca's walk would read it."""
    old_id, new_id = CHAIN_IDS
    return [
        doc_order(id=old_id, client_order_id="t-a", qty="10", filled_qty="4", filled_avg_price="50",
                  status="replaced", replaced_by=new_id),
        doc_order(id=new_id, client_order_id="t-a.r1", qty="6", filled_qty="3", filled_avg_price="51",
                  status="partially_filled", replaces=old_id),
    ]  # fmt: skip


def unknown_oco(sim: SimulatedAlpaca, gw: AlpacaGateway, *, silent: bool = True, stop: float = 90.0) -> str:
    """10 AAPL bought; the exits t-tp (limit 120) / t-sl (stop 90) sent as one OCO that Alpaca
    takes but whose answer is cut, and whose look-up gets no answer (``silent``: nor does the
    trade stream report it; ``stop``: another stop price). The stop leg's Alpaca id."""
    gw.place(OrderRequest("t-entry", "AAPL", OrderSide.BUY, 10))
    gw.end_of_bar(None)
    collect(gw.events, lambda seen: bool(of(OrderFilled, seen, "t-entry")))
    if silent:
        inject(sim, "silence_trade_stream")
    inject(sim, "truncated_body")
    inject(sim, "lookup_error", count=ATTEMPTS)
    gw.place(OrderRequest("t-tp", "AAPL", OrderSide.SELL, 10, OrderType.LIMIT, limit_price=120.0, oca_group="g"))
    gw.place(OrderRequest("t-sl", "AAPL", OrderSide.SELL, 10, OrderType.STOP, stop_price=stop, oca_group="g"))
    assert gw.follows_unknown("t-tp")
    if not silent:  # the stream reports the take-profit (the leg's venue-chosen id is not ours yet)
        collect(gw.events, lambda seen: bool(of(OrderAccepted, seen, "t-tp")))
    drain(gw.events)
    raw = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url)
    (leg,) = raw.get_order_by_client_id("t-tp").legs
    return str(leg.id)


class BreakingReader(ExecutionReader):
    """Our execution reader, raising on every read while ``broken``; counts the reads."""

    def __init__(self, reader: ExecutionReader) -> None:
        super().__init__(reader.rest, reader.tracker)
        self.broken, self.reads = True, 0

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> Any:
        self.reads += 1
        if self.broken:
            raise RuntimeError("a report that always breaks")
        return super().for_view(client, order, adopting=adopting)


def looked_up_at(gw: AlpacaGateway, reader: BreakingReader, ticks: int) -> list[int]:
    """Run ``ticks`` ticks of the watcher (on its loop thread); the ticks (from 1) that read the
    order's executions, i.e. that found it and tried to report it."""
    at = []
    for n in range(1, ticks + 1):
        before = reader.reads
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        if reader.reads > before:
            at.append(n)
    return at


def asked_at(sim: SimulatedAlpaca, gw: AlpacaGateway, ticks: int) -> list[int]:
    """Run ``ticks`` ticks of the watcher (on its loop thread); the ticks (from 1) at which it sent
    Alpaca a request (a look-up, answered or not)."""
    at = []
    for n in range(1, ticks + 1):
        before = sim.state()["rest_requests"]
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        if sim.state()["rest_requests"] > before:
            at.append(n)
    return at
