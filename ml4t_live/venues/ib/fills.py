"""FillReporter: IB executions -> ``OrderFilled`` / ``OrderPartiallyFilled``, each exactly once.

Fills come from ``execDetails`` + ``commissionReport`` (``orderStatus`` is not guaranteed): one event
per execution id, ever (duplicates and replays are dropped). The fill is final on ``execDetails``
(quantity, price, execution id); only its commission may wait: the event is put when a real
commission report arrives, or after ``IBConfig.commission_wait`` without one (commission 0, a
WARNING). A pending sentinel (-1, 1.7976931348623157E308, NaN) is not a commission: the wait goes
on for the corrected report (IB-13). A report that arrives after its fill was put is logged, not
applied. Runs on the session loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ib_async.objects import Fill
from loguru import logger

from ...events import OrderFilled, OrderPartiallyFilled
from .parsing import commission_known, fill_event
from .session import IBSession

_log = logger.bind(component="ib.orders")


@dataclass(slots=True)
class _PendingFill:
    client_order_id: str
    fill: Fill
    cumulative: float
    total: float
    timer: asyncio.TimerHandle | None


class FillReporter:
    """Executions of our orders, keyed by execution id; ``on_filled(coid)`` runs before the last
    fill of an order is put."""

    def __init__(self, session: IBSession, on_filled: Callable[[str], None]) -> None:
        self.session = session
        self._on_filled = on_filled
        self.seen: set[str] = set()  # execution ids already reported (or replayed in a snapshot)
        self.cumulative: dict[str, float] = {}  # client order id -> quantity reported so far
        # client order id -> its fill events (put, or listed in a snapshot), to announce again
        self.reported: dict[str, list[OrderFilled | OrderPartiallyFilled]] = {}
        self._pending: dict[str, _PendingFill] = {}

    def record(self, coid: str, fill: Fill, total: float, *, wait: bool) -> None:
        """A new execution of ``coid``: put it now, or when its commission report arrives."""
        exec_id = fill.execution.execId
        if exec_id in self.seen:
            return
        self.seen.add(exec_id)
        self.cumulative[coid] = self.cumulative.get(coid, 0.0) + float(fill.execution.shares)
        pending = _PendingFill(coid, fill, self.cumulative[coid], total, None)
        if wait and not commission_known(fill):
            self._pending[exec_id] = pending
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(
                self.session.config.commission_wait, self.flush, exec_id
            )
        else:
            self._emit_fill(pending)

    def flush_reported(self, coid: str) -> None:
        """Put pending fills of ``coid`` whose commission report already arrived.

        When execDetails comes before the openOrder that announces the permId, ib_async stores
        the commission on the Fill but cannot fire commissionReportEvent for it.
        """
        for exec_id, pending in list(self._pending.items()):
            if pending.client_order_id == coid and commission_known(pending.fill):
                self.flush(exec_id)

    def commission_arrived(self, fill: Fill) -> None:
        """A commissionReport for ``fill``: put its pending fill if the amount is real."""
        exec_id = fill.execution.execId
        if exec_id in self._pending:
            if commission_known(fill):
                self.flush(exec_id)
            else:
                _log.info("execution {}: pending commission sentinel {!r}; waiting for the real "
                          "report", exec_id, fill.commissionReport.commission)  # fmt: skip
        elif exec_id in self.seen and commission_known(fill):
            _log.info("commission {} for execution {} arrived after its fill was reported; "
                      "not applied", fill.commissionReport.commission, exec_id)  # fmt: skip

    def flush(self, exec_id: str) -> None:
        """Put the pending fill ``exec_id`` (its commission arrived, or the wait is over)."""
        pending = self._pending.pop(exec_id, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        if not commission_known(pending.fill):
            _log.warning(
                "no commission report for execution {} within the wait; reported as 0",
                exec_id,
            )
        self._emit_fill(pending)

    def close(self) -> None:
        """Stop the commission-wait timers (the tracker is detaching)."""
        for handle in self._pending.values():
            if handle.timer is not None:
                handle.timer.cancel()

    def _emit_fill(self, p: _PendingFill) -> None:
        event = fill_event(
            p.fill,
            client_order_id=p.client_order_id,
            cumulative_quantity=p.cumulative,
            total_quantity=p.total,
        )
        self.reported.setdefault(p.client_order_id, []).append(event)
        if isinstance(event, OrderFilled):
            self._on_filled(p.client_order_id)
        self.session.put(event)
