"""OrderTracker: our orders at IB, keyed by client order id (``orderRef``), on the session loop.

Turns ib_async's order callbacks into ml4t_live events on the loop's queue:

* fills through :class:`~.fills.FillReporter` (one event per execution id, ever, with its
  commission);
* ``OrderAccepted`` on the first PreSubmitted / Submitted; ``OrderCancelled`` on Cancelled;
  ``OrderRejected`` (IB's code and text) when an error ends the order or it turns Inactive;
* ``OrderReplaced`` when IB echoes a modification, or with IB's own values when it refuses one
  (the broker took the change when it was sent).

Placing and modifying happen here too. Cancelling (a bounded wait for IB's answer,
``CancelRefused`` when IB refuses or the order filled first), IB's order errors and the orders IB
never answered (looked up by orderRef, :mod:`~.inflight`; found, or ``OrderLost``) come from the
:class:`~.outcomes.OrderOutcomes` mixin; ``snapshot`` (after connect) and ``resync`` (after a
reconnect: re-map, replay missed executions, settle vanished orders; nothing is ever re-sent)
from the :class:`~.sync.OrderSync` mixin.

Idempotent and monotone: repeated openOrder / orderStatus frames (IB-11) change nothing once an
order is accepted or finished; prices come from executions, never from ``avgFillPrice`` (a
repeated Filled status can carry 0). An ``Inactive`` status without a reason waits briefly
(``REASON_GRACE``) for IB's error so the rejection carries IB's text; ``Inactive`` held for a
short-sale locate is not final. Placing a client order id that is already known (sent by this
session, or found at IB after a restart) sends nothing and announces its state again (accepted,
fills by execution id, its end), so a caller waiting on it is settled.
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
    OrderLost,
    OrderRejected,
    OrderReplaced,
    VenueErrorReported,
)
from ...protocols import OrderRequest
from .fills import FillReporter
from .inflight import InFlightMonitor
from .outcomes import CANCEL_FAILED_CODES, OrderOutcomes
from .parsing import (
    contract_for,
    ib_order_from_request,
    modified_order,
    rejection_of,
    venue_order_from_trade,
)
from .refused_cancels import RefusedCancels
from .session import IBSession
from .sync import OrderSync

_log = logger.bind(component="ib.orders")
# How long an Inactive status without a reason waits for IB's error text (it follows at once).
REASON_GRACE = 0.5
_OUTCOMES = {OrderCancelled: "cancelled", OrderRejected: "rejected", OrderLost: "lost"}


class OrderTracker(OrderOutcomes, OrderSync):
    """Our orders at IB and their events; lives on the session loop (see the module docstring)."""

    def __init__(self, session: IBSession) -> None:
        self.session = session
        self.ib = session.ib
        self._trades: dict[str, Trade] = {}
        self._known: set[str] = set()
        self._terminal: set[str] = set()
        self._outcome: dict[str, str] = {}  # finished orders: filled / cancelled / rejected / lost
        self._final: dict[str, object] = {}  # ... the event that ended them (not fills)
        self._cancels: dict[str, asyncio.Future[str | None]] = {}  # cancel waits: refusal or None
        self._reason_wait: dict[str, asyncio.TimerHandle] = {}  # Inactive, IB's reason pending
        self._accepted: set[str] = set()
        self._modifying: dict[str, OrderRequest] = {}
        self._fills = FillReporter(session, self._filled)
        self._contracts: dict[str, Contract] = {}
        self._foreign: set[int] = set()  # foreign open orders already reported
        self._inflight = InFlightMonitor(session, self)
        self._own_cancels: set[str] = set()  # surfaced lost orders: the cancel sent, unanswered
        self._refused = RefusedCancels(session, self, self._inflight)  # refused cancels, undecided
        self._validating: set[str] = set()  # new orders IB answered with a warning, looked up
        ib = self.ib
        ib.orderStatusEvent += self._on_status
        ib.openOrderEvent += self._on_open_order
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error

    # ------------------------------------------------------------------ commands
    async def place(self, request: OrderRequest) -> None:
        coid = request.client_order_id
        if coid in self._known:
            _log.warning(
                "order {} was already sent ({}); not sending it twice, its state is announced "
                "again",
                coid,
                self._outcome.get(coid, "working"),
            )
            self._announce(coid)
            return
        self.session.require_connected(f"order {coid}")
        if self.session.degraded:  # IB-01: orders written during a 1100 window may go nowhere
            raise ConnectionFailed(
                f"order {coid} was not sent: IB reported its connectivity lost (1100) and has "
                "not restored it yet; retry after the BrokerReconnected event"
            )
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
        self.session.note_order_id(trade.order.orderId)
        self._inflight.placed(coid)
        _log.debug("placed {} as IB order {}", coid, trade.order.orderId)

    def _announce(self, coid: str) -> None:
        """Put again what IB said about ``coid`` (acceptance, fills, its end); consumers apply
        each execution once (by execution id), so this only settles an order still waiting."""
        trade = self._trades.get(coid)
        if coid in self._accepted and trade is not None:
            self.session.put(OrderAccepted(coid, str(trade.order.permId or trade.order.orderId)))
        for event in self._fills.reported.get(coid, []):
            self.session.put(event)
        final = self._final.get(coid)
        if final is not None:
            self.session.put(final)

    async def modify(self, request: OrderRequest) -> None:
        coid = request.client_order_id
        trade = self._live_trade(coid, "modify")
        self.session.require_connected(f"modify of {coid}")
        self._modifying[coid] = request
        self.ib.placeOrder(trade.contract, modified_order(trade.order, request))

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
        if coid in self._terminal:  # not trade.isDone(): ib_async marks a refused cancel Cancelled
            raise VenueError(f"cannot {what} {coid}: it is {self._outcome.get(coid, 'done')}")
        trade = self._trades.get(coid)  # (a finished order's may be gone after a reconnect)
        if trade is None:
            raise VenueError(f"cannot {what} {coid}: no such order at IB")
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
        if coid is None:
            return
        status = trade.orderStatus.status
        if status == "ValidationError" and coid not in self._accepted and coid not in self._terminal:
            self._validation_warned(coid)  # a warning (321, 399 ...) on an order IB never took
            return
        self._inflight.heard(coid)
        self._fills.flush_reported(coid)
        if status == "Filled":
            self._cancel_answered(coid, f"cannot cancel {coid}: IB filled it first")
        if coid in self._terminal and not self._surfaced(coid, trade):
            return
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
            # order as it was (usually it just filled): _on_error answers the cancel, the
            # venue's own news settles the order.
            return
        if rejection is not None and coid in self._modifying:
            self._modify_refused(coid, *rejection)
        elif rejection is not None:
            code, text = rejection
            self._finish(coid, OrderRejected(coid, text, code))
        elif status == "Inactive":
            if "locate" in (trade.orderStatus.whyHeld or "").lower():
                _log.info("{} is held for a short-sale locate; still working", coid)
            elif coid not in self._reason_wait:  # IB's error with the reason usually follows
                self._reason_wait[coid] = asyncio.get_running_loop().call_later(
                    REASON_GRACE, self._reject_without_reason, coid
                )
        elif status in ("Cancelled", "ApiCancelled"):
            self._finish(coid, OrderCancelled(coid, f"{status} at IB"))

    def _modify_refused(self, coid: str, code: str, text: str) -> None:
        """An error while a modification is pending refuses the modification, not the order
        (IB-19: 104 for an order that just filled). ib_async took the order as Cancelled, so IB
        is asked by orderRef what it really is (working, filled, cancelled)."""
        del self._modifying[coid]
        _log.warning("modify of {} refused by IB: {} {}", coid, code, text)
        unchanged = venue_order_from_trade(self._trades[coid]) if coid in self._trades else None
        if unchanged is not None:  # the broker took the change when it was sent: back to IB's order
            self.session.put(OrderReplaced(coid, unchanged.quantity, unchanged.limit_price, unchanged.stop_price))
        self.session.put(VenueErrorReported("ib", code, f"modify refused: {text}", coid))
        self.session.loop.spawn(self._settle_by_lookup(coid), f"after-refused-modify:{coid}")

    def _reject_without_reason(self, coid: str) -> None:
        self._reason_wait.pop(coid, None)
        if coid not in self._terminal:
            self._finish(
                coid,
                OrderRejected(coid, "order is Inactive at IB (IB gave no reason)", "Inactive"),
            )

    def _finish(self, coid: str, event: object) -> None:
        self._terminal.add(coid)
        self._outcome[coid] = _OUTCOMES.get(type(event), "finished")
        self._final[coid] = event
        self._modifying.pop(coid, None)
        timer = self._reason_wait.pop(coid, None)
        if timer is not None:
            timer.cancel()
        self._inflight.heard(coid)
        self._cancel_answered(
            coid,
            None
            if isinstance(event, OrderCancelled)
            else f"cannot cancel {coid}: it is {self._outcome[coid]} at IB",
        )
        self.session.put(event)

    def _on_open_order(self, trade: Trade) -> None:
        coid = self._ours(trade)
        if coid is not None:
            self._inflight.heard(coid)
            self._fills.flush_reported(coid)
            self._surfaced(coid, trade)
            if coid not in self._accepted and coid not in self._terminal:
                # IB has the order; its orderStatus may never come (IB-10), so this is the ack
                self._accepted.add(coid)
                self.session.put(
                    OrderAccepted(coid, str(trade.order.permId or trade.order.orderId))
                )
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
        self._inflight.heard(coid)
        if self._outcome.get(coid) == "lost" and fill.execution.execId not in self._fills.seen:
            _log.error("order {} was reported lost, yet IB reports its execution {} ({} @ {}); "
                       "the execution is reported, reconcile the position", coid,
                       fill.execution.execId, fill.execution.shares, fill.execution.price)  # fmt: skip
        total = float(trade.order.totalQuantity)
        self._fills.record(coid, fill, total, wait=True)
        if self._fills.cumulative.get(coid, 0.0) >= total - 1e-9:
            self._cancel_answered(coid, f"cannot cancel {coid}: IB filled it first")

    def _on_commission(
        self, _trade: Trade, fill: Fill, _report: CommissionReport
    ) -> None:
        self._fills.commission_arrived(fill)

    def _filled(self, coid: str) -> None:
        """The order's last fill is being reported: it is finished."""
        self._terminal.add(coid)
        self._outcome[coid] = "filled"
        self._modifying.pop(coid, None)
        self._inflight.heard(coid)
        self._cancel_answered(coid, f"cannot cancel {coid}: IB filled it first")

    # ------------------------------------------------------------------ teardown
    def detach(self) -> None:
        self._fills.close()
        self._inflight.stop()
        self._refused.stop()
        for timer in self._reason_wait.values():
            timer.cancel()
        ib = self.ib
        ib.errorEvent -= self._on_error
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
