"""SymbolOrders: the orders on one symbol submitted since a given order, listed page by page.

Where :meth:`~.submit.OrderChains.chain` finds the replacements of an order without one
``GET /v2/orders/{id}`` each: ``GET /v2/orders`` (all statuses, the order's symbol, oldest first,
up to ``PAGE`` a page) since that order. The account's other orders on the symbol (another
strategy's) share the listing, so an order not on a full page may be on the next one: the next
page is read only when an order is asked for that the pages so far lack, ``after`` the last listed
order's ``submitted_at`` (Alpaca's ``after`` is exclusive and the listing has no page token), at
most ``MAX_PAGES`` pages. What the pages do not hold (beyond them, or sharing the exact
``submitted_at`` of a page's last order) the caller reads by id, and so is a multi-leg order (an
OCO pair, a bracket, an oto) not replaced, the chain's last: the listing shows no legs, and a
submit of unknown outcome's report takes an OCO pair's stop leg from the chain's last order. Engine thread or the stream's
loop thread, as the walk that uses it; one instance per walk.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alpaca.common.enums import Sort
from alpaca.trading.enums import OrderClass, OrderStatus, QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from loguru import logger

from ...errors import VenueError
from .rest import AlpacaTradingClient

_log = logger.bind(component="alpaca.gateway")
#: orders a listing page holds (Alpaca's maximum)
PAGE = 500
#: pages one walk reads at most (2,000 orders on the symbol since the walk's first order)
MAX_PAGES = 4


class SymbolOrders:
    def __init__(self, rest: Any, client: AlpacaTradingClient, cid: str, first: Any) -> None:
        self._rest, self._client, self._cid = rest, client, cid
        self._symbol = first.symbol
        # (1 s before: a listing's ``after`` of the first order's own second keeps it in)
        self._after = first.submitted_at - timedelta(seconds=1) if first.submitted_at and first.symbol else None
        self._orders: dict[str, Any] = {}
        self._more = self._after is not None
        self.pages = 0  # pages read

    def get(self, order_id: str) -> Any | None:
        """The listed order ``order_id``, reading the next pages while it is missing and more
        may follow; None when the pages do not hold it, or hold it without the legs it has (read
        it by id, with its legs)."""
        while order_id not in self._orders and self._more:
            self._next_page()
        order = self._orders.get(order_id)
        return None if order is not None and _lacks_legs(order) else order

    def _next_page(self) -> None:
        if self.pages >= MAX_PAGES:
            self._more = False
            _log.warning("the replacements of {} are not on {} listing pages of {} orders; reading the rest one by one",
                         self._cid, MAX_PAGES, self._symbol)  # fmt: skip
            return
        query = GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=[self._symbol], limit=PAGE,
                                 direction=Sort.ASC, after=self._after)  # fmt: skip
        client = self._client
        try:
            page = self._rest(f"lookup {self._cid} (replacements, page {self.pages + 1})",
                              lambda: client.get_orders(query), repeatable=True)  # fmt: skip
        except VenueError as exc:  # (no answer, a refusal, no request slot in time)
            self._more = False
            _log.warning("listing the replacements of {} failed ({}); reading them one by one", self._cid, exc)
            return
        self.pages += 1
        fresh = [order for order in page if str(order.id) not in self._orders]
        self._orders.update((str(order.id), order) for order in fresh)
        last = page[-1].submitted_at if page else None
        # a full page may have a next one; none when this one brought nothing new or did not advance
        self._more = len(page) >= PAGE and bool(fresh) and last is not None and last > self._after
        if self._more:
            self._after = last


def _lacks_legs(order: Any) -> bool:
    """A listed multi-leg order not replaced (a walk's last order): listed without its legs."""
    return order.order_class is not OrderClass.SIMPLE and order.status is not OrderStatus.REPLACED and not order.legs
