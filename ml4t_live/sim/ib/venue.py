"""Account and order state of the simulated gateway, on top of the shared matching core.

Threading rule: an :class:`IBVenue` lives on the gateway's loop and is touched only there.

The venue turns IB requests (placeOrder, cancelOrder) into :class:`~ml4t_live.sim.matching.SimExchange`
calls; the exchange's events become the IB messages a real gateway sends, in IB's order, in
:mod:`.order_messages` (accepted, fill, cancel or expiry, rejection). The venue itself answers:

* late cancel (``cancel_reply`` "late", IB-18): out of the matching core at once (it cannot
  fill), but until the confirmation (``Cancelled`` + 202, ``seconds`` later) the order lists
  as working with status ``PendingCancel`` (reqOpenOrders / reqAllOpenOrders) and is not a
  completed order (reqCompletedOrders), as IB keeps it until it confirms; IB acting on the
  cancel by itself (``acts_on_cancel``, the gateway's ``venue_cancels``) confirms it at once
* refusals: cancel of an unknown id 10147, of a finished order 10148 (with its state;
  ``PendingCancel`` while a late cancel's confirmation is still on its way); a
  placeOrder reusing a finished order's id 104 (filled, same contract) or 103

Messages go out through a :class:`VenueSink` (the server), addressed by client id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from loguru import logger

from ..matching import (
    OrderCanceled,
    OrderNotCancelable,
    OrderNotReplaceable,
    OrderRejected,
    SimExchange,
    UnknownOrder,
)
from . import encoders as enc
from .admission import (
    MISSING_EXCHANGE,
    intent_of,
    margin_problem,
    marks,
    missing_exchange,
    working_intent,
)
from .contracts import ContractBook, SymbolInfo
from .decoders import PlaceOrder
from .faults import OrderFaults
from .margin import AccountModel, Intent, what_if_margins
from .order_faults import RequestFaults
from .order_messages import OrderMessages
from .order_records import IBOrder, OrderReceived, VenueSink
from .orders import OrderRefused, to_spec, what_if_view, working_status

__all__ = ["IBOrder", "IBVenue", "OrderReceived", "VenueSink"]
_log = logger.bind(component="sim.ib.venue")
PERM_ID_BASE = 1_870_000_000


class IBVenue:
    def __init__(
        self,
        exchange: SimExchange,
        book: ContractBook,
        account: str,
        sink: VenueSink,
        now: Callable[[], datetime | None],
    ) -> None:
        self.exchange = exchange
        self.book = book
        self.account = account
        self._sink = sink
        self._now = now
        self.orders: dict[tuple[int, int], IBOrder] = {}
        self._by_sim: dict[int, IBOrder] = {}
        self._staged: dict[int, list[tuple[PlaceOrder, SymbolInfo]]] = {}
        # every execution and finished order of the replay (the gateway's views); the wire
        # reports those of the current trading day only (see new_day)
        self.executions: list[enc.ExecView] = []
        self.completed: list[enc.OrderView] = []
        self._day_starts_at = (0, 0)  # today's first index in executions, completed
        self.received: list[OrderReceived] = []
        self.traded: set[str] = set()
        self.next_faults = OrderFaults()
        self.request_faults = RequestFaults()
        self._perm = PERM_ID_BASE
        #: a price for symbols not traded yet (the last history close), for the margin check
        self.reference_price: Callable[[str], float | None] = lambda symbol: None
        #: the account type IB's pre-trade margin check and the margin numbers follow
        self.account_model = AccountModel()
        self._messages = OrderMessages(
            sink, now, by_sim=self._by_sim, executions=self.executions, completed=self.completed,
            traded=self.traded,
        )  # fmt: skip

    # ------------------------------------------------------------------ requests
    def place(self, client_id: int, req: PlaceOrder) -> None:
        existing = self.orders.get((client_id, req.order_id))
        self._record(client_id, req, modify=existing is not None and not existing.done)
        if existing is not None:
            same = existing.view.info.symbol == req.contract.symbol.upper()
            if existing.done and same and existing.view.completed_status == "Filled":
                self._error(client_id, req.order_id, 104, "Can't modify a filled order")
            elif existing.done:
                self._error(client_id, req.order_id, 103, "Duplicate order id")
            else:
                self._modify(existing, req)
            return
        refusal = None if req.what_if else self.request_faults.refuse_place(
            client_id, req.order_id, req.order_ref)  # fmt: skip
        if refusal is not None:
            if refusal.code:
                self._error(client_id, req.order_id, refusal.code, refusal.text)
            elif refusal.surface_after is not None:  # the black hole lets it through, later
                asyncio.get_running_loop().call_later(
                    refusal.surface_after, self._place_new, client_id, req)  # fmt: skip
            return
        self._place_new(client_id, req)

    def _place_new(self, client_id: int, req: PlaceOrder) -> None:
        if missing_exchange(req):
            self._error(client_id, req.order_id, 321, MISSING_EXCHANGE)
            return
        info = self.book.resolve(
            req.contract.con_id, req.contract.symbol, req.contract.sec_type,
            req.contract.currency, req.contract.exchange,
        )  # fmt: skip
        if info is None:
            self._error(client_id, req.order_id, 200, enc.NO_DEFINITION)
            return
        if req.what_if:
            self._what_if(client_id, req, info)
            return
        if not req.transmit:
            self._staged.setdefault(client_id, []).append((req, info))
            return
        staged = self._staged.pop(client_id, [])
        keep = [s for s in staged if not self._same_group(s[0], req)]
        if keep:
            self._staged[client_id] = keep
        for sreq, sinfo in [s for s in staged if self._same_group(s[0], req)]:
            self._submit(client_id, sreq, sinfo)
        self._submit(client_id, req, info)

    def cancel(self, client_id: int, order_id: int) -> None:
        staged = self._staged.get(client_id, [])
        for i, (sreq, _) in enumerate(staged):
            if sreq.order_id == order_id:
                del staged[i]
                return
        ibo = self.orders.get((client_id, order_id))
        scripted = self.request_faults.cancel_reply()
        if scripted and scripted[0] == "lost":  # no answer, the order works on
            _log.info("cancel of order {} of client {} lost: never answered", order_id, client_id)
            return
        if ibo is None or ibo.sim_id is None or (scripted and scripted[0] == "10147"):
            self._error(client_id, order_id, 10147,
                        f"OrderId {order_id} that needs to be cancelled is not found.")  # fmt: skip
            return
        if ibo.done or ibo.cancel_pending or (scripted and scripted[0] == "10148"):
            # IB's word for an order whose cancel it has not confirmed yet (a second cancel)
            state = "PendingCancel" if ibo.cancel_pending else ibo.view.completed_status or ibo.view.status
            self._error(client_id, order_id, 10148, f"OrderId {order_id} that needs to be "
                        f"cancelled cannot be cancelled, state: {state}.")  # fmt: skip
            return
        try:
            _, events = self.exchange.cancel(ibo.sim_id)
        except (UnknownOrder, OrderNotCancelable) as exc:
            self._error(client_id, order_id, 10148,
                        f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                        f"state: {exc}")  # fmt: skip
            return
        if scripted and scripted[0] == "late":
            self._cancel_late(events, scripted[1])
            return
        self.apply(events)

    def _cancel_late(self, events: list[object], seconds: float) -> None:
        """A late cancel (IB-18): out of the matching core at once (nothing fills), but listed
        working as ``PendingCancel`` and not completed until IB confirms ``seconds`` later."""
        for ibo in self._cancelled_by(events):
            ibo.cancel_pending, ibo.late_cancel, ibo.view.status = True, events, "PendingCancel"
        self._sink.later(seconds, self._confirm_late_cancel, events)

    def _confirm_late_cancel(self, events: list[object]) -> None:
        for ibo in self._cancelled_by(events):
            ibo.cancel_pending = False
        self.apply(events)

    def _cancelled_by(self, events: list[object]) -> list[IBOrder]:
        return [ibo for e in events if isinstance(e, OrderCanceled)
                and (ibo := self._by_sim.get(e.order.order_id)) is not None and not ibo.done]  # fmt: skip

    def acts_on_cancel(self, ibo: IBOrder) -> None:
        """IB cancels a working order by itself (no client's request: no scripted reply); one
        whose late cancel it holds is confirmed now, with the orders that cancel took along (the
        late confirmation then finds them done). Raises ValueError for an order not at the
        exchange yet, and the exchange's UnknownOrder / OrderNotCancelable for one it cannot
        cancel (e.g. filling)."""
        if ibo.cancel_pending:
            self._confirm_late_cancel(ibo.late_cancel)
            return
        if ibo.sim_id is None:
            raise ValueError(f"order {ibo.view.order_id} is not at the exchange yet: nothing to cancel")
        _, events = self.exchange.cancel(ibo.sim_id)
        self.apply(events)

    def cancel_all(self) -> None:
        for ibo in list(self.orders.values()):
            if not ibo.done and not ibo.cancel_pending and ibo.sim_id is not None:
                self.cancel(ibo.view.client_id, ibo.view.order_id)

    # ------------------------------------------------------------------ exchange events
    def apply(self, events: list[object]) -> None:
        """Send the IB messages of the matching core's ``events`` (see :mod:`.order_messages`)."""
        self._messages.apply(events)

    def new_day(self) -> None:
        """A new trading date: like TWS, reqExecutions and reqCompletedOrders now report only
        what happens from here on (the earlier days' stay in the gateway's views)."""
        self._day_starts_at = (len(self.executions), len(self.completed))

    # ------------------------------------------------------------------ views
    def executions_today(self) -> list[enc.ExecView]:
        return self.executions[self._day_starts_at[0] :]

    def completed_today(self) -> list[enc.OrderView]:
        return self.completed[self._day_starts_at[1] :]

    def open_orders(self, client_id: int | None) -> list[enc.OrderView]:
        return [
            o.view for o in self.orders.values()
            if not o.done and o.sim_id is not None
            and (client_id is None or client_id == 0 or o.view.client_id == client_id)
        ]  # fmt: skip

    def positions(self) -> list[tuple[SymbolInfo, float, float]]:
        out = []
        for asset, (qty, cost) in sorted(self.exchange.positions.items()):
            info = self.book.by_symbol(asset)
            if info is not None:
                out.append((info, qty, cost))
        return out

    # ------------------------------------------------------------------ internals
    def _record(self, client_id: int, req: PlaceOrder, modify: bool) -> None:
        self.received.append(OrderReceived(
            client_id, req.order_id, req.order_ref, req.action, req.quantity, req.order_type,
            req.lmt_price, req.aux_price, req.parent_id, req.oca_group, req.transmit, modify,
            self._now(), time.perf_counter_ns(), req,
        ))  # fmt: skip

    @staticmethod
    def _same_group(staged: PlaceOrder, req: PlaceOrder) -> bool:
        parent = req.parent_id or req.order_id
        return staged.order_id == parent or staged.parent_id == parent

    def _submit(self, client_id: int, req: PlaceOrder, info: SymbolInfo) -> None:
        parent = self.orders.get((client_id, req.parent_id)) if req.parent_id else None
        oca = req.oca_group or (f"bracket:{client_id}:{req.parent_id}" if req.parent_id else None)
        self._perm += 1
        view = enc.OrderView(
            order_id=req.order_id, client_id=client_id, perm_id=self._perm, info=info,
            exchange=req.contract.exchange or "SMART", action=req.action.upper(),
            total_quantity=req.quantity, order_type=req.order_type.upper(),
            lmt_price=req.lmt_price, aux_price=req.aux_price, tif=req.tif.upper(),
            oca_group=req.oca_group, account=req.account or self.account,
            order_ref=req.order_ref, parent_id=req.parent_id, outside_rth=req.outside_rth,
            status="PreSubmitted", oca_type=req.oca_type,
        )  # fmt: skip
        ibo = IBOrder(view, faults=self.next_faults.take())
        self.orders[(client_id, req.order_id)] = ibo
        if req.parent_id and (parent is None or parent.sim_id is None):
            self._messages.reject_now(ibo, f"parent order {req.parent_id} is unknown")
            return
        try:
            spec = to_spec(req, parent.sim_id if parent else None, oca)
        except OrderRefused as exc:
            self._messages.reject_now(ibo, str(exc))
            return
        problem = self.margin_problem(intent_of(req, info.symbol))
        if problem is not None:
            self._messages.reject_now(ibo, problem)
            return
        sim_order, events = self.exchange.submit(spec)
        ibo.sim_id = sim_order.order_id
        self._by_sim[sim_order.order_id] = ibo
        rejected = any(isinstance(e, OrderRejected) for e in events)
        if not rejected:
            view.status = working_status(view.order_type, sim_order.status == "held")
            if view.order_type == "TRAIL" and view.aux_price is not None:
                last = self.exchange.last_price(info.symbol)
                if last is not None:
                    sign = -1 if view.action == "SELL" else 1
                    view.trail_stop_price = last + sign * view.aux_price
        self._messages.ack(ibo)
        self.apply(events)

    def margin_problem(self, order: Intent, skip: IBOrder | None = None) -> str | None:
        """IB's pre-trade margin check of ``order`` against this account (see ``margin.py``)."""
        ex = self.exchange  # its open orders only: the cost follows what works, not the history
        working = [
            working_intent(ibo.view) for o in ex.open_orders()
            if o.status != "held" and (ibo := self._by_sim.get(o.order_id)) is not None
            and ibo is not skip and not ibo.done
        ]  # fmt: skip
        positions = {a: q for a, (q, _) in ex.positions.items()}
        prices = marks(ex, self.reference_price, {order.asset, *positions, *(w.asset for w in working)})
        return margin_problem(self.account_model, order, positions, working, prices, ex.equity)

    def _what_if(self, client_id: int, req: PlaceOrder, info: SymbolInfo) -> None:
        """whatIf: an openOrder with the margin numbers of the account model after the order."""
        ex, order = self.exchange, intent_of(req, info.symbol)
        positions = {a: q for a, (q, _) in ex.positions.items()}
        prices = marks(ex, self.reference_price, {order.asset, *positions})
        numbers = what_if_margins(self.account_model, positions, order, prices, ex.equity)
        self._sink.send(client_id, [enc.open_order(what_if_view(req, info, client_id, self.account, numbers))])

    def _modify(self, ibo: IBOrder, req: PlaceOrder) -> None:
        v = ibo.view
        changes: dict[str, float] = {}
        if req.quantity != v.total_quantity:
            changes["quantity"] = req.quantity
        if req.lmt_price != v.lmt_price and req.lmt_price is not None:
            changes["limit_price"] = req.lmt_price
        if req.aux_price != v.aux_price and req.aux_price is not None:
            key = "trail_amount" if v.order_type == "TRAIL" else "stop_price"
            changes[key] = req.aux_price
        if req.order_type.upper() != v.order_type:
            self._error(v.client_id, v.order_id, 201, "Order rejected - reason:changing the "
                        "order type of a working order is not supported")  # fmt: skip
            return
        if changes.get("quantity", 0.0) > v.total_quantity:  # a larger order: IB checks it again
            problem = self.margin_problem(intent_of(req, v.info.symbol, v.filled), skip=ibo)
            if problem is not None:
                self._error(v.client_id, v.order_id, 201, f"Order rejected - reason:{problem}")
                return
        try:
            assert ibo.sim_id is not None
            _, events = self.exchange.replace(ibo.sim_id, **changes)
        except (UnknownOrder, OrderNotReplaceable) as exc:
            self._error(v.client_id, v.order_id, 201, f"Order rejected - reason:{exc}")
            return
        v.lmt_price, v.aux_price = req.lmt_price, req.aux_price
        v.order_ref = req.order_ref or v.order_ref
        self.apply(events)

    def _error(self, client_id: int, req_id: int, code: int, text: str) -> None:
        self._sink.send(client_id, [enc.error(req_id, code, text)])
