"""InFlightMonitor: orders IB never answered (IB-09, the black-holed order), found or declared lost.

A placed order is *unheard* until anything about it arrives (openOrder, orderStatus, an error, an
execution). IB sometimes answers nothing at all (an FA warning dialog in the gateway, the second
of its daily restart). Every ``IBConfig.inflight_check_interval`` seconds the unheard orders that
are at least that old are looked up by client order id (``orderRef``) with one bounded round of
reqOpenOrders + reqCompletedOrders + reqExecutions:

* found: ib_async has merged what IB reported (status, fills); the tracker takes it from there;
* absent: counted; after ``IBConfig.inflight_checks`` absent look-ups the tracker reports
  ``OrderLost`` (an ERROR is logged) and sends a cancel for the id, in case the order surfaces
  later. The order is **never re-sent**.
* a look-up that fails or times out proves nothing (unknown is not empty): it is not counted.
  While disconnected nothing is checked; the reconnect's resync settles the order instead.

Worst case, an order is declared lost ``(inflight_checks + 1) * inflight_check_interval`` seconds
(plus the look-ups' own time, each bounded by ``3 * request_timeout``) after it was placed.

Look-ups take turns (``IBSession.order_lists``, :mod:`.order_lists`): ib_async matches
reqOpenOrders and reqCompletedOrders to their answers by name, so two at once would lose an
answer, and a request that timed out is still owed its (late, older) answer: the next look-up
waits for it and drops it before asking again. These waits count inside the look-up's own bound.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from ib_async import Trade
from ib_async.objects import Fill
from loguru import logger

from .session import IBSession

_log = logger.bind(component="ib.orders")
#: a look-up round is bounded by this many request_timeouts (its three requests, and the wait
#: for a look-up already under way)
LOOKUP_ROUNDS = 3


@dataclass(slots=True)
class _Unheard:
    placed_at: float
    absent: int = 0


@dataclass(frozen=True, slots=True)
class Found:
    """What one look-up found for a client order id: its trades (open or completed) and fills."""

    trades: list[Trade]
    fills: list[Fill]


class Resolver(Protocol):
    def found(self, coid: str, found: Found) -> None: ...

    def lost(self, coid: str, reason: str) -> None: ...

    def is_finished(self, coid: str) -> bool: ...


class InFlightMonitor:
    """Watches unheard orders on the session loop (see the module docstring)."""

    def __init__(self, session: IBSession, resolver: Resolver) -> None:
        self.session = session
        self._resolver = resolver
        self._unheard: dict[str, _Unheard] = {}
        self._task: asyncio.Task[None] | None = None
        self.lookups = 0  # completed look-up rounds (for tests and logs)

    def placed(self, coid: str) -> None:
        self._unheard[coid] = _Unheard(time.monotonic())
        if self._task is None or self._task.done():
            self._task = self.session.loop.spawn(self._watch(), "inflight-check")

    def heard(self, coid: str) -> None:
        self._unheard.pop(coid, None)

    @property
    def unheard(self) -> list[str]:
        return sorted(self._unheard)

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _watch(self) -> None:
        cfg = self.session.config
        while self._unheard:
            await asyncio.sleep(cfg.inflight_check_interval)
            for coid in [c for c in self._unheard if self._resolver.is_finished(c)]:
                del self._unheard[coid]
            cutoff = time.monotonic() - cfg.inflight_check_interval
            due = [c for c, u in self._unheard.items() if u.placed_at <= cutoff]
            if not due or not self.session.connected:
                continue
            try:
                found = await self.lookup(set(due))
            except (ConnectionError, TimeoutError) as exc:
                _log.warning(
                    "look-up of {} unanswered order(s) by orderRef failed ({!r}); not counted",
                    len(due),
                    exc,
                )
                continue
            self.lookups += 1
            for coid in due:
                entry = self._unheard.get(coid)
                if entry is None:  # heard while the look-up ran
                    continue
                if coid in found:
                    del self._unheard[coid]
                    self._resolver.found(coid, found[coid])
                    continue
                entry.absent += 1
                if entry.absent >= cfg.inflight_checks:
                    del self._unheard[coid]
                    waited = time.monotonic() - entry.placed_at
                    self._resolver.lost(
                        coid,
                        f"IB never answered order {coid} and {entry.absent} look-ups by orderRef "
                        f"(open orders, completed orders, executions) over {waited:.1f}s did not "
                        "find it; taken as not placed, not re-sent",
                    )

    async def lookup(self, coids: set[str]) -> dict[str, Found]:
        """One round of reqOpenOrders + reqCompletedOrders + reqExecutions, each bounded by
        ``request_timeout``, the whole round (a wait for another look-up's round included: they
        take turns, see ``IBSession.order_lists``) by ``LOOKUP_ROUNDS * request_timeout``;
        raises ConnectionError / TimeoutError (never an empty guess)."""
        ib, timeout = self.session.ib, self.session.config.request_timeout
        async with asyncio.timeout(LOOKUP_ROUNDS * timeout), self.session.order_lists as lists:
            opened = await lists.fetch("openOrders", ib.reqOpenOrdersAsync, timeout)
            completed = await lists.fetch(
                "completedOrders", lambda: ib.reqCompletedOrdersAsync(apiOnly=True), timeout
            )
            fills = await asyncio.wait_for(ib.reqExecutionsAsync(), timeout)
        out: dict[str, Found] = {}
        for trade in [*opened, *completed]:
            ref = trade.order.orderRef
            if ref in coids:
                out.setdefault(ref, Found([], [])).trades.append(trade)
        for fill in fills:
            ref = fill.execution.orderRef
            if ref in coids:
                out.setdefault(ref, Found([], [])).fills.append(fill)
        return out
