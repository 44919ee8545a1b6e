"""The fills of an order still working at a restart that happened while no runtime ran.

On connect the gateway adopts the open orders of ours Alpaca lists: the tracker takes what each
has filled as reported (only later executions become events). The runtime's book holds what its
journal recorded; a part that filled while nobody listened is in neither the journal nor (being
adopted) a later event. At the warm restart the broker asks for it
(:meth:`~.gateway.AlpacaGateway.executions_since` with the book's filled quantity): the order's
FILL activities beyond that quantity, under Alpaca's execution ids, oldest first, which the broker
applies once, as it applies the executions IB's snapshot carries. When the activities cannot be
read, the missing quantity is one execution under a made-up id ``<order id>:<cumulative qty>``
priced from the average fill prices, with a WARNING: unknown is never read as empty.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from ...errors import VenueError
from ...events import OrderFilled, OrderPartiallyFilled
from .parsing import fill_price_delta, made_up_exec_id, num, side_from_alpaca

_log = logger.bind(component="alpaca.away")
_EPS = 1e-9


def fills_while_away(
    reader: Any, client: Any, order: Any, ours: str, filled: float, avg_price: float | None
) -> list[OrderFilled | OrderPartiallyFilled]:
    """The executions of the listed ``order`` (our ``ours``) beyond ``filled`` (what the book has,
    at ``avg_price``) up to what the listing shows it filled (later ones are the tracker's to
    report), read with ``reader`` (:class:`~.executions.ExecutionReader`)."""
    venue_filled = num(order.filled_qty) or 0.0
    if venue_filled <= filled + _EPS:
        return []
    order_id = str(order.id)
    if order.replaces is not None:  # its filled quantity leaves out what the orders it replaced filled
        _log.warning("Alpaca order {} ({}) replaced an earlier order: what it filled while away is not "
                     "read at the restart (the position reconciliation shows it)", order_id, ours)  # fmt: skip
        return []
    try:
        found = reader.read(client, order_id, venue_filled, order.submitted_at or order.created_at)
    except VenueError as exc:
        _log.warning("cannot read the executions of Alpaca order {} ({}) ({}): what it filled while "
                     "away gets a made-up execution id", order_id, ours, exc)  # fmt: skip
        found = []
    total = num(order.qty)
    out: list[OrderFilled | OrderPartiallyFilled] = []
    done_to = filled
    for ex in found:
        if ex.cum_qty <= done_to + _EPS or ex.cum_qty > venue_filled + _EPS:
            continue  # the book has it, or it came after the listing (the stream reports it)
        out.append(_event(order, ours, ex.exec_id, ex.cum_qty - done_to, ex.price, ex.time, ex.cum_qty, total))
        done_to = ex.cum_qty
    if venue_filled > done_to + _EPS:  # not covered by the activities read
        price = fill_price_delta(done_to, _avg_after(filled, avg_price, out), venue_filled,
                                 num(order.filled_avg_price))  # fmt: skip
        made_up = _event(order, ours, made_up_exec_id(order_id, venue_filled), venue_filled - done_to,
                         price or 0.0, order.updated_at, venue_filled, total, reconstructed=True)  # fmt: skip
        _log.warning("{:g} of Alpaca order {} ({}) filled while away without a known execution: "
                     "reported under the made-up execution id {}", made_up.quantity, order_id, ours,
                     made_up.exec_id)  # fmt: skip
        out.append(made_up)
    return out


def _avg_after(filled: float, avg_price: float | None, events: list[Any]) -> float | None:
    qty, value = filled, filled * (avg_price or 0.0)
    for e in events:
        qty, value = qty + e.quantity, value + e.quantity * e.price
    return value / qty if qty > _EPS else None


def _event(
    order: Any, ours: str, exec_id: str, quantity: float, price: float, when: Any, cumulative: float,
    total: float | None, *, reconstructed: bool = False,
) -> OrderFilled | OrderPartiallyFilled:
    done = total is not None and cumulative >= total - _EPS
    cls = OrderFilled if done else OrderPartiallyFilled
    return cls(client_order_id=ours, exec_id=exec_id, asset=order.symbol or "", side=side_from_alpaca(order.side),
               quantity=quantity, price=price, timestamp=when, cumulative_quantity=cumulative,
               reconstructed=reconstructed)  # fmt: skip
