"""Replaces Alpaca answered and then did not carry out (:class:`UndoneReplaces`), for the
:class:`~.tracker.OrderTracker`: a replacement that ended while the order it replaces was not shown
``replaced`` gives way to the old order, followed again, its end kept on the old order; an old
order that ended first, its replace pending, keeps its own end as our order's.

Pure bookkeeping on the tracker's map of :class:`~.tracked.Tracked` states (shared, not copied);
every method is called under the tracker's lock.
"""

from __future__ import annotations

from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.models import Order as AlpacaOrder
from loguru import logger

from ...events import OrderCancelled, OrderEvent, OrderRejected
from .tracked import Tracked

_log = logger.bind(component="alpaca.tracker")


class UndoneReplaces:
    def __init__(self, orders: dict[str, Tracked]) -> None:
        self._orders = orders  # the tracker's: Alpaca order id -> state
        self._undone: dict[str, str] = {}  # Alpaca id of a replacement -> the old order followed again (undo)

    def replace_undone(self, old_venue_id: str, replacement: AlpacaOrder) -> bool:
        """A replace Alpaca answered and then did not carry out (the old order read open, its
        ``replacement`` read ended): the old order is followed again, as :meth:`undo` does (or
        already was). An old order already shown ``replaced`` is not (the replace was carried
        out and the replacement's end is our order's), nor one shown ended (its end is our
        order's): False then."""
        old = self._orders.get(old_venue_id)
        if old is not None and (old.replaced or old.own_end is not None):
            return False
        if old is not None and old.successor == str(replacement.id):
            self._follow_old(old_venue_id, replacement)
        return True

    def followed_instead(self, venue_id: str) -> str | None:
        """The Alpaca id of the old order followed again, still working, since the end of its
        replacement ``venue_id`` was taken as a replace not carried out (:meth:`undo`); None
        when there is none."""
        old = self._undone.get(venue_id)
        state = self._orders.get(old) if old is not None else None
        return old if state is not None and not state.terminal else None

    def replacements(self) -> list[str]:
        """The Alpaca ids of the replacements whose end was taken as a replace not carried out
        (:meth:`undo`) while the old order they give way to has not ended for good."""
        return list(self._undone)

    def ended_first(self, venue_id: str) -> OrderEvent | None:
        """The end the order replaced by ``venue_id`` showed of its own while its replace was
        pending (it ended first: Alpaca then ends the replacement), taken once (the end stays
        noted: :meth:`replace_undone`); None if none."""
        old = next((s for s in self._orders.values() if s.successor == venue_id and s.own_end is not None), None)
        if old is None or old.replaced or old.own_end_reported:
            return None
        end, old.own_end_reported = old.own_end, True
        _log.warning("Alpaca order {} ({}), a replacement, ended after the order it replaces ended {} with its "
                     "replace pending: the replace was not carried out, that end is the order's", venue_id,
                     old.ours, getattr(end, "reason", end))  # fmt: skip
        return end

    def undo(self, state: Tracked, order: AlpacaOrder) -> bool:
        """``order``, a replacement, ended while the order it replaces was not shown
        ``replaced`` (the replace answered, then not carried out: AL-14, or the old order's
        ``replaced`` not seen yet): the old order is followed again and this end is kept on it,
        our order's end only if the old order is shown ``replaced`` later by this replacement
        (:meth:`end_when_replaced`). The order it replaces
        is the one followed with it as its successor or, a replace of ours whose answer was not
        followed yet (lost: only its client id is known), the one its ``replaces`` names, followed
        still and not shown ``replaced``. False when that is not the case."""
        venue_id = str(order.id)
        old_id = next((k for k, s in self._orders.items() if s.successor == venue_id and not s.replaced), None)
        if old_id is None and order.replaces is not None:  # (not linked: no successor named yet)
            replaced = self._orders.get(str(order.replaces))
            if (replaced is not None and replaced.ours == state.ours and replaced.successor is None
                    and not (replaced.replaced or replaced.terminal)):  # fmt: skip
                old_id = str(order.replaces)
        if old_id is None or self._orders[old_id].complete:
            return False
        self._follow_old(old_id, order)
        _log.warning("Alpaca order {} ({}), a replacement, ended {} before the order it replaces was "
                     "shown replaced: taken as a replace not carried out, the old order {} followed again "
                     "(shown replaced later, this end is the order's)", venue_id, state.ours,
                     order.status.value, order.replaces)  # fmt: skip
        return True

    def _follow_old(self, old_id: str, replacement: AlpacaOrder) -> None:
        """The old order ``old_id`` is followed again instead of its ended ``replacement``; that
        end is kept on it (:attr:`Tracked.undone_end`), the replacement speaks no more."""
        old = self._orders[old_id]
        old.terminal, old.successor = old.complete, None
        self._undone[str(replacement.id)] = old_id
        rejected = replacement.status is AlpacaStatus.REJECTED
        old.undone_end = (OrderRejected(old.ours, "rejected by Alpaca", "rejected") if rejected
                          else OrderCancelled(old.ours, replacement.status.value))  # fmt: skip
        old.undone_by = str(replacement.id)
        new = self._orders.setdefault(str(replacement.id), Tracked(old.ours))
        new.terminal = True

    def end_when_replaced(self, state: Tracked, order: AlpacaOrder) -> OrderEvent | None:
        """``order``, the order of ``state``, is shown ``replaced``: the end kept on it
        (:attr:`Tracked.undone_end`) is our order's when ``replaced_by`` names the replacement whose
        end that is (the replace taken as not carried out was after all); taken once. A replacement
        named otherwise is a later replace of it (the runtime's or the strategy's change after the
        undone one, shown before its answer is followed): that end is not our order's, it is
        dropped. None named (a REST read: Alpaca names the replacing order a moment after the
        status) says neither: the end stays kept until a view names it (or the later replace is
        followed: ``carry_over`` drops it). None when there is none to report."""
        end, end_by, by = state.undone_end, state.undone_by, order.replaced_by
        if end is None:
            return None
        if by is None:
            _log.info("Alpaca order {} ({}) is shown replaced, the order replacing it not named yet: the end of "
                      "{} kept on it waits for that name", order.id, state.ours, end_by)  # fmt: skip
            return None
        state.undone_end = state.undone_by = None
        if str(by) != end_by:
            _log.info("Alpaca order {} ({}) is shown replaced by {}, a later replace than {}, whose end was "
                      "kept on it: that end is not the order's", order.id, state.ours, by, end_by)  # fmt: skip
            return None
        _log.warning("Alpaca order {} ({}) is shown replaced after its replacement ended: that end is the order's",
                     order.id, state.ours)  # fmt: skip
        return end

    def forget(self) -> None:
        """Drops each replacement of :attr:`_undone` whose old order has ended for good (filled,
        ``replaced``, or ended with no replacement followed after it): nothing can follow that
        old order again, so :meth:`followed_instead` would never name it."""
        for replacement, old_id in list(self._undone.items()):
            old = self._orders.get(old_id)
            if old is None or old.complete or old.replaced or (old.terminal and old.successor is None):
                del self._undone[replacement]
