"""One Alpaca order's tracked state (:class:`Tracked`) and the fill events a view or the
executions of it make beyond what was reported: the :class:`~.tracker.OrderTracker`'s arithmetic.
No I/O and no lock: the tracker calls these under its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.models import Order as AlpacaOrder

from ...events import OrderEvent, OrderFilled, OrderPartiallyFilled
from ...quantities import EPS as _EPS
from .executions import Execution
from .parsing import fill_price_delta, made_up_exec_id, num, side_from_alpaca


@dataclass(slots=True)  # one per order of the run: no dict of its own
class Tracked:
    """What was reported of one Alpaca order of ours."""

    ours: str
    filled: float = 0.0
    avg_price: float | None = None
    base: float = 0.0  # filled by orders this one replaced
    successor: str | None = None  # the Alpaca id of the order that replaced this one
    replaced: bool = False  # Alpaca showed it ``replaced`` (the replace carried out)
    accepted: bool = False
    terminal: bool = False
    complete: bool = False  # terminal because fully filled
    #: the end of this order's replacement, taken as a replace not carried out (AL-14): our
    #: order's end after all if this order is shown ``replaced`` later by that replacement (named:
    #: kept while ``replaced_by`` is null), not by a later one (:meth:`~.undone_replaces.UndoneReplaces.end_when_replaced`)
    undone_end: OrderEvent | None = None
    undone_by: str | None = None  # the Alpaca id of that replacement (whose end undone_end is)
    #: its own end (canceled, expired, rejected) shown while its replacement was followed (the
    #: replace pending): our order's end if the replacement then ends too; the first view that
    #: shows it sets it, and it stays (the order is not followed again: ``replace_undone``)
    own_end: OrderEvent | None = None
    own_end_reported: bool = False  # own_end was reported as our order's end (once)


#: told (state, delta) when an order fills ``delta`` more: the bases of its replacements move on
Carry = Callable[[Tracked, float], None]


def view_fills(
    state: Tracked,
    order: AlpacaOrder,
    price: float | None,
    qty: float | None,
    exec_id: str | None,
    when: Any,
    carry: Carry,
) -> list[OrderEvent]:
    """What a view of ``order`` (its ``filled_qty``; a trade update's ``price``, ``qty`` and
    ``exec_id`` if any) shows filled beyond ``state``, as one event (a made-up execution id
    ``<order id>:<cumulative qty>`` without ``exec_id``); ``state`` moves on, ``carry`` is told
    the delta (the replacements' bases)."""
    cumulative = num(order.filled_qty)
    if cumulative is None:
        cumulative = state.filled + (qty or 0.0)
    delta = cumulative - state.filled
    if delta <= _EPS:
        return []
    avg = num(order.filled_avg_price)
    fill_price = price if (price and qty and abs(qty - delta) <= _EPS) else None
    if fill_price is None:
        fill_price = (
            fill_price_delta(state.filled, state.avg_price, cumulative, avg)
            or price
            or avg
        )
    carry(state, delta)
    state.filled, state.avg_price = cumulative, avg
    done = order.status is AlpacaStatus.FILLED or (
        num(order.qty) is not None and cumulative >= (num(order.qty) or 0.0) - _EPS
    )
    cls = OrderFilled if done else OrderPartiallyFilled
    state.accepted = True
    if done:
        state.terminal = state.complete = True
    return [
        cls(
            client_order_id=state.ours,
            exec_id=exec_id or made_up_exec_id(order.id, cumulative),
            asset=order.symbol or "",
            side=side_from_alpaca(order.side),
            quantity=delta,
            price=float(fill_price or 0.0),
            timestamp=when,
            cumulative_quantity=state.base + cumulative,
            reconstructed=exec_id is None,
            venue_order_id=str(order.id),
        )
    ]


def execution_fills(
    state: Tracked, order: AlpacaOrder, executions: list[Execution], exec_ids: set[str], carry: Carry
) -> list[OrderEvent]:
    """One event per execution of ``order`` beyond its reported cumulative quantity (each
    execution id once: ``exec_ids`` notes those reported); ``state`` moves on, ``carry`` is told
    each delta."""
    out: list[OrderEvent] = []
    total = num(order.qty)
    for ex in sorted(executions, key=lambda e: e.cum_qty):
        if ex.order_id != str(order.id) or ex.exec_id in exec_ids:
            continue
        delta = ex.cum_qty - state.filled
        if delta <= _EPS:
            continue
        prior, prior_avg = state.filled, state.avg_price or 0.0
        carry(state, delta)
        state.filled = ex.cum_qty
        state.avg_price = (prior_avg * prior + ex.price * delta) / ex.cum_qty
        exec_ids.add(ex.exec_id)
        whole = num(order.filled_qty) or 0.0
        done = (total is not None and ex.cum_qty >= total - _EPS) or (
            order.status is AlpacaStatus.FILLED and ex.cum_qty >= whole - _EPS
        )
        state.accepted = True
        if done:
            state.terminal = state.complete = True
        cls = OrderFilled if done else OrderPartiallyFilled
        out.append(
            cls(
                client_order_id=state.ours,
                exec_id=ex.exec_id,
                asset=order.symbol or "",
                side=side_from_alpaca(order.side),
                quantity=delta,
                price=ex.price,
                timestamp=ex.time,
                cumulative_quantity=state.base + ex.cum_qty,
                venue_order_id=str(order.id),
            )
        )
    if out and abs(state.filled - (num(order.filled_qty) or 0.0)) <= _EPS:
        state.avg_price = num(order.filled_avg_price)
    return out
