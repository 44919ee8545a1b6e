"""OrderTracker: our orders at IB, keyed by client order id (``orderRef``), on the session loop.

Turns ib_async's order callbacks into ml4t_live events on the loop's queue:

* fills from ``execDetails`` + ``commissionReport`` (``orderStatus`` is not guaranteed): one event per
  execution id, ever (duplicates and replays are dropped); the event is put when the commission
  report arrives, or after ``IBConfig.commission_wait`` without it;
* ``OrderAccepted`` on the first PreSubmitted / Submitted; ``OrderCancelled`` on Cancelled;
  ``OrderRejected`` (IB's code and text) when an error ends the order or it turns Inactive;
* ``OrderReplaced`` when IB echoes a modification.

After a reconnect ib_async has forgotten every Trade; :meth:`resync` rebuilds the map from the
startup sync, replays executions we missed, and settles orders that ended (or vanished) meanwhile.
Nothing is ever re-sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ib_async import Contract, Trade
from ib_async.objects import CommissionReport, Fill
from loguru import logger

from ...errors import ConnectionFailed, ReconciliationError, VenueError
from ...events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderReplaced,
    VenueErrorReported,
)
from ...protocols import AccountSnapshot, OrderRequest, VenueOrder
from .parsing import (
    account_totals,
    contract_for,
    fill_event,
    ib_order_from_request,
    is_paper_account,
    modified_order,
    position_from_ib,
    rejection_of,
    venue_order_from_trade,
)
from .session import IBSession

_log = logger.bind(component="ib.orders")
_TOL = 1e-9
# Errors about a refused cancel: the order itself is unchanged at IB.
CANCEL_FAILED_CODES = frozenset({"161", "10147", "10148", "10149"})


@dataclass(slots=True)
class _PendingFill:
    client_order_id: str
    fill: Fill
    cumulative: float
    total: float
    timer: asyncio.TimerHandle | None


class OrderTracker:
    def __init__(self, session: IBSession) -> None:
        self.session = session
        self.ib = session.ib
        self._trades: dict[str, Trade] = {}
        self._known: set[str] = set()
        self._terminal: set[str] = set()
        self._accepted: set[str] = set()
        self._seen_exec: set[str] = set()
        self._cum: dict[str, float] = {}
        self._pending: dict[str, _PendingFill] = {}
        self._modifying: dict[str, OrderRequest] = {}
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
        self._cum.setdefault(coid, 0.0)
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
            self._flush_reported(coid)
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
            self._flush_reported(coid)
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
        self._record_exec(coid, fill, float(trade.order.totalQuantity), wait=True)

    def _record_exec(self, coid: str, fill: Fill, total: float, *, wait: bool) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._seen_exec:
            return
        self._seen_exec.add(exec_id)
        self._cum[coid] = self._cum.get(coid, 0.0) + float(fill.execution.shares)
        pending = _PendingFill(coid, fill, self._cum[coid], total, None)
        if wait and not fill.commissionReport.execId:
            self._pending[exec_id] = pending
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(
                self.session.config.commission_wait, self._flush, exec_id
            )
        else:
            self._emit_fill(pending)

    def _on_commission(
        self, _trade: Trade, fill: Fill, _report: CommissionReport
    ) -> None:
        self._flush(fill.execution.execId)

    def _flush_reported(self, coid: str) -> None:
        """Put pending fills of ``coid`` whose commission report already arrived.

        When execDetails comes before the openOrder that announces the permId, ib_async stores
        the commission on the Fill but cannot fire commissionReportEvent for it.
        """
        for exec_id, pending in list(self._pending.items()):
            if pending.client_order_id == coid and pending.fill.commissionReport.execId:
                self._flush(exec_id)

    def _flush(self, exec_id: str) -> None:
        pending = self._pending.pop(exec_id, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        if not pending.fill.commissionReport.execId:
            _log.warning(
                "no commission report for execution {} within the wait; reported as 0",
                exec_id,
            )
        self._emit_fill(pending)

    def _emit_fill(self, p: _PendingFill) -> None:
        event = fill_event(
            p.fill,
            client_order_id=p.client_order_id,
            cumulative_quantity=p.cumulative,
            total_quantity=p.total,
        )
        if isinstance(event, OrderFilled):
            self._terminal.add(p.client_order_id)
            self._modifying.pop(p.client_order_id, None)
        self.session.put(event)

    # ------------------------------------------------------------------ sync
    def snapshot(self, account: str) -> AccountSnapshot:
        """The account as ib_async's startup sync left it; adopts our open orders."""
        ib = self.ib
        try:
            cash, equity = account_totals(ib.accountValues(account), account)
        except KeyError as exc:
            raise ReconciliationError(
                f"IB reported no {exc.args[0]}; cannot value the account. If the gateway manages "
                "several accounts, set IBConfig.account"
            ) from None
        positions = {}
        for p in ib.positions(account):
            vp = position_from_ib(p)
            if vp.asset in positions:
                raise ReconciliationError(
                    f"IB reports two positions for {vp.asset} in {account}"
                )
            positions[vp.asset] = vp
        open_orders: list[VenueOrder] = []
        for trade in ib.openTrades():
            vo = venue_order_from_trade(trade)
            if vo is None:
                self._report_foreign(trade)
                continue
            if any(o.client_order_id == vo.client_order_id for o in open_orders):
                raise ReconciliationError(
                    f"two live IB orders carry orderRef {vo.client_order_id}; refusing to trade"
                )
            self._adopt(vo.client_order_id, trade)
            open_orders.append(vo)
        executions = self._session_executions()
        return AccountSnapshot(
            account_id=account,
            is_paper=is_paper_account(account),
            cash=cash,
            equity=equity,
            positions=positions,
            open_orders=open_orders,
            executions=executions,
        )

    def _adopt(self, coid: str, trade: Trade) -> None:
        self._known.add(coid)
        self._trades[coid] = trade
        if trade.orderStatus.status in ("PreSubmitted", "Submitted"):
            self._accepted.add(coid)

    def _report_foreign(self, trade: Trade) -> None:
        o = trade.order
        key = o.permId or o.orderId
        if key in self._foreign:
            return
        self._foreign.add(key)
        text = (
            f"foreign open order {o.orderId} ({o.action} {o.totalQuantity} {trade.contract.symbol} "
            f"{o.orderType}) has no client order id; it is reported and never touched"
        )
        _log.warning(text)
        self.session.put(VenueErrorReported("ib", "foreign-order", text))

    def _session_executions(self) -> list[OrderFilled | OrderPartiallyFilled]:
        """Today's executions of orders with a client order id, as events; marks them seen."""
        totals = {
            t.order.permId: float(t.order.totalQuantity) for t in self.ib.trades()
        }
        out = []
        cum: dict[str, float] = {}
        for fill in sorted(self.ib.fills(), key=lambda f: f.time):
            coid = fill.execution.orderRef
            if not coid:
                continue
            cum[coid] = cum.get(coid, 0.0) + float(fill.execution.shares)
            total = totals.get(fill.execution.permId, cum[coid])
            out.append(
                fill_event(
                    fill,
                    client_order_id=coid,
                    cumulative_quantity=cum[coid],
                    total_quantity=total,
                )
            )
            self._seen_exec.add(fill.execution.execId)
            self._known.add(coid)
            self._cum[coid] = max(self._cum.get(coid, 0.0), cum[coid])
        return out

    def resync(self) -> int:
        """After a reconnect: re-map our orders, replay missed executions, settle vanished orders.

        Returns the number of replayed executions.
        """
        by_ref: dict[str, Trade] = {}
        for trade in self.ib.trades():
            coid = trade.order.orderRef
            if coid and coid in self._known:
                current = by_ref.get(coid)
                if current is None or current.isDone():
                    by_ref[coid] = trade
        for coid, trade in by_ref.items():
            self._trades[coid] = trade
        replayed = 0
        for fill in sorted(self.ib.fills(), key=lambda f: f.time):
            coid = fill.execution.orderRef
            if coid in self._known and fill.execution.execId not in self._seen_exec:
                trade = by_ref.get(coid)
                total = (
                    float(trade.order.totalQuantity)
                    if trade
                    else float(fill.execution.cumQty)
                )
                self._record_exec(coid, fill, total, wait=False)
                replayed += 1
        for coid in sorted(self._known - self._terminal):
            trade = by_ref.get(coid)
            if trade is None:
                self._finish(
                    coid,
                    OrderRejected(
                        coid,
                        "order not found at IB after reconnect; it was not re-sent",
                        "lost",
                    ),
                )
            elif trade.isDone():
                self._settle_done(coid, trade)
        return replayed

    def detach(self) -> None:
        for handle in self._pending.values():
            if handle.timer is not None:
                handle.timer.cancel()
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
