"""The IB messages the matching core's events become, per order, in IB's order.

Threading rule: an :class:`OrderMessages` belongs to one :class:`~.venue.IBVenue`, lives on the
gateway's loop and is touched only there.

* accepted: openOrder + orderStatus (``Submitted``; ``PreSubmitted`` for stops and held children)
* fill: execDetails (reqId -1) -> openOrder + orderStatus ``Filled`` (or orderStatus with the
  partial quantities) -> commissionReport -> position / portfolio / account updates
* cancel or expiry: orderStatus ``Cancelled`` -> error 202
* rejection: error 201 -> openOrder + orderStatus ``Inactive``

An order's armed faults (:class:`~.faults.OrderFaults`) repeat, reorder, hold back or delay these
frames. Every execution and finished order is also appended to the venue's records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from loguru import logger

from ..matching import (
    OrderActivated,
    OrderCanceled,
    OrderExecuted,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
)
from . import encoders as enc
from .order_faults import commission_frames, status_repeats
from .order_records import IBOrder, VenueSink
from .orders import ib_side, working_status

_log = logger.bind(component="sim.ib.venue")


class OrderMessages:
    """Sends each order's messages through ``sink``; appends to the venue's records it is given:
    ``executions`` (every execution), ``completed`` (every finished order) and ``traded`` (the
    symbols with an execution). ``by_sim`` maps the matching core's order ids to the venue's
    orders (the venue fills it in)."""

    def __init__(
        self,
        sink: VenueSink,
        now: Callable[[], datetime | None],
        *,
        by_sim: dict[int, IBOrder],
        executions: list[enc.ExecView],
        completed: list[enc.OrderView],
        traded: set[str],
    ) -> None:
        self._sink = sink
        self._now = now
        self._by_sim = by_sim
        self._executions = executions
        self._completed = completed
        self._traded = traded

    def apply(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, OrderExecuted):
                self._executed(event)
            elif isinstance(event, (OrderCanceled, OrderExpired)):
                reason = event.reason if isinstance(event, OrderCanceled) else "expired"
                self._cancelled(event.order.order_id, "" if reason == "user" else reason)
            elif isinstance(event, OrderRejected):
                self._rejected(event.order.order_id, event.reason)
            elif isinstance(event, (OrderReplaced, OrderActivated)):
                ibo = self._by_sim.get(event.order.order_id)
                if ibo is not None and not ibo.done:
                    spec = event.order.spec
                    v = ibo.view
                    v.total_quantity = spec.quantity
                    v.status = working_status(v.order_type, event.order.status == "held")
                    self.ack(ibo)

    def ack(self, ibo: IBOrder) -> None:
        """openOrder + orderStatus for the order's current state."""
        frames = [enc.open_order(ibo.view)]
        if not ibo.faults.missing_order_status:
            frames.append(enc.order_status(ibo.view))
            frames += status_repeats(ibo.view, ibo.faults, with_open_order=True)
        if ibo.faults.exec_before_open_order and not ibo.exec_seen:
            ibo.held_acks = frames  # only the latest state matters
            return
        self._sink.send(ibo.view.client_id, frames, ibo.faults.ack_delay)

    def reject_now(self, ibo: IBOrder, reason: str) -> None:
        v = ibo.view
        v.status = "Inactive"
        frames = [enc.open_order(v)]
        if not ibo.faults.missing_order_status:
            frames.append(enc.order_status(v))
        rejected = enc.error(v.order_id, 201, f"Order rejected - reason:{reason}")
        order = [*frames, rejected] if ibo.faults.reject_status_first else [rejected, *frames]
        frames = ibo.held_acks + order
        self._finish(ibo, "Inactive")
        self._sink.send(v.client_id, frames, ibo.faults.ack_delay)

    def _executed(self, event: OrderExecuted) -> None:
        ibo = self._by_sim.get(event.order.order_id)
        if ibo is None:
            _log.warning("execution for unknown sim order {}", event.order.order_id)
            return
        x, v = event.execution, ibo.view
        v.filled = x.cumulative_quantity
        v.avg_fill_price = event.order.avg_fill_price or x.price
        v.last_fill_price = x.price
        full = x.remaining_quantity <= 1e-9
        v.status = "Filled" if full else "Submitted"
        ex = enc.ExecView(
            exec_id=f"0000{v.perm_id:08x}.{len(self._executions) + 1:08x}.01.01",
            order_id=v.order_id, client_id=v.client_id, perm_id=v.perm_id, info=v.info,
            time=x.timestamp, account=v.account, side=ib_side(x.side), shares=x.quantity,
            price=x.price, cum_qty=x.cumulative_quantity, avg_price=v.avg_fill_price,
            order_ref=v.order_ref, commission=x.commission,
            exchange=v.info.primary_exchange,
        )  # fmt: skip
        withheld = ibo.faults.withhold_executions and ibo.exec_seen  # lost: neither sent nor listed
        if not withheld:
            self._executions.append(ex)
        self._traded.add(v.info.symbol)
        execs = [] if withheld else [enc.exec_details(-1, ex)] * (2 if ibo.faults.duplicate_exec_details else 1)
        status = ibo.held_acks + ([enc.open_order(v)] if full else [])
        if not ibo.faults.missing_order_status:
            status.append(enc.order_status(v))
            status += status_repeats(v, ibo.faults, with_open_order=full)
        ibo.held_acks, ibo.exec_seen = [], True
        first_status = ibo.faults.status_before_exec and not ibo.faults.exec_before_open_order
        frames = status + execs if first_status else execs + status
        now, later = ([], []) if withheld else commission_frames(ex, ibo.faults)
        frames += now
        if full:
            self._finish(ibo, "Filled")
        self._sink.send(v.client_id, frames, ibo.faults.fill_delay)
        self._sink.positions_changed()
        for delay, frame in later:
            self._sink.send(v.client_id, [frame], ibo.faults.fill_delay + delay)

    def _cancelled(self, sim_id: int, reason: str) -> None:
        ibo = self._by_sim.get(sim_id)
        if ibo is None or ibo.done:
            return
        ibo.view.status = "Cancelled"
        frames = [] if ibo.faults.missing_order_status else [enc.order_status(ibo.view)]
        frames.append(enc.error(ibo.view.order_id, 202, f"Order Canceled - reason:{reason}"))
        self._finish(ibo, "Cancelled")
        self._sink.send(ibo.view.client_id, ibo.held_acks + frames, ibo.faults.ack_delay)

    def _rejected(self, sim_id: int, reason: str) -> None:
        ibo = self._by_sim.get(sim_id)
        if ibo is not None and not ibo.done:
            self.reject_now(ibo, reason)

    def _finish(self, ibo: IBOrder, status: str) -> None:
        ibo.done = True
        ibo.held_acks = []
        now = self._now()
        ibo.view.completed_time = now.strftime("%Y%m%d %H:%M:%S") if now else ""
        ibo.view.completed_status = status
        self._completed.append(ibo.view)
