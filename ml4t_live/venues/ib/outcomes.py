"""The ends of an order that need more than a callback, as a mixin of
:class:`~.orders.OrderTracker`: a cancel and IB's answer to it, IB's order errors, and the orders IB
never answered (found or lost). Runs on the session loop.

* :meth:`OrderOutcomes.cancel` sends the cancel and waits at most ``IBConfig.cancel_wait`` (capped
  by ``request_timeout``) for the answer: confirmed -> returns; refused (10147 not found, 10148
  cannot be cancelled, 161) or the order filled first -> :class:`~ml4t_live.errors.CancelRefused`
  (after a look-up by orderRef, since ib_async takes a refused cancel as Cancelled: a fill that
  won is put before the refusal is raised). No answer in time -> the cancel stands as sent (a WARNING), its
  outcome arrives as events (IB-18: late acknowledgements happen). Asked again while IB has not
  answered (the broker re-sends a cancel unanswered for a while: IB-05 loses requests), it sends
  ``cancelOrder`` again: IB takes a cancel it never received as the first; one it is still
  working on gets 10148 "state: PendingCancel" -> ``CancelRefused``, the order's events decide.
  ib_async takes any refused cancel as the order's end (``Cancelled``) and then passes on none of
  IB's later news of it, so an order a refused cancel leaves undecided is settled from IB's 202
  ("Order Canceled") or followed with look-ups by orderRef (:mod:`~.refused_cancels`) until it is.
* :meth:`OrderOutcomes.cancel_many` - many cancels at once (a halt, cancel-all, the end of the run):
  all written first, the waits overlapping, one look-up by orderRef for the refused ones. One
  order's cancel that raises a bug (not IB's answer) is an ERROR with its traceback and that
  order's outcome is :class:`~ml4t_live.errors.CancelUnsure`; the other orders' answers stand.
* :meth:`OrderOutcomes._on_error` - errors ib_async cannot put on a trade: a refused cancel of an
  order it already took as done; the reason of a rejection whose 201 came after ``Inactive``.
* :meth:`OrderOutcomes.found` / :meth:`OrderOutcomes.lost` - the answers of the
  :class:`~.inflight.InFlightMonitor` (IB-09). A lost order that later turns up working is
  alerted (``VenueErrorReported`` ``lost-order-surfaced``), cancelled at once and followed again:
  its acceptance, fills and end are reported from then on (the runtime cancels and follows it
  too; its first cancel joins the one already sent, later ones really go out).
* :meth:`OrderOutcomes.lookup` - a restart's question "where are these client order ids?".
* A new order answered only with a warning code (321 ...; ib_async keeps it live as
  ``ValidationError``) is looked up once and, when IB does not list it, rejected with IB's text.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable

from ib_async import IB, Trade
from loguru import logger
from ml4t.backtest import OrderType

from ...errors import CancelRefused, CancelUnsure, ConnectionFailed, VenueError
from ...events import OrderCancelled, OrderLost, OrderRejected, VenueErrorReported
from ...protocols import VenueOrder
from .fills import FillReporter
from .inflight import Found, InFlightMonitor
from .parsing import (
    CANCEL_CONFIRMED,
    asset_of,
    is_warning,
    side_from_action,
    validation_warning,
    venue_order_from_trade,
)
from .refused_cancels import RefusedCancels
from .session import IBSession

_log = logger.bind(component="ib.orders")
# Errors about a refused cancel: the order itself is unchanged at IB.
CANCEL_FAILED_CODES = frozenset({"161", "10147", "10148", "10149"})


class OrderOutcomes:
    """Mixed into ``OrderTracker``; the state and methods below are the tracker's."""

    session: IBSession
    ib: IB
    _trades: dict[str, Trade]
    _known: set[str]
    _terminal: set[str]
    _outcome: dict[str, str]
    _cancels: dict[str, asyncio.Future[str | None]]
    _reason_wait: dict[str, asyncio.TimerHandle]
    _fills: FillReporter
    _finish: Callable[[str, object], None]
    _on_status: Callable[[Trade], None]
    _inflight: InFlightMonitor
    _final: dict[str, object]
    _own_cancels: set[str]
    _refused: RefusedCancels
    _validating: set[str]

    async def cancel(self, client_order_id: str) -> None:
        """Cancel and wait (bounded) for IB's answer; CancelRefused when IB refuses it or the
        order filled first. Without an answer in time the cancel stands as sent."""
        refusal = await self._cancel_answer(client_order_id)
        if refusal is None:
            return
        if client_order_id not in self._terminal:
            await self._settle_by_lookup(client_order_id)
        raise CancelRefused(refusal)

    async def cancel_many(self, client_order_ids: list[str]) -> dict[str, Exception | None]:
        """Cancel these orders together: every cancel is written before any answer is awaited,
        the waits overlap (about one ``cancel_wait`` for all), and the refused ones take ONE
        look-up by orderRef together. Per order: None (taken, as :meth:`cancel` returning) or
        what :meth:`cancel` would have raised (CancelRefused, VenueError ...); a bug in one
        order's cancel: CancelUnsure for it (an ERROR with the traceback), the others unaffected."""
        coids = list(dict.fromkeys(client_order_ids))
        queued = queue_seconds(self.session.config.max_requests_per_second)
        answers = await asyncio.gather(*(self._cancel_answer(c, queued(i)) for i, c in enumerate(coids)),
                                       return_exceptions=True)  # fmt: skip
        out: dict[str, Exception | None] = {}
        for coid, answer in zip(coids, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer  # (cancelled, interrupted: the batch as a whole)
            if isinstance(answer, Exception) and not isinstance(answer, VenueError):
                answer = _cancel_unsure(coid, answer)  # one order's bug: the others' answers stand
            out[coid] = CancelRefused(answer) if isinstance(answer, str) else answer
        refused = [c for c, a in zip(coids, answers, strict=True) if isinstance(a, str) and c not in self._terminal]
        if refused:
            await self._settle_by_lookup(*refused)
        return out

    async def _cancel_answer(self, coid: str, queued: float = 0.0) -> str | None:
        """Send the cancel of ``coid`` (before the first await) and wait (bounded) for IB's
        answer: the refusal's text, or None (confirmed, or no answer in time: the cancel stands
        as sent). ``queued``: how long ib_async's pacing may hold the cancel before it is written
        (one of many sent together), added to the wait so that it starts, in effect, at the write."""
        outcome = self._outcome.get(coid)
        if outcome == "cancelled":
            return None
        if outcome is not None:
            raise CancelRefused(f"cannot cancel {coid}: it is already {outcome} at IB")
        trade = self._trades.get(coid)
        if trade is None:
            raise VenueError(f"cannot cancel {coid}: no such order at IB")
        self.session.require_connected(f"cancel of {coid}")
        waiter = self._cancels.get(coid)
        again = waiter is not None and not waiter.done()
        joined = again and coid in self._own_cancels  # a surfaced lost order's cancel, just sent
        self._own_cancels.discard(coid)
        if not again:
            waiter = self._cancels[coid] = asyncio.get_running_loop().create_future()
        elif joined:
            _log.info("cancel of {}: the cancel this adapter sent when it surfaced is awaited", coid)
        else:  # an earlier cancel IB never answered (lost, IB-05): asked again, sent again
            _log.info("cancel of {} sent again (IB has not answered the earlier one)", coid)
        try:
            if not joined:
                self.ib.cancelOrder(trade.order)  # (ib_async sends it whatever the trade's status)
        except ConnectionError as exc:
            if not again:
                del self._cancels[coid]
            raise ConnectionFailed(f"cancel of {coid} was not sent: {exc}") from exc
        cfg = self.session.config
        wait = min(cfg.cancel_wait, cfg.request_timeout) + queued
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), wait)
        except TimeoutError:
            _log.warning(
                "IB did not answer the cancel of {} within {:g}s; it stands as sent and its "
                "outcome arrives as events",
                coid,
                wait,
            )
            return None
        finally:
            if self._cancels.get(coid) is waiter and waiter.done():
                del self._cancels[coid]

    async def _settle_by_lookup(self, *coids: str) -> None:
        """After a refused cancel or modify ib_async takes the order as Cancelled: ask IB by
        orderRef (one look-up for all of ``coids``) what each is. A working order gets its
        status back; a filled one's executions are put now (before the caller hears the
        refusal), not whenever their frames come."""
        try:
            found = await self._inflight.lookup(set(coids))
        except (ConnectionError, TimeoutError) as exc:
            _log.warning("{}: look-up by orderRef failed ({!r}); its events or the next re-sync "
                         "settle it", ", ".join(coids), exc)  # fmt: skip
            return
        for coid in coids:
            if coid in found:
                self.found(coid, found[coid])

    def _cancel_answered(self, coid: str, refusal: str | None) -> bool:
        """Resolve a waiting cancel of ``coid`` (None: confirmed); False when none waits."""
        waiter = self._cancels.get(coid)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(refusal)
        return True

    def _on_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        """Order errors ib_async does not (or cannot) put on a trade's log: a refused cancel of
        an order it already took as done, the reason of a rejection that came after Inactive."""
        if req_id <= 0 or is_warning(code):
            return
        coid = next((c for c, t in self._trades.items() if t.order.orderId == req_id), None)
        if coid is None:
            return
        self._inflight.heard(coid)
        if code == CANCEL_CONFIRMED:
            if self.undecided(coid):  # ib_async took a refused cancel as the end: it passes nothing on
                _log.info("IB confirmed the cancel of {} (202); ib_async had taken an earlier refusal as its end", coid)
                self._finish(coid, OrderCancelled(coid, "Cancelled at IB"))
        elif str(code) in CANCEL_FAILED_CODES:
            refusal = f"IB refused the cancel of {coid}: error {code}: {message}"
            if not self._cancel_answered(coid, refusal) and self._outcome.get(coid) != "lost":
                _log.warning("{}", refusal)
                self.session.put(VenueErrorReported("ib", str(code), message, coid))
            if self.undecided(coid):
                self._refused.refused(coid)
        elif coid in self._reason_wait:
            self._finish(coid, OrderRejected(coid, message, str(code)))

    def undecided(self, coid: str) -> bool:
        """ib_async took ``coid``'s trade as cancelled (any order error does that, a refused
        cancel too) but the order has no end here: IB's later news of it is not passed on."""
        trade = self._trades.get(coid)
        return (
            coid not in self._terminal
            and trade is not None
            and trade.orderStatus.status in ("Cancelled", "ApiCancelled")
        )

    # ------------------------------------------------------------------ in-flight resolution
    def is_finished(self, coid: str) -> bool:
        return coid in self._terminal

    def follows(self, coid: str) -> bool:
        """The in-flight checks are looking this order up themselves (placed, IB silent so far)."""
        return coid in self._inflight.unheard

    async def lookup(self, client_order_ids: Iterable[str]) -> dict[str, VenueOrder]:
        """Where IB has these client order ids: one bounded round of reqOpenOrders +
        reqCompletedOrders + reqExecutions by orderRef. Ids IB does not know are absent from the
        answer; a look-up that fails or times out raises ConnectionFailed (unknown is not
        empty). What is found is taken over: a working order is ours again, executions not yet
        reported are put (once each), a finished order is settled."""
        wanted = set(client_order_ids)
        self.session.require_connected(f"look-up of {len(wanted)} order(s) by orderRef")
        try:
            found = await self._inflight.lookup(wanted)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(
                f"IB look-up of {len(wanted)} order(s) by orderRef did not complete ({exc!r}); "
                "their state is unknown"
            ) from exc
        out = {}
        for coid, f in found.items():
            self.found(coid, f)
            out[coid] = _venue_order(coid, self._trades.get(coid), f)
        return out

    def found(self, coid: str, found: Found) -> None:
        """An order turned up in a look-up by orderRef (IB had not answered it, or a restart
        asks): take it from there."""
        _log.info("order {} found at IB by orderRef", coid)
        self._known.add(coid)
        placed = self._trades.get(coid)
        trade = None
        if found.trades:
            live = [t for t in found.trades if not t.isDone()]
            trade = live[0] if live else found.trades[-1]
            if placed is None or (
                trade is not placed and (live or not self._fills.cumulative.get(coid))
            ):
                self._trades[coid] = trade
        ref = self._trades.get(coid)
        # found by its executions alone (no trade here or in the answer): its quantity is unknown,
        # so none of them completes it; a real full fill still ends it (the book's quantity)
        total = float(ref.order.totalQuantity) if ref is not None else math.inf
        for fill in sorted(found.fills, key=lambda x: x.time):
            self._fills.record(coid, fill, total, wait=False)
        if trade is not None:  # IB's word now (a completed order's status settles it), not the
            self._on_status(trade)  # placed trade's: ib_async may have taken a refused cancel as its end

    def _surfaced(self, coid: str, trade: Trade) -> bool:
        """An order reported lost turned up working at IB after all: it must not trade. It is
        alerted, cancelled at once and followed again (True): its acceptance, fills and end are
        reported from now on, so the runtime's own cancel really goes out and ends."""
        if self._outcome.get(coid) != "lost":
            return False
        if trade.orderStatus.status not in ("PreSubmitted", "Submitted"):  # only IB says these
            return False
        self._terminal.discard(coid)
        del self._outcome[coid]
        self._final.pop(coid, None)
        text = f"order {coid} was reported lost but IB now shows it ({trade.orderStatus.status}); cancelling it"
        _log.error("{}", text)
        self.session.put(VenueErrorReported("ib", "lost-order-surfaced", text, coid))
        if self.session.connected:
            waiter = self._cancels.get(coid)
            if waiter is None or waiter.done():
                self._cancels[coid] = asyncio.get_running_loop().create_future()
            self._own_cancels.add(coid)  # the runtime's first cancel of it awaits this one
            try:
                self.ib.cancelOrder(trade.order)
            except ConnectionError as exc:
                self._own_cancels.discard(coid)
                _log.warning("cancel of surfaced order {} not sent: {}", coid, exc)
        return True

    def _validation_warned(self, coid: str) -> None:
        """IB answered a new order with a warning code (ib_async keeps it live as
        ValidationError): 399 leaves it working, 321 means it was not taken. One look-up by
        orderRef decides (IB answers in order, so a taken order is listed): absent -> rejected
        with IB's text. If the look-up fails, the in-flight checks go on."""
        if coid in self._validating:
            return
        self._validating.add(coid)
        self.session.loop.spawn(self._settle_warned(coid), f"validation-warning:{coid}")

    async def _settle_warned(self, coid: str) -> None:
        try:
            found = await self._inflight.lookup({coid})
        except (ConnectionError, TimeoutError) as exc:
            _log.warning("{}: look-up after IB's warning failed ({!r}); in-flight checks go on",
                         coid, exc)  # fmt: skip
            return
        finally:
            self._validating.discard(coid)
        if coid in found:
            self._inflight.heard(coid)
            self.found(coid, found[coid])
        elif coid not in self._terminal:
            code, text = validation_warning(self._trades[coid]) or ("", "validation warning")
            self._finish(coid, OrderRejected(coid, f"{text} (IB did not take the order)", code))

    def lost(self, coid: str, reason: str) -> None:
        """Not found after the bounded look-ups: OrderLost, an ERROR, and a cancel for its id
        in case it surfaces later. Never re-sent."""
        trade = self._trades[coid]
        _log.error("order {} (IB order id {}) is LOST: {}", coid, trade.order.orderId, reason)
        self._finish(coid, OrderLost(coid, reason))
        if self.session.connected:
            try:
                self.ib.cancelOrder(trade.order)
            except ConnectionError as exc:
                _log.warning("cancel of lost order {} not sent: {}", coid, exc)


def _venue_order(coid: str, trade: Trade | None, found: Found) -> VenueOrder:
    """The VenueOrder for a looked-up order: from its trade, or from its executions alone. IB
    shows an order by its executions alone when neither its open nor its completed orders list it
    (an order filled in part then cancelled or expired, as often as a filled one). The open
    orders read are this client's (reqOpenOrders) while the executions are the account's, so an
    order still working under another client id shows so too: whether it works and how it ended
    are unknown (``status="unknown"``; not working only while no other client id places orders
    for this strategy: the client_id guard), it filled at least its executions' sum; its quantity
    is not known either (the sum stands for it). The runtime never ends an order on this answer
    (:mod:`~ml4t_live.owed_executions`)."""
    vo = venue_order_from_trade(trade) if trade is not None else None
    if vo is not None:
        return vo
    first = found.fills[0]
    done = sum(float(x.execution.shares) for x in found.fills)
    return VenueOrder(
        client_order_id=coid,
        venue_order_id=str(first.execution.permId or first.execution.orderId),
        asset=asset_of(first.contract),
        side=side_from_action(first.execution.side),
        quantity=done,
        filled_quantity=done,
        order_type=OrderType.MARKET,  # IB's executions do not say; only the fills are known
        status="unknown",
    )


def _cancel_unsure(coid: str, exc: Exception) -> CancelUnsure:
    """A bug in one order's cancel (not IB's answer): an ERROR with its traceback, and the
    order's outcome, CancelUnsure (whether the cancel went out is unknown)."""
    text = (f"cancel of {coid} raised {type(exc).__name__}: {exc} (a bug in the IB adapter, not IB's answer); "
            "whether it was sent is unknown")  # fmt: skip
    _log.opt(exception=exc).error("{}", text)
    return CancelUnsure.of_bug(text, exc)


def queue_seconds(per_second: int) -> Callable[[int], float]:
    """How long ib_async's pacing (at most ``per_second`` messages in any second; 0: none) may
    hold the ``i``-th of many requests written at once before it goes out: a second for each
    ``per_second`` before it, and one more for what was sent in the second before the first."""
    if per_second <= 0:
        return lambda i: 0.0
    return lambda i: float(i // per_second + 1)
