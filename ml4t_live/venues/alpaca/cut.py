"""The corrective change of a replace's check (:mod:`.modify`): the replacement that asks too much
cut down to what is left, or cancelled when nothing is left, or (a restart's check) brought back to
the terms last recorded; an over-fill found on the way is an ERROR and a ``VenueErrorReported``
``over_filled``. Plain functions :class:`~.modify.Modifier` calls (engine thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from loguru import logger

from ...events import VenueErrorReported
from ...protocols import OrderRequest
from ...quantities import EPS as _EPS
from .parsing import OPEN_STATUSES, num
from .rest import AlpacaTradingClient, VenueRequestFailed

if TYPE_CHECKING:  # (annotations only)
    from .modify import Modifier

_log = logger.bind(component="alpaca.modify")
VENUE = "alpaca"
#: checks of one replace that may get no answer (each at an end of bar) before an ALERT gives up
MAX_TRIES = 5
#: cut-down PATCHes one modify may send (each can race with a fill as the first did)
MAX_CUTS = 3


@dataclass(slots=True)
class Replaced:
    """A replace whose old order's final fills are not checked yet."""

    request: OrderRequest  # the strategy's order: its total quantity and its new terms
    old_id: str  # the Alpaca order replaced
    old_filled: float  # its own filled_qty the PATCH counted
    filled: float  # the chain's fills the PATCH counted (its qty = total - filled)
    new_id: str  # the replacement
    cuts: int = 0  # cut-down PATCHes sent so far for this modify
    tries: int = 0  # checks of it that got no answer so far
    restart: bool = False  # made at a warm restart against the book's terms (Modifier.check_chain)
    other_prices: bool = False  # (restart) the replacement's prices are not the book's
    #: (a cut's or bring-back's check) the check whose replacement this PATCH changed: made again
    #: when Alpaca does not carry the PATCH out, so the chain is cut / brought back again
    parent: Replaced | None = None
    change: str = "modify"  # what sent this replace: the strategy's modify, a "cut" or a "bring-back"


def cut(mod: Modifier, client: AlpacaTradingClient, check: Replaced, excess: float) -> None:
    """The replacement of ``check``, which asks ``excess`` too much, read, then cut down to
    what is left or cancelled. VenueError / ValueError as the read or the cut raised it."""
    cid, total = check.request.client_order_id, check.request.quantity
    new = mod.read_reported(client, check.new_id)
    if new.status is AlpacaStatus.PENDING_REPLACE:  # (a cut whose answer was lost, not carried out yet)
        mod.check_later(check, f"the change of {check.new_id} ({cid}) to what is left is pending", None, quiet=True)
        return
    if new.status is AlpacaStatus.REPLACED:  # (a cut whose answer was lost)
        if new.replaced_by is None:  # (Alpaca names the order replacing it a moment after the status)
            mod.check_later(check, f"the change of {check.new_id} ({cid}) to what is left was carried out; the "
                            "order replacing it is not named yet", None, quiet=True)  # fmt: skip
            return
        _follow_cut(mod, client, check, excess, str(new.replaced_by))
        return
    own = num(new.filled_qty) or 0.0
    filled = check.filled + excess + own
    left = total - filled
    working = new.status in OPEN_STATUSES and new.status is not AlpacaStatus.PENDING_CANCEL
    read = f"the {check.change}'s read"
    if check.restart:
        more = (f"the chain of {cid} asks {excess:g} more than the {total:g} last recorded (a fill between a "
                "modify's read and its replace, or a change Alpaca took before a crash that the journal "
                "did not record)")  # fmt: skip
    else:
        more = f"Alpaca order {check.old_id} ({cid}) filled {excess:g} more between {read} and its replace"
    if left < -_EPS:  # the chain traded more than asked already: the rest of it is cancelled
        text = (f"{more}, and its replacement {check.new_id} filled {own:g}: the chain traded "
                f"{filled:g}, {-left:g} more than the {total:g} asked; check the position"
                + ("; the replacement is cancelled" if working else ""))  # fmt: skip
        # said here, when found: the event reaches the engine only at its next settle, which a
        # run that fails meanwhile never reaches (the barrier shows it at DEBUG)
        _log.error("{}", text)
        mod.stream.emit([VenueErrorReported(VENUE, "over_filled", text, cid)])
    else:
        if not working:
            what = f"it is {new.status.value} already: nothing to cut"  # (its fills are reported)
            if excess < -_EPS:  # a bring-back too late: the venue traded less than the book holds
                _log.error("the chain of {} could not be brought back to the terms last recorded ({:g}): its "
                           "replacement {} is {} already; the chain filled {:g}: the venue and the book "
                           "disagree; check the position", cid, total, check.new_id, new.status.value,
                           filled)  # fmt: skip
                return
        elif left <= _EPS:
            what = "cancelled, nothing is left"
        elif cid in mod.cancels:
            what = "cancelled, as the strategy asked"
        else:
            what = f"{'cut down to' if excess > _EPS else 'asking'} the {left:g} left" \
                if check.cuts < MAX_CUTS else "not cut again"  # fmt: skip
        if excess > _EPS:
            again = ": its replacement {}: {}" if check.restart else "; the replacement {} asked for it again: {}"
            _log.warning("{}" + again, more, check.new_id, what)
        else:  # (a restart's chain asking less than the book, or at other prices)
            _log.warning("the chain of {} asks {:g} in all where {:g} were last recorded{} (a change Alpaca "
                         "took before a crash that the journal did not record; the strategy's order keeps "
                         "the recorded terms): its replacement {} is brought back to them: {}", cid,
                         total + excess, total, ", at other prices" if check.other_prices else "",
                         check.new_id, what)  # fmt: skip
    if not working:
        return
    if left <= _EPS or cid in mod.cancels:  # (the strategy's cancel, kept while this check was pending)
        cancel_replacement(mod, client, check)
        mod.cancels.discard(cid)
    elif check.cuts >= MAX_CUTS:
        _log.error("the replacement {} of {} {} after {} changes; not changed again: the venue and the book "
                   "disagree; check it at the venue", check.new_id, cid,
                   "still asks too much" if excess > _EPS else "is still not brought back to the terms last recorded",
                   check.cuts)  # fmt: skip
    else:
        made = mod.replace(check.request, check.new_id, filled)
        if made is None:  # (its answer lost and not seen: replace_unconfirmed was reported)
            mod.check_later(check, f"the change of {check.new_id} ({cid}) to what is left is not seen", None)
            return
        mod.check_replaced(Replaced(check.request, check.new_id, own, filled, str(made.id), check.cuts + 1,
                                    parent=check, change=_change(excess)))  # fmt: skip


def _follow_cut(mod: Modifier, client: AlpacaTradingClient, check: Replaced, excess: float, made_id: str) -> None:
    """The replacement of ``check`` shows ``replaced`` by ``made_id``: the cut sent for it, whose
    answer was lost and whose look-up found nothing or got no answer, was carried out. Our order is
    ``made_id`` now; the cut's check is made as if its answer had come (what it counted read off its
    ``qty``). Followed before it is read, so the fills the read reports continue the chain's
    cumulative quantity. VenueError as the read of ``made_id`` raised it (followed already: a
    later check follows it again, to the same effect)."""
    cid = check.request.client_order_id
    mod.follow(cid, check.new_id, made_id)  # (first: what the read reports continues the chain's fills)
    made = mod.read_reported(client, made_id)
    counted = check.request.quantity - (num(made.qty) or 0.0)  # the chain's fills the cut counted
    _log.warning("the change of {} ({}) to what is left, its answer lost, was carried out: {} asks {:g}",
                 check.new_id, cid, made_id, num(made.qty) or 0.0)  # fmt: skip
    mod.check_replaced(Replaced(check.request, check.new_id, counted - check.filled - excess, counted, made_id,
                                check.cuts + 1, parent=check, change=_change(excess)))  # fmt: skip


def _change(excess: float) -> str:
    """What a PATCH of a replacement asking ``excess`` too much is: a cut, or (asking less, or at
    other prices: a restart's) a bring-back."""
    return "cut" if excess > _EPS else "bring-back"


def cancel_replacement(mod: Modifier, client: AlpacaTradingClient, check: Replaced) -> None:
    """Cancel the replacement of ``check`` (nothing is left); a retried DELETE Alpaca answers
    422 because the first one was taken (pending_cancel, canceled) is that cancel."""
    cid = check.request.client_order_id
    try:
        mod.rest("cancel " + cid, lambda: client.cancel_order_by_id(check.new_id), repeatable=True)
    except VenueRequestFailed as exc:
        if not (exc.status == 422 and ("pending_cancel" in exc.message or '"canceled"' in exc.message)):
            raise
        _log.info("Alpaca had taken the cancel of {} ({}) already: {}", check.new_id, cid, exc.message)
