"""The venue API client id a journal's orders were placed under (IB), and a run under another.

IB lists an order (``reqOpenOrders``, ib_async's open trades and order events) only to the API
client id that placed it, and only that client id may modify or cancel it. A warm restart under
another client id would not see the journal's working orders: its look-up would declare them
lost while they keep working at IB, untracked, and their cancels would go nowhere.

So the journal records the client id its orders are placed under (meta ``venue_client_id``,
written at connect), and a run of that journal under another client id refuses to start
(:class:`~ml4t_live.errors.ConfigError`, nothing sent) while the journal has an order not known
to have ended: any intent that is not filled, cancelled or rejected (a ``lost`` one included:
the venue may work it under the earlier id). A journal whose orders all ended may change its
client id. Venues without API client ids (Alpaca) have nothing to record.

Adopting the other id's orders instead is not possible: ``reqAllOpenOrders`` (or the master
client id) shows them, but IB still lets only the placing client id cancel or change them.
"""

from __future__ import annotations

from loguru import logger

from .errors import ConfigError
from .journal import Journal

_log = logger.bind(component="ownership")

META_KEY = "venue_client_id"
#: intents known to have ended at the venue ('lost' is not: the venue may still work it)
ENDED = frozenset({"filled", "cancelled", "rejected"})


def check_placing_client(journal: Journal, client_id: int | None, venue: str) -> None:
    """Refuse a run under another client id than the journal's orders were placed under while
    one of them is not known to have ended; record ``client_id`` otherwise."""
    if client_id is None:
        return
    mine, recorded = str(client_id), journal.meta(META_KEY)
    if recorded is not None and recorded != mine:
        pending = sorted(cid for cid, i in journal.intents().items() if i["status"] not in ENDED)
        if pending:
            shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
            raise ConfigError(
                f"journal {journal.path}: its orders were placed under {venue} API client id {recorded}, "
                f"this run connects as client id {mine}; {len(pending)} of them not known to have ended "
                f"({shown}). {venue} shows an order only to the client id that placed it, and only that "
                f"client id may cancel it: this run would take them for lost while they work on. Nothing "
                f"was sent. Run with client id {recorded} ([venue] client_id = {recorded}); to move to another "
                f"client id, end those orders first (`ml4t-live cancel-all --client-id {recorded}`, then one "
                f"start under client id {recorded} settles them in the journal)"
            )  # fmt: skip
        _log.warning("journal {}: its orders were placed under {} client id {} and all ended; from now "
                     "on placed under client id {}", journal.path, venue, recorded, mine)  # fmt: skip
    journal.set_meta(META_KEY, mine)
