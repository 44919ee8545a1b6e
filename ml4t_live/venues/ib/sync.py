"""The (re)connect path of :class:`~.orders.OrderTracker`, as a mixin: adopt what IB's startup
sync reports, and after a reconnect catch up with what happened while we were away.

* :meth:`OrderSync.snapshot` - the account after connect: cash, equity, positions, our open orders
  (adopted, so their callbacks are ours) and today's executions (marked seen, never re-reported).
  A foreign open order (no ``orderRef``) is reported once and never touched.
* :meth:`OrderSync.resync` - after a reconnect ib_async has forgotten every Trade: re-map our
  orders from the startup sync, replay executions we missed (those of an order IB lists neither
  open to this client id nor completed are part fills: its quantity is unknown), settle orders
  that ended meanwhile, and drop the Trades of finished orders IB no longer reports (an earlier
  day's).
  An order the startup sync (open + completed orders + executions) does not know is ``OrderLost``
  (IB never took it, e.g. it was written in the second the gateway restarted). Nothing is ever
  re-sent.

Both note every order id of this client the venue reports, so the session never hands one out
again (a restarted gateway may roll ``nextValidId`` back).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ib_async import IB, Trade
from loguru import logger

from ...errors import ReconciliationError
from ...events import (
    OrderCancelled,
    OrderFilled,
    OrderLost,
    OrderPartiallyFilled,
    OrderRejected,
    VenueErrorReported,
)
from ...protocols import AccountSnapshot, VenueOrder
from .fills import FillReporter
from .parsing import (
    account_totals,
    fill_event,
    is_paper_account,
    position_from_ib,
    venue_order_from_trade,
)
from .session import IBSession

_log = logger.bind(component="ib.orders")


class OrderSync:
    """Mixed into ``OrderTracker``; the state and methods below are the tracker's."""

    session: IBSession
    ib: IB
    _trades: dict[str, Trade]  # client order id -> its IB trade
    _known: set[str]  # client order ids that are ours
    _terminal: set[str]  # ... already finished (an event said so)
    _outcome: dict[str, str]  # ... and how: filled / cancelled / rejected / lost
    _final: dict[str, object]  # ... and the event that said so (announced again on a re-place)
    _accepted: set[str]  # ... already reported accepted
    _foreign: set[int]  # foreign open orders already reported
    _fills: FillReporter
    _finish: Callable[[str, object], None]
    _settle_done: Callable[[str, Trade], None]

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
        self._settled_before({vo.client_order_id for vo in open_orders})
        self._note_venue_order_ids()
        return AccountSnapshot(
            account_id=account,
            is_paper=is_paper_account(account),
            cash=cash,
            equity=equity,
            positions=positions,
            open_orders=open_orders,
            executions=executions,
        )

    def _settled_before(self, live: set[str]) -> None:
        """Our orders that ended at IB before this connection (its completed orders): finished,
        so the same client order id is never placed again (IB does not enforce orderRef
        uniqueness); a later ``place`` of one announces how it ended."""
        for trade in self.ib.trades():
            coid = trade.order.orderRef
            if not coid or coid in live or coid in self._terminal or not trade.isDone():
                continue
            if coid in self._trades:  # ours this session: its own events settle it (ib_async
                continue  # also marks an order Cancelled on a refused cancel)
            status = trade.orderStatus.status
            self._known.add(coid)
            self._trades[coid] = trade
            if status == "Filled":
                self._terminal.add(coid)
                self._outcome[coid] = "filled"
            elif status == "Inactive":
                self._terminal.add(coid)
                self._outcome[coid] = "rejected"
                self._final[coid] = OrderRejected(coid, "rejected at IB before this session", "Inactive")
            else:
                self._terminal.add(coid)
                self._outcome[coid] = "cancelled"
                self._final[coid] = OrderCancelled(coid, f"{status} at IB before this session")

    def _note_venue_order_ids(self) -> None:
        """Every order id of this client the venue reported (orders and executions) is used."""
        me = self.session.client_id
        ids = [t.order.orderId for t in self.ib.trades() if t.order.clientId == me]
        ids += [f.execution.orderId for f in self.ib.fills() if f.execution.clientId == me]
        self.session.note_order_id(max(ids, default=0))

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
            # no order here (IB lists it neither open to this client id nor completed): its
            # quantity is unknown, so none of its executions completes it
            total = totals.get(fill.execution.permId, math.inf)
            out.append(
                fill_event(
                    fill,
                    client_order_id=coid,
                    cumulative_quantity=cum[coid],
                    total_quantity=total,
                )
            )
            self._fills.seen.add(fill.execution.execId)
            self._fills.reported.setdefault(coid, []).append(out[-1])
            self._known.add(coid)
            self._fills.cumulative[coid] = max(self._fills.cumulative.get(coid, 0.0), cum[coid])
            if isinstance(out[-1], OrderFilled):  # done before we connected: nothing to manage
                self._terminal.add(coid)
                self._outcome[coid] = "filled"
        return out

    def _forget_finished(self, reported: dict[str, Trade]) -> None:
        """Drop the ib_async Trades of our finished orders that IB no longer reports (an earlier
        day's, after the gateway's nightly restart): ib_async has dropped them too, and each
        (~150-field Order, events, fills, log) would otherwise live as long as the process.
        What a finished order still needs is kept: its outcome, final event and fills, so it is
        never placed again and a re-place announces how it ended."""
        for coid in [c for c in self._trades if c in self._terminal and c not in reported]:
            del self._trades[coid]

    def resync(self) -> int:
        """After a reconnect: re-map our orders, replay missed executions, settle vanished orders.

        Returns the number of replayed executions.
        """
        self._note_venue_order_ids()
        by_ref: dict[str, Trade] = {}
        for trade in self.ib.trades():
            coid = trade.order.orderRef
            if coid and coid in self._known:
                current = by_ref.get(coid)
                if current is None or current.isDone():
                    by_ref[coid] = trade
        for coid, trade in by_ref.items():
            self._trades[coid] = trade
        self._forget_finished(by_ref)
        replayed = 0
        for fill in sorted(self.ib.fills(), key=lambda f: f.time):
            coid = fill.execution.orderRef
            if coid in self._known and fill.execution.execId not in self._fills.seen:
                trade = by_ref.get(coid)
                # no trade (IB lists it neither open to this client id nor completed: it may work
                # on under another): its quantity is unknown, so none of its executions completes
                # it (an execution's cumQty is what the order filled so far, not its quantity)
                total = float(trade.order.totalQuantity) if trade else math.inf
                self._fills.record(coid, fill, total, wait=False)
                replayed += 1
        for coid in sorted(self._known - self._terminal):
            trade = by_ref.get(coid)
            executed = self._fills.cumulative.get(coid, 0.0) > 0
            if trade is None and coid in self._trades and not executed:
                reason = (
                    f"order {coid} is not among IB's open or completed orders or executions "
                    "after the reconnect; taken as not placed, not re-sent"
                )
                _log.error("order {} is LOST: {}", coid, reason)
                self._finish(coid, OrderLost(coid, reason))
            elif trade is not None and trade.isDone():
                self._settle_done(coid, trade)
        return replayed
