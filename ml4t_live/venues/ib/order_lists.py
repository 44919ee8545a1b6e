"""OrderLists: IB's order lists (open orders, completed orders) asked one at a time, each answer
taken only by the request it belongs to.

ib_async matches reqOpenOrders / reqAllOpenOrders (list ``openOrders``) and reqCompletedOrders
(``completedOrders``) to their answers by name, not by request id: the end of whichever answer
comes next resolves whichever request of that name is pending, and a new request replaces a
pending one. So:

* requests take turns (``async with order_lists``): two at once lose an answer;
* a request whose wait timed out (IB slow to send) is still *owed* its answer: the next request of
  that list first waits for it and drops it, as it was read before the new request was made.
  Asking again at once would make IB's late answer, an older list, the new request's answer: an
  order cancelled or placed in between would read as absent at IB.
* the wait ends ``WRITE_OFF_TIMEOUTS`` request timeouts after the owed request went out: the
  answer is written off (a WARNING; IB answers no more, as for a request lost in the gateway's
  restart second) and the list is asked again. Should IB answer it after all, that answer would
  stand for the new request's (the one case this cannot tell apart: the answers carry no id). A
  dropped connection ends every owed answer (ib_async fails its requests).

Runs on the session loop only. Executions (reqExecutions) carry a request id: ib_async matches
them exactly and they need none of this.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Self

from loguru import logger

_log = logger.bind(component="ib.order_lists")
#: an owed answer is written off this many request timeouts after its request went out
WRITE_OFF_TIMEOUTS = 2.0


class OrderLists:
    """The turn for order-list requests, and the answers timed-out requests are still owed."""

    def __init__(self) -> None:
        self._turn = asyncio.Lock()
        self._owed: dict[str, tuple[asyncio.Future[Any], float]] = {}  # list -> (answer, sent at)

    async def __aenter__(self) -> Self:
        await self._turn.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._turn.release()

    async def fetch(self, name: str, send: Callable[[], Awaitable[Any]], timeout: float) -> Any:
        """Send one request of list ``name`` (``send()``, an ib_async ``req*Async`` call) and
        return its answer within ``timeout``, after the answer an earlier request of it is owed
        (see the module docstring). Raises TimeoutError or ConnectionError (never a guess). The
        caller holds the turn and bounds the whole."""
        await self._settle_owed(name, timeout)
        sent_at = time.monotonic()
        answer = asyncio.ensure_future(send())
        try:
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except BaseException:
            if not answer.done():  # timed out or cancelled: IB may still answer it
                self._owed[name] = (answer, sent_at)
            raise

    async def _settle_owed(self, name: str, timeout: float) -> None:
        entry = self._owed.get(name)
        if entry is None:
            return
        answer, sent_at = entry
        if answer.cancelled():  # never answered, and never will be
            del self._owed[name]
            return
        wait = max(0.0, sent_at + WRITE_OFF_TIMEOUTS * timeout - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.shield(answer), wait)
        except ConnectionError:
            pass  # that connection is gone, and its answer with it
        except TimeoutError:
            _log.warning(
                "IB did not answer a {} request sent {:.1f}s ago; written off, the list is asked "
                "again (an answer later still would be taken as the new request's)",
                name,
                time.monotonic() - sent_at,
            )
        else:
            _log.info("IB's late answer to a timed-out {} request came; dropped", name)
        del self._owed[name]
