"""The Alpaca gateway's ``lookup``, one client order id at a time, each id's failure its own.

:func:`look_up_each` asks about each id with the gateway's look-up of one
(:meth:`~.gateway.AlpacaGateway.lookup`) and keeps going past an id it could not read
(:class:`Unread`): a read Alpaca refused (an HTTP status, after the retries), or an order found
whose report raised. A failure that says the venue itself cannot be asked now (:func:`no_answer`:
no request slot, or a read without an HTTP status after the retries) ends the look-up there, the
ids not asked yet unread too: each would wait as long. Any id unread raises
:class:`~ml4t_live.errors.LookupIncomplete` with what the others came to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ...errors import LookupIncomplete, VenueError
from ...protocols import VenueOrder
from .rate_limit import RateLimitTimeout
from .rest import VenueRequestFailed


class Unread(Exception):  # (one id's outcome, caught by look_up_each alone)
    """One id's look-up could not read it (``why``, naming the id); ``stop``: the venue cannot be
    asked now."""

    def __init__(self, why: str, *, stop: bool = False) -> None:
        super().__init__(why)
        self.why, self.stop = why, stop


def no_answer(exc: VenueError) -> bool:
    """Whether a read's failure says the venue cannot be asked now: no request slot within
    ``request_timeout`` (nothing sent), or no HTTP status after the retries (no answer, one that
    could not be read; also a replacement chain that cannot be followed)."""
    return isinstance(exc, RateLimitTimeout) or (isinstance(exc, VenueRequestFailed) and exc.status is None)


def look_up_each(client_order_ids: Iterable[str], one: Callable[[str], VenueOrder | None]) -> dict[str, VenueOrder]:
    """What ``one`` finds of each id (None: Alpaca does not know it, left out); see the module
    docstring for the ids it cannot read."""
    cids = list(client_order_ids)
    found: dict[str, VenueOrder] = {}
    unread: dict[str, str] = {}
    for i, cid in enumerate(cids):
        try:
            order = one(cid)
        except Unread as exc:
            unread[cid] = exc.why
            if exc.stop:
                unread.update({c: f"{c} not asked (the venue did not answer for {cid})" for c in cids[i + 1 :]})
                break
            continue
        if order is not None:
            found[cid] = order
    if unread:
        raise LookupIncomplete(f"Alpaca could not read {len(unread)} of {len(cids)} order(s) looked up by client "
                               f"order id (their state is unknown): {'; '.join(unread.values())}", found,
                               unread)  # fmt: skip
    return found
