"""Account and order state of the simulated gateway, on top of the shared matching core.

Threading rule: an :class:`IBVenue` lives on the gateway's loop and is touched only there.

The venue turns IB requests (placeOrder, cancelOrder) into :class:`~ml4t_live.sim.matching.SimExchange`
calls and the exchange's events into the IB messages a real gateway sends, in IB's order:

* accepted: openOrder + orderStatus (``Submitted``; ``PreSubmitted`` for stops and held children)
* fill: execDetails (reqId -1) -> openOrder + orderStatus ``Filled`` (or orderStatus with the
  partial quantities) -> commissionReport -> position / portfolio / account updates
* cancel or expiry: orderStatus ``Cancelled`` -> error 202
* late cancel (``cancel_reply`` "late", IB-18): out of the matching core at once (it cannot
  fill), but until the confirmation (``Cancelled`` + 202, ``seconds`` later) the order lists
  as working with status ``PendingCancel`` (reqOpenOrders / reqAllOpenOrders) and is not a
  completed order (reqCompletedOrders), as IB keeps it until it confirms
* rejection: error 201 -> openOrder + orderStatus ``Inactive``
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
    OrderActivated,
    OrderCanceled,
    OrderExecuted,
    OrderExpired,
    OrderNotCancelable,
    OrderNotReplaceable,
    OrderRejected,
    OrderReplaced,
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
from .order_faults import RequestFaults, commission_frames, status_repeats
from .order_records import IBOrder, OrderReceived, VenueSink
from .orders import OrderRefused, ib_side, to_spec, what_if_view, working_status

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
        late confirmation then finds them done)."""
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
                    self._ack(ibo)

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
            self._reject_now(ibo, f"parent order {req.parent_id} is unknown")
            return
        try:
            spec = to_spec(req, parent.sim_id if parent else None, oca)
        except OrderRefused as exc:
            self._reject_now(ibo, str(exc))
            return
        problem = self.margin_problem(intent_of(req, info.symbol))
        if problem is not None:
            self._reject_now(ibo, problem)
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
        self._ack(ibo)
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

    def _ack(self, ibo: IBOrder) -> None:
        """openOrder + orderStatus for the order's current state."""
        frames = [enc.open_order(ibo.view)]
        if not ibo.faults.missing_order_status:
            frames.append(enc.order_status(ibo.view))
            frames += status_repeats(ibo.view, ibo.faults, with_open_order=True)
        if ibo.faults.exec_before_open_order and not ibo.exec_seen:
            ibo.held_acks = frames  # only the latest state matters
            return
        self._sink.send(ibo.view.client_id, frames, ibo.faults.ack_delay)

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
            exec_id=f"0000{v.perm_id:08x}.{len(self.executions) + 1:08x}.01.01",
            order_id=v.order_id, client_id=v.client_id, perm_id=v.perm_id, info=v.info,
            time=x.timestamp, account=v.account, side=ib_side(x.side), shares=x.quantity,
            price=x.price, cum_qty=x.cumulative_quantity, avg_price=v.avg_fill_price,
            order_ref=v.order_ref, commission=x.commission,
            exchange=v.info.primary_exchange,
        )  # fmt: skip
        self.executions.append(ex)
        self.traded.add(v.info.symbol)
        execs = [enc.exec_details(-1, ex)] * (2 if ibo.faults.duplicate_exec_details else 1)
        status = ibo.held_acks + ([enc.open_order(v)] if full else [])
        if not ibo.faults.missing_order_status:
            status.append(enc.order_status(v))
            status += status_repeats(v, ibo.faults, with_open_order=full)
        ibo.held_acks, ibo.exec_seen = [], True
        first_status = ibo.faults.status_before_exec and not ibo.faults.exec_before_open_order
        frames = status + execs if first_status else execs + status
        now, later = commission_frames(ex, ibo.faults)
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
            self._reject_now(ibo, reason)

    def _reject_now(self, ibo: IBOrder, reason: str) -> None:
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

    def _finish(self, ibo: IBOrder, status: str) -> None:
        ibo.done = True
        ibo.held_acks = []
        now = self._now()
        ibo.view.completed_time = now.strftime("%Y%m%d %H:%M:%S") if now else ""
        ibo.view.completed_status = status
        self.completed.append(ibo.view)

    def _error(self, client_id: int, req_id: int, code: int, text: str) -> None:
        self._sink.send(client_id, [enc.error(req_id, code, text)])
