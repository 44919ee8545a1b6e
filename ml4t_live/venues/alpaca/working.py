"""End of bar: wait (bounded) for the trade stream to deliver what REST says happened to our orders.

Why: Alpaca's ``trade_updates`` and its bars come on two sockets, read by two threads; nothing
orders one against the other. A fill at bar t+1's open can reach the engine after bar t+1 does, so
the strategy would not see it in ``on_data(t+1)`` (the backtest's strategy does): it places a
second entry, or cancels an order that has already filled.

What: after the end-of-bar ``GET /v2/clock`` (:meth:`~.gateway.AlpacaGateway.end_of_bar`), when we
have orders working, one listing of the open orders (one request; nothing when none work). For each
of ours it lists, the stream must have reported the filled quantity it shows; each of ours it no
longer lists has ended, and the stream must have reported how. The gateway waits for that, up to
``STREAM_GRACE`` seconds, on the tracker. The events themselves are always the stream's (its
executions, prices and ids): the REST view only says what to wait for. If the stream does not
deliver in time (a silent or dropped socket), nothing is invented here: the stream's watchdog and
re-sync report it, as before.

The simulated Alpaca in step mode answers that ``GET /v2/clock`` only after bar t's close and bar
t+1's open were matched (their updates written), so this read sees exactly the changes bar t+1
reflects, and the run is a deterministic function of the bars and the orders. On Alpaca it waits for
whatever has happened by then.
"""

from __future__ import annotations

from typing import Any

from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest
from loguru import logger

from ...errors import VenueError
from .parsing import flatten_open, num

_log = logger.bind(component="alpaca.working")
_OPEN = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500, nested=True)
STREAM_GRACE = 2.0  # seconds end_of_bar waits for the stream to deliver what REST shows


def await_working(rest: Any, client: Any, stream: Any, grace: float = STREAM_GRACE) -> bool:
    """Read our working orders (``rest``: the gateway's RestCaller, ``client``: its engine-thread
    TradingClient) and wait until ``stream`` (its OrderStream) has queued their changes. True when
    it has (or nothing works); False when the read failed or the stream stayed behind."""
    tracker = stream.tracker
    working = set(tracker.open_venue_ids())
    if not working:
        return True
    try:
        listed = flatten_open(rest("working orders", lambda: client.get_orders(_OPEN), repeatable=True))
    except VenueError as exc:
        _log.warning("end-of-bar read of the working orders failed ({}); the stream reports them", exc)
        return False
    filled = {str(o.id): num(o.filled_qty) or 0.0 for o in listed if str(o.id) in working}
    ended = working - {str(o.id) for o in listed}
    if tracker.wait_reported(filled, ended, grace):
        with stream.emit_lock:  # the stream decides and queues under this lock: its events are queued
            return True
    _log.warning(
        "the trade stream has not delivered what {} of our working order(s) did, {:g}s after the "
        "end of the bar; the stream's watchdog re-reads them",
        len(filled) + len(ended),
        grace,
    )
    return False
