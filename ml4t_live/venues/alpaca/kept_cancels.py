"""The strategy's cancels kept while a replace's check (:mod:`.modify`) is pending: a cancel asked
then is held until the check has ended, then sent to the order the chain settled on, followed along
the chain when Alpaca refuses it as ``replaced``, and given up with one ALERT after
:data:`MAX_CANCEL_TRIES` ends of bar. Plain functions :class:`~.modify.Modifier` calls (engine
thread); the state (``cancels``, ``cancel_tries``) is the Modifier's."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from loguru import logger

from ...errors import VenueError
from .cut import MAX_TRIES
from .rest import AlpacaTradingClient, VenueRequestFailed
from .submit import MAX_REPLACEMENTS

if TYPE_CHECKING:  # (annotations only)
    from .modify import Modifier

_log = logger.bind(component="alpaca.modify")
#: ends of bar a kept cancel (:func:`cancel_asked`) may go untaken, once its check has
#: ended, before an ALERT gives it up (a replace Alpaca keeps pending past the check's tries included)
MAX_CANCEL_TRIES = 2 * MAX_TRIES
#: the state Alpaca names in a 422 refusing a cancel: 'order is already in "canceled" state'
_ALREADY_IN = re.compile(r'already in "(\w+)" state')
#: states a cancel is refused in while a replace of the order is in flight (a kept cancel waits for the
#: first two; one refused ``replaced`` follows the order to its replacement: :func:`_follow_replaced`)
CHANGING = ("pending_new", "pending_replace", "replaced")


def cancel_asked(mod: Modifier, cid: str) -> bool:
    """The strategy cancels our order ``cid``: while the check of its last replace (a modify's,
    or the runtime's own cut or bring-back) is pending, the chain may settle on another order
    than the one the cancel goes to now (a cut Alpaca does not carry out: the old order works
    on). The cancel is kept: the check changes the chain no more (a cut cancels the replacement
    instead: :func:`~.cut.cut`), and once the check has ended the cancel is sent to the order
    the chain settled on (:meth:`~.modify.Modifier.check_replaces`). False (nothing kept) with no
    check pending."""
    if cid not in mod._replace_checks:
        return False
    mod.cancels.add(cid)
    mod.cancel_tries.pop(cid, None)
    return True


def send_cancels(mod: Modifier) -> None:
    """The cancels kept by :func:`cancel_asked` whose check has ended (made, or given up),
    sent to the order each chain settled on; one refused because that order has ended is that
    end (its events say it); one refused because that order is ``replaced`` goes to the order
    that replaced it (:func:`_follow_replaced`); one without an answer, or refused because a
    replace of that order is in flight (``pending_new``, ``pending_replace``), is kept and sent
    again at the next check, at most :data:`MAX_CANCEL_TRIES` times, then dropped with one ALERT (the
    order may still work at Alpaca)."""
    mod.cancel_tries = {c: n for c, n in mod.cancel_tries.items() if c in mod.cancels}
    for cid in [c for c in mod.cancels if c not in mod._replace_checks]:
        if cid not in mod._venue_ids or _send_cancel(mod, cid, mod._venue_id(cid)):
            mod.cancels.discard(cid)
            mod.cancel_tries.pop(cid, None)
            continue
        mod.cancel_tries[cid] = tries = mod.cancel_tries.get(cid, 0) + 1
        if tries >= MAX_CANCEL_TRIES:
            mod.cancels.discard(cid)
            mod.cancel_tries.pop(cid, None)
            _log.error("ALERT: the strategy's cancel of {} was not taken by Alpaca at {} ends of bar and is given "
                       "up: Alpaca order {} (its chain's latest the runtime knows) may still work at Alpaca; "
                       "cancel it there", cid, MAX_CANCEL_TRIES, mod._venue_ids.get(cid))  # fmt: skip


def _send_cancel(mod: Modifier, cid: str, venue_id: str, depth: int = 0) -> bool:
    """The kept cancel of ``cid`` sent to Alpaca order ``venue_id``: True when Alpaca answered
    (took it, or refused it because the order has ended: its events say that end). ``depth``:
    orders followed on the way (at most :data:`~.submit.MAX_REPLACEMENTS`)."""
    client = mod._require()
    try:
        mod.rest("cancel " + cid, lambda: client.cancel_order_by_id(venue_id), repeatable=True)
    except VenueRequestFailed as exc:
        if exc.status not in (404, 422):
            _log.warning("the cancel of {} (Alpaca order {}) the strategy asked got no answer ({}): sent "
                         "again at the next check", cid, venue_id, exc)  # fmt: skip
            return False
        if (state := refused_in(exc)) == "replaced":
            return _follow_replaced(mod, client, cid, venue_id, depth)
        if state in CHANGING:
            _log.warning("Alpaca refused the cancel of {} (Alpaca order {}) the strategy asked, the order {} "
                         "(a replace in flight): sent again at the next check", cid, venue_id, state)  # fmt: skip
            return False
        _log.info("Alpaca refused the cancel of {} (Alpaca order {}): {}", cid, venue_id, exc.message)
        return _ended_as_ours(mod, client, cid, venue_id, depth)
    _log.info("the cancel of {} the strategy asked while its replace was checked is sent to Alpaca order {}, "
              "the one its chain settled on", cid, venue_id)  # fmt: skip
    return True


def _ended_as_ours(mod: Modifier, client: AlpacaTradingClient, cid: str, venue_id: str, depth: int) -> bool:
    """A kept cancel of ``cid`` refused because Alpaca order ``venue_id`` has ended: that order
    read and reported first (the stream may not have shown its end yet); a replacement that
    ended while the order it replaces works on (a replace not carried out) gives way to that
    order, which the cancel is sent to. True when the end is our order's; False (kept for the
    next check) when it cannot be read."""
    try:
        mod.read_reported(client, venue_id)
    except VenueError as exc:
        _log.warning("the order {} ({}) refused the strategy's cancel as ended and cannot be read ({}): the "
                     "cancel is sent again at the next check", venue_id, cid, exc)  # fmt: skip
        return False
    followed = mod._venue_id(cid)
    return followed == venue_id or _send_cancel(mod, cid, followed, depth + 1)


def _follow_replaced(mod: Modifier, client: AlpacaTradingClient, cid: str, venue_id: str, depth: int) -> bool:
    """A kept cancel of ``cid`` refused because Alpaca order ``venue_id`` is ``replaced`` (the
    stream's update of it lost or not seen yet, e.g. a cut whose answer was lost): that order
    read and reported first (its fills final), the order its ``replaced_by`` names followed (a
    later modify or cancel goes to it) and the cancel sent to it, along the chain. False (kept
    for the next check) when it cannot be read, names no replacement yet (Alpaca names it a
    moment after the status) or the chain is longer than :data:`~.submit.MAX_REPLACEMENTS`."""
    try:
        order = mod.read_reported(client, venue_id)
    except VenueError as exc:
        _log.warning("the order {} ({}) refused the strategy's cancel as replaced and cannot be read ({}): the "
                     "cancel is sent again at the next check", venue_id, cid, exc)  # fmt: skip
        return False
    if order.status is not AlpacaStatus.REPLACED or order.replaced_by is None or depth >= MAX_REPLACEMENTS:
        _log.warning("the order {} ({}) refused the strategy's cancel as replaced and reads {}{}: the cancel is "
                     "sent again at the next check", venue_id, cid, order.status.value,
                     "" if order.replaced_by is None else f", replaced by {order.replaced_by}")  # fmt: skip
        return False
    new_id = str(order.replaced_by)
    ours = replacement_is_ours(mod, client, cid, new_id)
    if not ours:
        return ours is False  # (another client's: the kept cancel dropped, ALERTed; unread: kept)
    _log.warning("Alpaca refused the cancel of {} (Alpaca order {}) the strategy asked, the order replaced by {}: "
                 "{} is followed and the cancel sent to it", cid, venue_id, new_id, new_id)  # fmt: skip
    mod.follow(cid, venue_id, new_id)
    return _send_cancel(mod, cid, new_id, depth + 1)


def replacement_is_ours(mod: Modifier, client: AlpacaTradingClient, cid: str, new_id: str) -> bool | None:
    """Whether Alpaca order ``new_id``, which replaced an order of our ``cid``, is ours (a
    replacement the runtime made: its client order id aliased to ``cid``), read by id. False,
    with an ERROR ALERT, when another client made it (the dashboard, another tool): it is not
    followed, so its fills are not taken as ours and it is not cancelled. None when it cannot be
    read (nothing followed)."""
    try:
        new = mod.rest(f"order {new_id} ({cid})", lambda: client.get_order_by_id(new_id), repeatable=True)
    except VenueError as exc:
        _log.warning("the order {} that replaced {}'s cannot be read ({}): not followed", new_id, cid, exc)
        return None
    if mod.tracker.ours(str(new.client_order_id)) == cid:
        return True
    _log.error("ALERT order {}: Alpaca shows it replaced by {} (client order id {}), an order another client made: "
               "not followed and not cancelled by the runtime; it is no longer the strategy's at Alpaca and may "
               "work and fill there: check it at Alpaca, then ml4t-live reconcile", cid, new_id,
               new.client_order_id)  # fmt: skip
    return False


def refused_in(exc: VenueRequestFailed) -> str | None:
    """The state Alpaca names in a 422 refusing a cancel ('order is already in "pending_new"
    state'), None for another answer."""
    state = _ALREADY_IN.search(exc.message or "") if exc.status == 422 else None
    return None if state is None else state.group(1)
