"""RefusedCancels: orders whose cancel IB refused while ib_async took the refusal as their end.

On any order error ib_async marks the trade ``Cancelled``, a refused cancel too (10148 "cannot be
cancelled, state: PendingCancel" answers a repeat while IB still works on the first). The order
is unchanged at IB, but when IB's real ``orderStatus Cancelled`` comes ib_async sees no change and
emits nothing. The tracker settles such an order from IB's error 202 (see
:meth:`~.outcomes.OrderOutcomes._on_error`) and, should that not come or be missed, from these
follow-up look-ups by orderRef (reqOpenOrders + reqCompletedOrders + reqExecutions):

* every ``IBConfig.inflight_check_interval`` seconds, then twice the previous spacing (at most
  ``MAX_SPACING``), while the order is neither finished for the tracker nor working again for
  ib_async (a look-up that lists it open gives ib_async its status back: IB's later end then
  arrives as events);
* found: the tracker takes it from there (a completed order's status settles it, an open one
  gives ib_async its status back);
* a look-up that fails or times out proves nothing (unknown is not gone): not counted;
* ``MISSES`` look-ups that leave it undecided (not found, or found without an end, e.g. only
  its executions): a WARNING, and following stops; the order stays unsettled (the runtime keeps
  following its cancel; a reconnect's resync or a restart's look-up decides).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from loguru import logger

from .inflight import Found, InFlightMonitor
from .session import IBSession

_log = logger.bind(component="ib.orders")
#: the longest spacing between two follow-up look-ups (seconds)
MAX_SPACING = 60.0
#: look-ups that leave the order undecided before following stops
MISSES = 10


class Settler(Protocol):
    def found(self, coid: str, found: Found) -> None: ...

    def undecided(self, coid: str) -> bool: ...


class RefusedCancels:
    """Follows the orders a refused cancel left undecided, on the session loop."""

    def __init__(self, session: IBSession, settler: Settler, inflight: InFlightMonitor) -> None:
        self.session = session
        self._settler = settler
        self._inflight = inflight
        self._misses: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def refused(self, coid: str) -> None:
        """IB refused a cancel of ``coid`` and ib_async took that as its end: follow it."""
        self._misses.setdefault(coid, 0)
        if self._task is None or self._task.done():
            self._task = self.session.loop.spawn(self._watch(), "refused-cancel-follow")

    @property
    def following(self) -> list[str]:
        return sorted(self._misses)

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _watch(self) -> None:
        spacing = self.session.config.inflight_check_interval
        while self._misses:
            await asyncio.sleep(spacing)
            spacing = min(spacing * 2, MAX_SPACING)
            for coid in [c for c in self._misses if not self._settler.undecided(c)]:
                del self._misses[coid]
            if not self._misses or not self.session.connected:
                continue
            wanted = set(self._misses)
            try:
                found = await self._inflight.lookup(wanted)
            except (ConnectionError, TimeoutError) as exc:
                _log.warning("look-up of {} order(s) whose cancel IB refused failed ({!r}); tried again",
                             len(wanted), exc)  # fmt: skip
                continue
            for coid in wanted:
                if coid not in self._misses:
                    continue
                if coid in found:
                    self._settler.found(coid, found[coid])
                    if not self._settler.undecided(coid):
                        continue
                self._misses[coid] += 1
                if self._misses[coid] >= MISSES:
                    del self._misses[coid]
                    _log.warning("order {}: IB refused its cancel and {} look-ups by orderRef did not settle "
                                 "it (not found, or found without an end); its end is unknown (not taken "
                                 "as gone): the next re-sync or restart look-up settles it",
                                 coid, MISSES)  # fmt: skip
