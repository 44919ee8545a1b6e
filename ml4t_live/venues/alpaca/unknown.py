"""UnknownOutcomes: submits Alpaca may or may not have, looked up by client order id, bounded.

A submit whose answer was lost (timeout, reset, a body cut in the middle or not JSON, a 5xx) and
whose immediate look-up did not settle it lands here (:mod:`.submit`). The stream's watchdog
(:class:`~.order_stream.OrderStream`) then looks each one up by ``client_order_id`` once per
``order_poll_interval``:

* found (or reported meanwhile by the trade stream) -> its ``OrderAccepted`` and whatever it
  already filled are reported (and its fills thereafter, as for any order of ours); an order
  replaced meanwhile is followed along ``replaced_by`` to its current replacement (the gateway's
  look-up), each replaced order's fills reported, the replacement's counted on from them. The
  look-up of the gateway's modify or cancel of the order settles it the same way when it finds
  it (before the modify replaces it);
* not found (404) or no answer, ``AlpacaConfig.unknown_order_lookups`` times in a row ->
  ``OrderLost`` and an ERROR log line. The order is never sent again. Its client order id stays
  registered, so if Alpaca does report it later, its fills still reach the engine. A submit that
  was found once (its report raised: ``failed_reports``) or that a listing of open orders showed
  (``listed``: :meth:`UnknownOutcomes.seen_listed`), or that a walk's first read found
  (:meth:`UnknownOutcomes.answered`) exists at Alpaca: it is never declared lost,
  and a look-up that finds nothing or gets no answer makes it rest as a failed report does
  (:meth:`UnknownOutcomes.missed`). A listed one is read by the Alpaca id the listing showed
  (``listed_id``, ``GET /v2/orders/{id}``) rather than by client order id.

The one that finds it first claims it (:meth:`UnknownOutcomes.claim`) and removes it only once
its report is on the queue (:meth:`UnknownOutcomes.settled`); a report that raises gives the claim
up instead (:meth:`UnknownOutcomes.release`): still of unknown outcome, it is looked up again by
the watcher (at its next tick at first), and what it filled is reported then (the tracker
reports each execution once, also after a report that raised half-way). A report that raises every time is retried:
at the ``unknown_order_lookups``-th failure an ERROR ``ALERT`` line names the order, once (its
acceptance or fills may be missing from the book: the position reconciliation shows a
difference), and from then on it is looked up only at every ``unknown_order_lookups``-th tick
(:meth:`~UnknownOutcomes.pending`; a look-up that gets no answer rests as long), so a report that works again later still brings its fills,
without a failure every tick; from the ``2 x unknown_order_lookups``-th failure
(:attr:`~UnknownOutcomes.back_off_after`, a second ERROR ``ALERT``) it is looked up less often
still: the spacing doubles at each failure (``2 x``, ``4 x``, ``8 x unknown_order_lookups``
ticks ...), at most :data:`MOST_TICKS_APART` ticks (:meth:`~UnknownOutcomes.spacing`). It is
never forgotten on our own failure: it stays of unknown outcome (``in``: the broker leaves it
to the adapter, never declared lost or ended) and looked up for good, so once its report works
again it is reported, also when it ended at Alpaca meanwhile (filled, cancelled: no listing of
open orders shows it any more); its id stays registered (its trade updates still reach the
engine), and a listing of open orders that shows it (the broker's reconciliation, a reconnect's
snapshot) or a modify or cancel of it reports it too. A report that raises there counts as a
failure as the watcher's do, and fails neither the listing (the order listed as it is, still
of unknown outcome) nor the modify otherwise than as one of an order being reported
(:class:`BeingReported`, nothing sent); a cancel is sent all the same (below). An OCO pair the trade stream reported (it exists) is
still walked for its stop leg; a walk of it that gets no answer or finds nothing is never
counted as a miss: at the ``unknown_order_lookups``-th such walk an ERROR ``ALERT`` names the
pair, once (its stop leg is not followed until a walk succeeds: its updates are taken as
foreign), and from that walk on it is walked less often, as a report that keeps raising is
looked up: every ``unknown_order_lookups``-th tick, then from the ``2 x unknown_order_lookups``-th
failed walk at a spacing doubling at each failure, at most :data:`MOST_TICKS_APART` ticks
(:meth:`~UnknownOutcomes.walk_failed`, :meth:`~UnknownOutcomes.spacing`); a resting pair is
walked at once when the trade stream reports an update of an OCO order, its take-profit's or a
leg's not ours yet of its symbol, one walk in flight per pair (:meth:`~UnknownOutcomes.wake_pairs`):
its stop leg's fill is not left unfollowed through a rest (also when it comes just after a woken
walk that failed), and a storm of other orders' updates does not walk a resting pair at each one
while its walk is under way. Until settled it still counts as
unknown (``in``) but is no longer looked up (:meth:`~UnknownOutcomes.pending`), so a snapshot that
lists it meanwhile leaves it to the claimer instead of taking its fills so far as known. A modify
or cancel whose look-up finds it claimed by another waits (:meth:`UnknownOutcomes.wait_settled`,
at most ``request_timeout``) for that report, so the replace counts the fills the report carries;
a claim that outlasts the wait refuses the modify (:class:`BeingReported`, nothing sent:
the order works unchanged, the strategy may ask again at a later bar). A cancel needs no fills
counted first: it is sent to the order the look-up found (``BeingReported.venue_id``) while the
order stays of unknown outcome, and its end and fills are reported with it (once each) when its
report is on the queue.

So an unknown outcome is settled within about ``unknown_order_lookups x order_poll_interval``
(default 5 x 5 s) plus the retries of each look-up (``max_request_attempts``).

Thread-safe: entries are added on the engine thread and settled on the stream's loop thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ...errors import ChangeDeferred
from .submit import OrderRefused

#: the most ticks of ``order_poll_interval`` between two look-ups of an entry whose report keeps
#: raising (about 5 minutes at the default 5 s; ``unknown_order_lookups`` ticks if that is more)
MOST_TICKS_APART = 64


class BeingReported(OrderRefused, ChangeDeferred):
    """A modify of a submit of unknown outcome that another (the watcher, a snapshot) found first
    and is still reporting, or whose report failed: what it filled is not counted yet, so nothing
    is sent; the order works unchanged and may be changed again at a later bar (a routine wait, a
    ChangeDeferred: logged as a WARNING). ``venue_id``: the
    Alpaca id of the order's current incarnation as its look-up found it (None when not found),
    which a cancel uses (a cancel needs no fills counted first: see
    :meth:`~.gateway.AlpacaGateway.cancel`)."""

    def __init__(self, message: str, venue_id: str | None = None) -> None:
        super().__init__(message)
        self.venue_id = venue_id


@dataclass
class Unknown:
    client_order_id: str
    reason: str  # why the outcome is unknown (the failed submit)
    also: str | None = None  # the second client order id of an OCO pair (its stop leg)
    misses: int = 0  # look-ups that found nothing or got no answer
    claimed: bool = False  # found: being reported by the one that claimed it
    failed_reports: int = 0  # claims given up because the report raised (see release)
    resting: int = 0  # ticks still to skip (a report that keeps raising: see pending)
    failed_walks: int = 0  # walks of one the trade stream reported that failed (see walk_failed)
    listed: bool = False  # a listing of open orders showed it: it exists at Alpaca (see seen_listed)
    listed_id: str | None = None  # the Alpaca id of the order under its id that a listing showed
    symbol: str | None = None  # the order's symbol (None: not known; any OCO update may be of it)
    woken: bool = False  # woken by an update, its walk not ended yet (see wake_pairs)
    unreadables: int = 0  # the watcher's look-ups answered with a body that cannot be read (see unread_answer)


class UnknownOutcomes:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: failed reports from which an entry is looked up ever less often (see :meth:`spacing`)
        self.back_off_after = 2 * limit
        self._lock = threading.Condition()  # notified when a claim ends
        self._items: dict[str, Unknown] = {}

    def add(self, client_order_id: str, reason: str, also: str | None = None, *, symbol: str | None = None) -> None:
        with self._lock:
            self._items[client_order_id] = Unknown(client_order_id, reason, also, symbol=symbol)

    def pending(self) -> list[Unknown]:
        """The entries to look up at this tick: not claimed, and not resting (an entry whose
        report failed is due once every :meth:`spacing` calls)."""
        with self._lock:
            due = []
            for item in self._items.values():
                if item.claimed:
                    continue
                if item.resting > 0:
                    item.resting -= 1
                    continue
                due.append(item)
            return due

    def claim(self, client_order_id: str) -> Unknown | None:
        """Claim the entry to report it (it stays, ``in``, until :meth:`settled`); it, or None
        when there is none or another caller claimed it first."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is None or item.claimed:
                return None
            item.claimed = True
            return item

    def settled(self, client_order_id: str) -> Unknown | None:
        """Remove the entry; it, or None when there was none (already settled or never unknown)."""
        with self._lock:
            self._lock.notify_all()
            return self._items.pop(client_order_id, None)

    def release(self, client_order_id: str) -> int:
        """Give up a claim whose report failed (raised): the entry is of unknown outcome again,
        claimable as before and looked up (:meth:`pending`) for good, it rests ``spacing - 1``
        ticks between look-ups (:meth:`spacing`); nothing is forgotten. The failed reports so
        far (0: no entry): the caller ALERTs at ``limit`` and at ``back_off_after``, once each."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is not None:
                item.claimed = False
                item.woken = False  # (a walk of it ended: see wake_pairs)
                item.failed_reports += 1
                item.resting = self.spacing(item.failed_reports) - 1
            self._lock.notify_all()
            return 0 if item is None else item.failed_reports

    def spacing(self, failures: int) -> int:
        """Ticks from one look-up of an entry whose report (or look-up, or walk) failed
        ``failures`` times to the next: 1 below ``limit``, ``limit`` below ``back_off_after``,
        then doubling at each failure (``2 x limit`` at ``back_off_after``), at most
        :data:`MOST_TICKS_APART` (or ``limit`` if that is more)."""
        if failures < self.limit:
            return 1
        if failures < self.back_off_after:
            return self.limit
        doubled = self.limit * 2 ** min(failures - self.back_off_after + 1, MOST_TICKS_APART.bit_length())
        return max(self.limit, min(doubled, MOST_TICKS_APART))

    def failed_reports(self, client_order_id: str) -> int:
        """The failed reports of the entry so far (0: none, or no entry)."""
        with self._lock:
            item = self._items.get(client_order_id)
            return 0 if item is None else item.failed_reports

    def wait_settled(self, client_order_id: str, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, while another caller's claim on the entry lasts;
        True when there is no entry (settled: its report is on the queue, or never unknown),
        False when it is still there (the claim outlasting the wait, or released: its report
        failed)."""
        with self._lock:
            self._lock.wait_for(lambda: not self._claimed(client_order_id), timeout)
            return client_order_id not in self._items

    def claimed(self, client_order_id: str) -> bool:
        """Whether a caller is reporting the entry now (claimed, not yet settled or released)."""
        with self._lock:
            return self._claimed(client_order_id)

    def _claimed(self, client_order_id: str) -> bool:
        item = self._items.get(client_order_id)
        return item is not None and item.claimed

    def walk_failed(self, client_order_id: str) -> bool:
        """One more walk of an entry the trade stream reported (it exists: never lost) that got
        no answer or found nothing: it rests ``spacing - 1`` ticks (:meth:`spacing` of its failed
        walks: walked at every tick below ``limit``, then every ``limit``-th, then ever less
        often; see :meth:`pending`). True at the ``limit``-th (the caller ALERTs, once)."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is None:
                return False
            item.failed_walks += 1
            item.woken = False  # (a walk of it ended: see wake_pairs)
            item.resting = max(item.resting, self.spacing(item.failed_walks) - 1)
            return item.failed_walks == self.limit

    def wake_pairs(self, client_order_id: str | None, symbol: str | None = None) -> list[Unknown]:
        """The trade stream reported an update of an OCO order, ours under ``client_order_id``
        (a take-profit), or None for one not ours (a stop leg, under Alpaca's id until a walk
        aliases it) of ``symbol``: the OCO pairs whose walks failed (:meth:`walk_failed`) that it
        may be of (that one; for one not ours, those of its symbol, or of no known symbol), not
        claimed, their rest ended, to walk at once (a stop-leg fill reaches the runtime then, not
        at the end of a rest of up to :data:`MOST_TICKS_APART` ticks). One walk in flight per
        pair: a woken pair is not woken again until a walk of it ends (:meth:`walk_failed`,
        :meth:`release`, :meth:`walk_ended`), so a storm of updates during it walks it once, not
        once each, and the update of its stop leg's fill after a woken walk that failed wakes it
        again at once."""
        with self._lock:
            woken = [item for item in self._items.values()
                     if item.also is not None and item.failed_walks and not item.claimed and not item.woken
                     and client_order_id in (None, item.client_order_id)
                     and (client_order_id is not None or None in (symbol, item.symbol) or symbol == item.symbol)]  # fmt: skip
            for item in woken:
                item.resting, item.woken = 0, True
            return woken

    def walk_ended(self, client_order_ids: list[str]) -> None:
        """The walks woken by an update (:meth:`wake_pairs`) of these entries ended, however
        (settled, failed, left to another claimer, raised): an update may wake them again."""
        with self._lock:
            for cid in client_order_ids:
                item = self._items.get(cid)
                if item is not None:
                    item.woken = False

    def seen_listed(self, client_order_id: str, venue_id: str | None) -> None:
        """A listing of open orders showed the entry (``venue_id``: the Alpaca id of the order
        under its own id, None when only a replacement of it was listed): it exists at Alpaca, so
        :meth:`missed` never declares it lost, and the walk may start at ``venue_id``
        (:meth:`listed_id`) instead of the look-up by client order id."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is not None:
                item.listed = True
                item.listed_id = venue_id or item.listed_id

    def listed_id(self, client_order_id: str) -> str | None:
        """The Alpaca id a listing showed for the entry (:meth:`seen_listed`), or None."""
        with self._lock:
            item = self._items.get(client_order_id)
            return None if item is None else item.listed_id

    def missed(self, client_order_id: str) -> Unknown | None:
        """One more look-up without the order; the entry (now removed) once the bound is reached.
        An entry known to exist at Alpaca (found once, its report failed; or shown by a listing)
        is never declared lost: it rests instead, as after a failed report, ``spacing - 1``
        ticks (:meth:`spacing` of its failed reports or of its misses, whichever is more), so a
        look-up that keeps getting no answer is not repeated at every tick."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is None or item.claimed:
                return None
            item.misses += 1
            if item.failed_reports or item.listed:
                item.resting = max(item.resting, self.spacing(max(item.failed_reports, item.misses)) - 1)
                return None
            if item.misses < self.limit:
                return None
            return self._items.pop(client_order_id)

    def answered(self, client_order_id: str) -> None:
        """A walk's first read found the entry (:meth:`.submit.OrderChains.chain`): it exists at
        Alpaca, so, as for one a listing showed (:meth:`seen_listed`), a look-up whose later read
        fails is never counted toward its loss (:meth:`missed`)."""
        self.seen_listed(client_order_id, None)

    def unread_answer(self, client_order_id: str) -> int:
        """The watcher's look-up of the entry was answered, after the retries, with a body that
        cannot be read: an answer that proves nothing about the order, so no miss (:meth:`missed`),
        and the entry is not taken as existing either (a later 404 counts toward its loss). It rests
        ``spacing - 1`` ticks (:meth:`spacing` of such answers so far). Nothing else is kept: only
        this look-up is excused. The such answers so far (0: no entry, or claimed); the caller
        ALERTs at ``limit`` and at ``back_off_after``, once each."""
        with self._lock:
            item = self._items.get(client_order_id)
            if item is None or item.claimed:
                return 0
            item.unreadables += 1
            item.resting = max(item.resting, self.spacing(item.unreadables) - 1)
            return item.unreadables

    def known_misses(self, client_order_id: str) -> int:
        """The look-ups without an answer so far of an entry known to exist at Alpaca (its
        report failed, or a listing showed it); 0: none, no entry, or not known to exist."""
        with self._lock:
            item = self._items.get(client_order_id)
            return item.misses if item is not None and (item.failed_reports or item.listed) else 0

    def __contains__(self, client_order_id: object) -> bool:
        with self._lock:
            return client_order_id in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
