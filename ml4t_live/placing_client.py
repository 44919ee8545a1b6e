"""The venue API client id a journal's orders were placed under (IB), and a run under another.

IB lists an order (``reqOpenOrders``, ib_async's open trades and order events) only to the API
client id that placed it, and only that client id may modify or cancel it. A warm restart under
another client id would not see the journal's working orders: its look-up would declare them
lost while they keep working at IB, untracked, and their cancels would go nowhere.

So the journal records the client id its orders are placed under (meta ``venue_client_id``,
written at connect), and a run of that journal under another client id refuses to start
(:class:`~ml4t_live.errors.ConfigError`, nothing sent) while the journal has an order not known
to have ended: any intent that is not filled, cancelled, rejected or lost. A ``lost`` order was
looked up by orderRef under the recorded client id and not found there, which is all a run can
know: it counts as ended here (else one lost order would bar the journal from any other client
id for ever), with a WARNING that a lost order surfacing later under the old id can be seen and
cancelled only by that id. A journal whose orders all ended may change its client id. Venues
without API client ids (Alpaca) have nothing to record.

Adopting the other id's orders instead is not possible: ``reqAllOpenOrders`` (or the master
client id) shows them, but IB still lets only the placing client id cancel or change them.
"""

from __future__ import annotations

from loguru import logger

from .errors import ConfigError
from .journal import Journal, resume_command

_log = logger.bind(component="ownership")

META_KEY = "venue_client_id"
#: intents known to have ended at the venue
ENDED = frozenset({"filled", "cancelled", "rejected"})
#: looked up under the recorded client id and not found: taken as ended for a change of client id
LOST = "lost"
#: venue names as the operator reads them
_NAMES = {"ib": "IB", "alpaca": "Alpaca"}


def check_placing_client(journal: Journal, client_id: int | None, venue: str) -> None:
    """Refuse a run under another client id than the journal's orders were placed under while
    one of them is not known to have ended; record ``client_id`` otherwise."""
    if client_id is None:
        return
    mine, recorded = str(client_id), journal.meta(META_KEY)
    if recorded is not None and recorded != mine:
        name = _NAMES.get(venue, venue)
        intents = journal.intents()
        pending = sorted(cid for cid, i in intents.items() if i["status"] not in ENDED | {LOST})
        if pending:
            raise ConfigError(
                f"journal {journal.path}: its orders were placed under {name} API client id {recorded}, "
                f"this run connects as client id {mine}; {len(pending)} of them not known to have ended "
                f"({_shown(pending)}). {name} shows an order only to the client id that placed it, and only "
                f"that client id may cancel it: this run would take them for lost while they work on. "
                f"Nothing was sent. Run with client id {recorded} ([venue] client_id = {recorded}); to move "
                f"to client id {mine}, end those orders first: `ml4t-live cancel-all --client-id {recorded}` "
                f"(it also halts the strategy), then one start under client id {recorded} settles them in "
                f"the journal, then `{resume_command(journal.path)}` and start under client id {mine}"
            )  # fmt: skip
        lost = sorted(cid for cid, i in intents.items() if i["status"] == LOST)
        if lost:
            _log.warning("journal {}: {} order(s) declared lost under {} client id {} ({}): looked up "
                         "under it and not found, taken as ended. Should one surface later, only client "
                         "id {} can see or cancel it (`ml4t-live cancel-all --client-id {}`)", journal.path,
                         len(lost), name, recorded, _shown(lost), recorded, recorded)  # fmt: skip
        _log.warning("journal {}: its orders were placed under {} client id {} and all ended; from now "
                     "on placed under client id {}", journal.path, name, recorded, mine)  # fmt: skip
    journal.set_meta(META_KEY, mine)


def _shown(cids: list[str]) -> str:
    return ", ".join(cids[:5]) + (f" and {len(cids) - 5} more" if len(cids) > 5 else "")
