"""An order's executions as Alpaca lists them: ``GET /v2/account/activities/FILL``.

A REST view of an order (after a restart, a look-up or a re-sync) says how much it filled, but not
in which executions: a fill the ``trade_updates`` stream delivered while nobody listened has no
execution id there. Alpaca's account activities list every execution (``activity_type`` ``FILL``):
``id`` ``<timestamp>::<uuid>`` (the uuid is the trade update's ``execution_id``), ``order_id``,
``qty``, ``price``, ``cum_qty``, ``leaves_qty``, ``transaction_time``, ``type``. alpaca-py's
``TradingClient`` has no method for them, so this reads them with its REST base class's ``get``
through the gateway's :class:`~.rest.RestCaller` (token bucket, bounded retries, timeouts, secrets
scrubbed).

:meth:`ExecutionReader.for_view` reads them only when a view shows an order of ours filled beyond
what was reported. When they cannot be read it says so (a WARNING) and returns None: the tracker
then reports the fill under a made-up id. Unknown is never read as empty: the fill is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger

from ...errors import VenueError
from .parsing import num

_log = logger.bind(component="alpaca.executions")
PAGE_SIZE = 100
MAX_PAGES = 20  # 2000 executions of one order: beyond that the listing counts as unreadable
#: the listing starts this long before the order was submitted (a venue that ignores ``order_id``
#: then still lists only the account's executions since about then, never its whole history)
SINCE_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Execution:
    """One FILL activity of one order."""

    exec_id: str
    order_id: str
    qty: float
    price: float
    cum_qty: float
    time: datetime


def exec_id_of(activity_id: str) -> str:
    """The execution id inside an activity id (``<timestamp>::<execution id>``)."""
    _stamp, sep, rest = activity_id.partition("::")
    return rest if sep and rest else activity_id


def parse_activity(item: Any) -> Execution:
    """One FILL activity; ValueError/TypeError/KeyError when it is not one."""
    if not isinstance(item, dict):
        raise TypeError(f"an activity is not an object: {item!r:.80}")
    qty, price, cum = num(item["qty"]), num(item["price"]), num(item["cum_qty"])
    if qty is None or price is None or cum is None or not item.get("id") or not item.get("order_id"):
        raise ValueError(f"incomplete FILL activity: {item!r:.200}")
    when = datetime.fromisoformat(str(item["transaction_time"]))
    return Execution(exec_id_of(str(item["id"])), str(item["order_id"]), qty, price, cum, when)


class ExecutionReader:
    """Reads the executions of one order over REST (see the module docstring)."""

    def __init__(self, rest: Any, tracker: Any) -> None:
        self.rest = rest
        self.tracker = tracker
        self.made_up = 0  # views whose fills could not be matched to executions (for tests)

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> list[Execution] | None:
        """The executions of ``order`` if the view shows fills not reported yet, else None.

        ``adopting``: an order first seen on connect reports no earlier fills, so only an order
        already followed is looked at. None also when they cannot be read (a WARNING says so)."""
        if self.tracker.unreported(order, known_only=adopting) <= 1e-9:
            return None
        order_id = str(order.id)
        try:
            since = order.submitted_at or order.created_at
            found = self.read(client, order_id, num(order.filled_qty) or 0.0, since)
        except VenueError as exc:
            self.made_up += 1
            _log.warning(
                "cannot read the executions of Alpaca order {} ({}): its fills beyond what was "
                "reported get made-up execution ids '<order id>:<cumulative qty>'",
                order_id,
                exc,
            )
            return None
        return found

    def read(
        self, client: Any, order_id: str, filled: float, since: datetime | None = None
    ) -> list[Execution]:
        """Every FILL activity of ``order_id`` (oldest first), until ``filled`` is covered."""
        out: list[Execution] = []
        token: str | None = None
        base: dict[str, Any] = {"order_id": order_id, "direction": "asc", "page_size": PAGE_SIZE}
        if since is not None:
            start = (since if since.tzinfo else since.replace(tzinfo=UTC)) - SINCE_MARGIN
            base["after"] = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for _page in range(MAX_PAGES):
            params = dict(base)
            if token is not None:
                params["page_token"] = token
            items = self.rest(
                f"fill activities of {order_id}",
                lambda p=params: _page_of(client.get("/account/activities/FILL", p)),
                repeatable=True,
            )
            out += [e for _id, e in items if e.order_id == order_id]
            if len(items) < PAGE_SIZE or (out and max(e.cum_qty for e in out) >= filled - 1e-9):
                return sorted(out, key=lambda e: e.cum_qty)
            token = items[-1][0]
        raise _TooMany(f"more than {MAX_PAGES} pages of fill activities for order {order_id}")


class _TooMany(VenueError):
    pass


def _page_of(body: Any) -> list[tuple[str, Execution]]:
    """(activity id, execution) per item; TypeError when the answer is not a list of activities
    (the REST caller retries an unreadable answer)."""
    if not isinstance(body, list):
        raise TypeError(f"fill activities are not a list: {body!r:.80}")
    return [(str(item.get("id")) if isinstance(item, dict) else "", parse_activity(item)) for item in body]
