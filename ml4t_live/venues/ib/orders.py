"""OrderTracker: our orders at IB, keyed by client order id (``orderRef``), on the session loop.

Turns ib_async's order callbacks into ml4t_live events on the loop's queue:

* fills through :class:`~.fills.FillReporter` (one event per execution id, ever, with its
  commission);
* ``OrderAccepted`` on the first PreSubmitted / Submitted; ``OrderCancelled`` on Cancelled;
  ``OrderRejected`` (IB's code and text) when an error ends the order or it turns Inactive;
* ``OrderReplaced`` when IB echoes a modification.

Placing, modifying and cancelling happen here too. ``snapshot`` (after connect) and ``resync``
(after a reconnect: re-map, replay missed executions, settle vanished orders; nothing is ever
re-sent) come from the :class:`~.sync.OrderSync` mixin.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ib_async import Contract, Trade
from ib_async.objects import CommissionReport, Fill
from loguru import logger

from ...errors import ConnectionFailed, VenueError
from ...events import (
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    VenueErrorReported,
)
from ...protocols import OrderRequest
from .fills import FillReporter
from .parsing import contract_for, ib_order_from_request, modified_order, rejection_of
from .session import IBSession
from .sync import OrderSync

_log = logger.bind(component="ib.orders")
# Errors about a refused cancel: the order itself is unchanged at IB.
CANCEL_FAILED_CODES = frozenset({"161", "10147", "10148", "10149"})


class OrderTracker(OrderSync):
    """Our orders at IB and their events; lives on the session loop (see the module docstring)."""

    def __init__(self, session: IBSession) -> None:
        self.session = session
        self.ib = session.ib
        self._trades: dict[str, Trade] = {}
        self._known: set[str] = set()
        self._terminal: set[str] = set()
        self._accepted: set[str] = set()
        self._modifying: dict[str, OrderRequest] = {}
        self._fills = FillReporter(session, self._filled)
        self._contracts: dict[str, Contract] = {}
        self._foreign: set[int] = set()  # foreign open orders already reported
        ib = self.ib
        ib.orderStatusEvent += self._on_status
        ib.openOrderEvent += self._on_open_order
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission

    # ------------------------------------------------------------------ commands
    async def place(self, request: OrderRequest) -> None:
        coid = request.client_order_id
        if coid in self._known:
            _log.warning("order {} was already sent; not sending it twice", coid)
            return
        self.session.require_connected(f"order {coid}")
        parent_id = 0
        if request.parent_client_order_id:
            parent = self._trades.get(request.parent_client_order_id)
            if parent is None:
                raise VenueError(
                    f"order {coid}: parent {request.parent_client_order_id} is unknown at IB; "
                    "place the parent first"
                )
            parent_id = parent.order.orderId
        try:
            contract = await self._contract(request.asset)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(
                f"order {coid} was not sent: looking up {request.asset} at IB failed ({exc!r})"
            ) from exc
        if contract is None:
            self._known.add(coid)
            self._finish(
                coid,
                OrderRejected(
                    coid, f"IB does not know the contract {request.asset!r}", "200"
                ),
            )
            return
        try:
            order = ib_order_from_request(
                request, account=self.session.account, parent_order_id=parent_id
            )
        except ValueError as exc:
            raise VenueError(f"order {coid} cannot be expressed for IB: {exc}") from exc
        self._known.add(coid)
        try:
            trade = self.ib.placeOrder(contract, order)
        except ConnectionError as exc:  # raised before any byte was written: not sent
            self._known.discard(coid)
            raise ConnectionFailed(f"order {coid} was not sent: {exc}") from exc
        self._fills.cumulative.setdefault(coid, 0.0)
        self._trades[coid] = trade
        _log.debug("placed {} as IB order {}", coid, order.orderId)

    async def modify(self, request: OrderRequest) -> None:
        coid = request.client_order_id
        trade = self._live_trade(coid, "modify")
        self.session.require_connected(f"modify of {coid}")
        self._modifying[coid] = request
        self.ib.placeOrder(trade.contract, modified_order(trade.order, request))

    async def cancel(self, client_order_id: str) -> None:
        trade = self._trades.get(client_order_id)
        if trade is None:
            raise VenueError(f"cannot cancel {client_order_id}: no such order at IB")
        if trade.isDone() or client_order_id in self._terminal:
            return
        self.session.require_connected(f"cancel of {client_order_id}")
        self.ib.cancelOrder(trade.order)

    async def end_of_bar(self, timeout: float) -> bool:
        """reqCurrentTime on this connection: the simulator's step-mode "caught up" signal.

        Returns False (nothing sent) while disconnected; the gateway sends it after the reconnect.
        """
        if not self.session.connected:
            return False
        try:
            await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), timeout)
        except (ConnectionError, TimeoutError) as exc:  # the socket died under it
            _log.warning(
                "end-of-bar signal not confirmed ({!r}); resent after a reconnect", exc
            )
            return False
        return True

    def _live_trade(self, coid: str, what: str) -> Trade:
        trade = self._trades.get(coid)
        if trade is None:
            raise VenueError(f"cannot {what} {coid}: no such order at IB")
        if trade.isDone() or coid in self._terminal:
            raise VenueError(f"cannot {what} {coid}: it is {trade.orderStatus.status}")
        return trade

    async def _contract(self, asset: str) -> Contract | None:
        contract = self._contracts.get(asset)
        if contract is None:
            cfg = self.session.config
            found = await asyncio.wait_for(
                self.ib.qualifyContractsAsync(
                    contract_for(asset, cfg.exchange, cfg.currency)
                ),
                cfg.request_timeout,
            )
            contract = found[0] if found and isinstance(found[0], Contract) else None
            if contract is not None:
                self._contracts[asset] = contract
        return contract

    # ------------------------------------------------------------------ ib_async callbacks
    def _ours(self, trade: Trade) -> str | None:
        coid = trade.order.orderRef
        return coid if coid and coid in self._known else None

    def _on_status(self, trade: Trade) -> None:
        coid = self._ours(trade)
        if coid is not None:
            self._fills.flush_reported(coid)
        if coid is None or coid in self._terminal:
            return
        status = trade.orderStatus.status
        if status in ("PreSubmitted", "Submitted") and coid not in self._accepted:
            self._accepted.add(coid)
            self.session.put(
                OrderAccepted(coid, str(trade.order.permId or trade.order.orderId))
            )
        elif status in ("Cancelled", "ApiCancelled", "Inactive"):
            self._settle_done(coid, trade)

    def _settle_done(self, coid: str, trade: Trade) -> None:
        status = trade.orderStatus.status
        rejection = rejection_of(trade)
        if rejection is not None and rejection[0] in CANCEL_FAILED_CODES:
            # ib_async marks the trade Cancelled on any error, but a refused cancel leaves the
            # order as it was (usually it just filled): wait for the venue's own news.
            _log.warning("cancel of {} refused by IB: {} {}", coid, *rejection)
            self.session.put(VenueErrorReported("ib", rejection[0], rejection[1], coid))
        elif rejection is not None:
            code, text = rejection
            self._finish(coid, OrderRejected(coid, text, code))
        elif status == "Inactive":
            self._finish(
                coid, OrderRejected(coid, "order is Inactive at IB", "Inactive")
            )
        elif status in ("Cancelled", "ApiCancelled"):
            self._finish(coid, OrderCancelled(coid, f"{status} at IB"))

    def _finish(self, coid: str, event: object) -> None:
        self._terminal.add(coid)
        self._modifying.pop(coid, None)
        self.session.put(event)

    def _on_open_order(self, trade: Trade) -> None:
        coid = self._ours(trade)
        if coid is not None:
            self._fills.flush_reported(coid)
        request = self._modifying.get(coid) if coid else None
        if coid is None or request is None:
            return
        if _echoes(trade.order, request):
            del self._modifying[coid]
            self.session.put(
                OrderReplaced(
                    coid, request.quantity, request.limit_price, request.stop_price
                )
            )

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        coid = fill.execution.orderRef or trade.order.orderRef
        if not coid or coid not in self._known:
            _log.info(
                "execution {} of a foreign order (orderRef {!r}) ignored",
                fill.execution.execId,
                coid,
            )
            return
        self._fills.record(coid, fill, float(trade.order.totalQuantity), wait=True)

    def _on_commission(
        self, _trade: Trade, fill: Fill, _report: CommissionReport
    ) -> None:
        self._fills.flush(fill.execution.execId)

    def _filled(self, coid: str) -> None:
        """The order's last fill is being reported: it is finished."""
        self._terminal.add(coid)
        self._modifying.pop(coid, None)

    # ------------------------------------------------------------------ teardown
    def detach(self) -> None:
        self._fills.close()
        ib = self.ib
        ib.orderStatusEvent -= self._on_status
        ib.openOrderEvent -= self._on_open_order
        ib.execDetailsEvent -= self._on_exec
        ib.commissionReportEvent -= self._on_commission


def _echoes(order: Any, request: OrderRequest) -> bool:
    """Does IB's view of the order show the requested quantity and prices (a modify's ack)?"""

    def same(a: float, b: float | None) -> bool:
        return b is None or abs(float(a) - float(b)) < 1e-9

    aux = (
        request.trail_amount if request.trail_amount is not None else request.stop_price
    )
    return (
        same(order.totalQuantity, request.quantity)
        and same(order.lmtPrice, request.limit_price)
        and same(order.auxPrice, aux)
    )
