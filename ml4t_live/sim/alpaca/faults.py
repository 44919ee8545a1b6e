"""Scripted faults for the simulated Alpaca: what each kind does and the state it leaves.

Kinds (``SimulatedAlpaca.inject(kind, **params)`` or a ``--faults`` scenario). Every kind takes
``count`` (how many requests / updates it affects, default 1 unless said otherwise).

=========================  =====================================================================
``drop_trade_stream``      close every trade_updates socket (the client reconnects)
``drop_data_stream``       close every market-data socket
``silence_trade_stream``   keep the current trade_updates sockets open but send nothing on them
                           (for ``seconds`` if given, else until they disconnect)
``silence_data_stream``    same for the market-data sockets (new connections are served normally)
``refuse_data_stream``     answer every NEW market-data connection 503 on the websocket upgrade
                           (the open sockets are untouched), for ``seconds`` if given, else for
                           good: a data socket that cannot be re-established
``lose_stream_bar``        the next ``count`` minute bars are never sent on the market-data stream
                           (the bars REST still serves them): lost for good to a client that does
                           not notice the gap; step mode moves on without waiting for the client
``rate_limit_storm``       the next ``count`` REST requests get 429 (default 5)
``submit_error``           the next ``count`` POST /v2/orders are ACCEPTED but answered ``status``
                           (500 default; 504 makes alpaca-py retry the submit): ambiguous outcome;
                           ``accepted=False`` answers the same error WITHOUT creating the order
``accept_then_504``        the next ``count`` POST /v2/orders are ACCEPTED (order created, its
                           trade updates sent) and answered 504 Gateway Timeout (AL-07)
``accept_then_drop``       the next ``count`` POST /v2/orders are ACCEPTED, then the connection is
                           closed without any answer (the client sees a dropped connection)
``accept_then_delay``      the next ``count`` POST /v2/orders are ACCEPTED and answered only after
                           ``seconds`` (default 2.0): a client with a shorter timeout gives up
``truncated_body``         the next ``count`` POST /v2/orders get a 200 whose JSON body is cut in
                           the middle (``Content-Length`` promises more, then the connection
                           closes: requests raises ``ChunkedEncodingError``); ``accepted`` (default
                           True): whether the order was created first
``non_json_body``          the next ``count`` POST /v2/orders are answered ``status`` (default 200)
                           with an HTML page instead of JSON (a proxy's error page); ``accepted``
                           (default True): whether the order was created first
``connection_reset``       the next ``count`` POST /v2/orders are answered with a TCP reset
                           (SO_LINGER 0) BEFORE the venue looks at them: the order is NOT created
``lose_cancel``            the next ``count`` DELETE /v2/orders/{id} of an open order are answered
                           204 and the order stays ``pending_cancel`` (status and trade update)
                           for good: it works on and can fill, as Alpaca can leave a cancel
                           pending; a later DELETE of it is refused 422 (already pending_cancel).
                           ``bars``: carried out after all (``canceled``) when that many more
                           bars have opened, as Alpaca ends a pending cancel late. ``step``
                           (true): the DELETE moves the replay on one bar before its 204 (step
                           mode, as a GET /v2/clock does), so the order meets that bar's open
                           while its cancel is pending: an order the open fills ends ``filled``
                           though the DELETE was answered 204 (the fill wins the race)
``step_before_replace``    the next ``count`` PATCH /v2/orders/{id} move the replay on one bar (step
                           mode, as a GET /v2/clock does) BEFORE the venue carries out the
                           replace: the order meets that bar's open first, so a fill there lands
                           between the client's last read of the order and its replace (the old
                           order ends ``replaced`` with that fill; the new one is for the PATCH's
                           ``qty``). A rehearsal control for a modify's race with a fill
``slow_replace``           the next ``count`` PATCH /v2/orders/{id} are answered at once with the
                           new order (``pending_new``, not working yet) while the old order shows
                           ``pending_replace`` (status and trade update): it works on and can
                           fill. The replace is carried out when ``bars`` (default 1) more bars
                           have opened, before that bar is matched (``bars`` = 2: the old order
                           meets one bar's open first), as Alpaca can leave a replace pending;
                           a PATCH or DELETE of either order meanwhile is refused 422. An old
                           order that ended meanwhile (filled) leaves its replacement ``canceled``.
                           ``fail`` (true): the replace is not carried out when its bars are up:
                           the old order works on unchanged, its replacement ``canceled`` (AL-14:
                           a PATCH answered 200, the replace then rejected). ``stale_old`` (true):
                           while the replace is pending, a GET of the old order shows its status as
                           before the PATCH (``new`` / ``partially_filled``), not ``pending_replace``:
                           a REST read lagging the PATCH (the references do not rule it out)
``stale_order_read``       the next ``count`` GET /v2/orders/{id} are answered with the order as it
                           was before its last execution (``filled_qty``, average price, status):
                           a REST read that lags the trade_updates stream, which reported it
``stale_replaced_read``    the next ``count`` GET /v2/orders/{id} of an order already ``replaced`` are
                           answered as before the PATCH (``new`` / ``partially_filled``, no
                           ``replaced_by``): a REST read lagging the replace the trade_updates
                           stream has already reported (the references do not rule it out)
``replaced_by_late``       the next ``count`` GET /v2/orders/{id} or GET /v2/orders:by_client_order_id
                           of an order already ``replaced`` show it ``replaced`` with
                           ``replaced_by`` null: Alpaca filling in the field a moment after the
                           status (listings are not affected)
``stale_client_id_read``  the next ``count`` GET /v2/orders:by_client_order_id are answered with the
                           order as before its last execution (``fill``, default true) and, if it
                           is ``replaced``, as before its replace (``replace``, default true: ``new``
                           / ``partially_filled``, no ``replaced_by``): a read by client order id
                           lagging the trade stream, as ``stale_order_read`` / ``stale_replaced_read``
                           are for a read by id
``stale_listing``          the next ``count`` GET /v2/orders show every ``replaced`` order as before
                           its replace (``new`` / ``partially_filled``, no ``replaced_by``; the
                           status filter applied to that view): a listing lagging the replaces the
                           trade stream already reported
``order_read_error``       the next ``count`` GET /v2/orders/{id} (of the order ``order_id`` only, if
                           given; after ``skip`` such reads answered normally) are answered
                           ``status`` (default 503): an order the venue cannot show for a while;
                           404 (Alpaca's "order not found"): a read by id lagging a listing;
                           another 4xx: a refusal; 200: an answer that is not an order; with
                           ``reset = true`` a TCP reset, no answer at all
``replace_error``          the next ``count`` PATCH /v2/orders/{id} are answered ``status`` (default
                           503); ``carried_out`` (default False): whether the replace was carried
                           out first (a lost answer) or not at all
``cancel_error``           same for the next ``count`` DELETE /v2/orders/{id} (with ``lose_cancel``
                           armed too, a carried-out cancel stays ``pending_cancel``)
``lookup_error``           the next ``count`` GET /v2/orders:by_client_order_id are answered
                           ``status`` (default 503): a venue that cannot tell what it holds; 200:
                           an answer that is not an order
``listing_error``          the next ``count`` GET /v2/orders are answered ``status`` (default 503)
``delay_trade_updates``    the next ``count`` trade updates leave ``seconds`` late (order kept)
``duplicate_trade_updates`` the next ``count`` trade updates are sent twice
``partial_fill``           the next fill is split into ``parts`` executions (matching core)
``reject_next``            the next order is rejected with ``reason`` (matching core)
``wash_trade_check``       from now on (``inject`` only; ``on=False`` ends it) a simple order on a symbol
                           with an open order of the opposite side is refused 403 40310000
                           "potential wash trade detected. use complex orders", nothing created (AL-10)
``refuse_next``            the next ``count`` POST /v2/orders are refused 403 40310000 with
                           ``message`` (default "insufficient buying power"), nothing created (AL-08)
=========================  =====================================================================

The submit faults (``submit_error`` to ``connection_reset``, and ``accept_then_delay``) share one queue: each POST
/v2/orders takes the oldest armed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "drop_trade_stream", "drop_data_stream", "silence_trade_stream", "silence_data_stream",
    "rate_limit_storm", "submit_error", "delay_trade_updates", "duplicate_trade_updates",
    "partial_fill", "reject_next", "accept_then_504", "accept_then_drop", "truncated_body",
    "non_json_body", "connection_reset", "lookup_error", "accept_then_delay", "wash_trade_check",
    "refuse_next", "refuse_data_stream", "lose_stream_bar", "lose_cancel", "step_before_replace",
    "slow_replace", "stale_order_read", "order_read_error", "replace_error", "cancel_error",
    "stale_replaced_read", "replaced_by_late", "stale_client_id_read", "stale_listing", "listing_error",
)
STREAM_KINDS = KINDS[:4]
SUBMIT_KINDS = ("submit_error", "accept_then_504", "accept_then_drop", "truncated_body",
                "non_json_body", "connection_reset", "accept_then_delay")


class UnknownFault(ValueError):
    pass


def check_fault(kind: str, params: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise UnknownFault(f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if kind == "submit_error" and int(params.get("status", 500)) < 500:
        raise UnknownFault("submit_error needs a 5xx status")
    status = int(params.get("status", 503))
    if kind == "order_read_error" and status < 400 and status != 200:
        raise UnknownFault("order_read_error needs a 4xx or 5xx status, or 200")
    if kind == "lookup_error" and status < 500 and status != 200:
        raise UnknownFault("lookup_error needs a 5xx status, or 200")
    if kind in ("listing_error", "replace_error", "cancel_error") and status < 500:
        raise UnknownFault(f"{kind} needs a 5xx status")
    if int(params.get("count", 1)) < 1:
        raise UnknownFault(f"{kind}: count must be >= 1")
    if kind == "slow_replace" and int(params.get("bars", 1)) < 1:
        raise UnknownFault("slow_replace: bars must be >= 1")


#: order_read_error's ``reset``: the read is answered with a TCP reset (no status)
RESET = 0


@dataclass(frozen=True)
class SubmitFault:
    """What one POST /v2/orders gets instead of a plain answer."""

    kind: str
    status: int = 200
    accepted: bool = True  # the order is created before the faulty answer
    seconds: float = 0.0  # accept_then_delay: how long the answer is held


def _submit_fault(kind: str, params: dict[str, Any]) -> SubmitFault:
    if kind == "submit_error":
        return SubmitFault(kind, int(params.get("status", 500)), bool(params.get("accepted", True)))
    if kind == "accept_then_504":
        return SubmitFault(kind, 504)
    if kind == "non_json_body":
        return SubmitFault(kind, int(params.get("status", 200)), bool(params.get("accepted", True)))
    if kind == "accept_then_delay":
        return SubmitFault(kind, 200, True, float(params.get("seconds", 2.0)))
    if kind == "truncated_body":
        return SubmitFault(kind, 200, bool(params.get("accepted", True)))
    return SubmitFault(kind, 0, kind == "accept_then_drop")  # accept_then_drop / connection_reset


@dataclass
class FaultState:
    """Counters the REST and stream layers consult; mutated only on the venue's loop."""

    rate_limit_left: int = 0
    submit_faults: list[SubmitFault] = field(default_factory=list)  # one per upcoming POST
    lookup_errors: list[int] = field(default_factory=list)  # statuses still to answer
    listing_errors: list[int] = field(default_factory=list)  # listing_error: statuses still to answer
    delays: list[float] = field(default_factory=list)  # seconds per upcoming trade update
    duplicates_left: int = 0
    bars_to_lose: int = 0  # lose_stream_bar: minute bars still to leave off the data stream
    # lose_cancel: per DELETE still to answer 204 and leave pending_cancel, the bars until it is
    # carried out after all (None: never) and whether the replay moves on one bar before the 204
    cancels_to_lose: list[tuple[int | None, bool]] = field(default_factory=list)
    replaces_to_step: int = 0  # step_before_replace: PATCHes still to move the replay on first
    #: slow_replace: (bars, fail, stale_old) per PATCH
    slow_replaces: list[tuple[int, bool, bool]] = field(default_factory=list)
    stale_reads: int = 0  # stale_order_read: GET /v2/orders/{id} still to answer as before the last fill
    stale_replaced_reads: int = 0  # stale_replaced_read: GETs of a replaced order still to answer as before it
    late_replaced_by: int = 0  # replaced_by_late: GETs of a replaced order still to answer without replaced_by
    #: stale_client_id_read: per read by client order id still to lag, (before the last fill, before the replace)
    stale_client_id_reads: list[tuple[bool, bool]] = field(default_factory=list)
    stale_listings: int = 0  # stale_listing: GET /v2/orders still to show replaced orders as before their replace
    #: order_read_error: per armed fault [order id or None, reads still to skip, reads to refuse, status]
    read_errors: list[list[Any]] = field(default_factory=list)
    #: replace_error / cancel_error: per upcoming PATCH / DELETE (status, carried out first)
    change_errors: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)
    applied: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def arm(self, kind: str, params: dict[str, Any]) -> None:
        """Record a REST / trade-update fault; stream and matching faults are applied elsewhere."""
        count = int(params.get("count", 1))
        if kind == "rate_limit_storm":
            self.rate_limit_left += int(params.get("count", 5))
        elif kind in SUBMIT_KINDS:
            self.submit_faults.extend([_submit_fault(kind, params)] * count)
        elif kind == "lookup_error":
            self.lookup_errors.extend([int(params.get("status", 503))] * count)
        elif kind == "listing_error":
            self.listing_errors.extend([int(params.get("status", 503))] * count)
        elif kind == "delay_trade_updates":
            self.delays.extend([float(params.get("seconds", 1.0))] * count)
        elif kind == "duplicate_trade_updates":
            self.duplicates_left += count
        elif kind == "lose_stream_bar":
            self.bars_to_lose += count
        elif kind == "lose_cancel":
            bars = params.get("bars")
            lost = (None if bars is None else int(bars), bool(params.get("step", False)))
            self.cancels_to_lose.extend([lost] * count)
        elif kind == "step_before_replace":
            self.replaces_to_step += count
        elif kind in ("replace_error", "cancel_error"):
            error = (int(params.get("status", 503)), bool(params.get("carried_out", False)))
            self.change_errors.setdefault(kind, []).extend([error] * count)
        elif kind == "order_read_error":
            order_id = params.get("order_id")
            status = RESET if bool(params.get("reset", False)) else int(params.get("status", 503))
            self.read_errors.append([None if order_id is None else str(order_id), int(params.get("skip", 0)),
                                     count, status])  # fmt: skip
        elif kind == "stale_order_read":
            self.stale_reads += count
        elif kind == "stale_replaced_read":
            self.stale_replaced_reads += count
        elif kind == "replaced_by_late":
            self.late_replaced_by += count
        elif kind == "stale_client_id_read":
            lag = (bool(params.get("fill", True)), bool(params.get("replace", True)))
            self.stale_client_id_reads.extend([lag] * count)
        elif kind == "stale_listing":
            self.stale_listings += count
        elif kind == "slow_replace":
            slow = (int(params.get("bars", 1)), bool(params.get("fail", False)), bool(params.get("stale_old", False)))
            self.slow_replaces.extend([slow] * count)
        self.applied.append((kind, dict(params)))

    def take_rate_limit(self) -> bool:
        if self.rate_limit_left > 0:
            self.rate_limit_left -= 1
            return True
        return False

    def take_submit_fault(self) -> SubmitFault | None:
        return self.submit_faults.pop(0) if self.submit_faults else None

    def take_lost_cancel(self) -> tuple[bool, int | None, bool]:
        """(this DELETE is lost, bars until it is carried out after all: None never, whether the
        replay moves on one bar before the DELETE is answered)."""
        if self.cancels_to_lose:
            return True, *self.cancels_to_lose.pop(0)
        return False, None, False

    def take_replace_step(self) -> bool:
        """Whether this PATCH moves the replay on one bar before its replace (step_before_replace)."""
        if self.replaces_to_step > 0:
            self.replaces_to_step -= 1
            return True
        return False

    def take_slow_replace(self) -> tuple[int, bool, bool] | None:
        """(the bars this PATCH's replace stays pending, whether it then fails, whether a GET of
        the old order meanwhile shows its status as before the PATCH) (slow_replace); None:
        carried out at once."""
        return self.slow_replaces.pop(0) if self.slow_replaces else None

    def take_stale_read(self) -> bool:
        if self.stale_reads > 0:
            self.stale_reads -= 1
            return True
        return False

    def take_stale_replaced_read(self) -> bool:
        if self.stale_replaced_reads > 0:
            self.stale_replaced_reads -= 1
            return True
        return False

    def take_late_replaced_by(self) -> bool:
        if self.late_replaced_by > 0:
            self.late_replaced_by -= 1
            return True
        return False

    def take_stale_client_id_read(self) -> tuple[bool, bool]:
        """(as before its last fill, as before its replace) for this read by client order id."""
        return self.stale_client_id_reads.pop(0) if self.stale_client_id_reads else (False, False)

    def take_stale_listing(self) -> bool:
        if self.stale_listings > 0:
            self.stale_listings -= 1
            return True
        return False

    def take_read_error(self, order_id: str) -> int | None:
        """The status this GET /v2/orders/{order_id} is answered (order_read_error); :data:`RESET`:
        a TCP reset instead of an answer; None: served."""
        for armed in self.read_errors:
            if armed[0] not in (None, order_id):
                continue
            if armed[1] > 0:
                armed[1] -= 1
                continue
            armed[2] -= 1
            if armed[2] <= 0:
                self.read_errors.remove(armed)
            return int(armed[3])
        return None

    def take_change_error(self, kind: str) -> tuple[int, bool] | None:
        """(status, carried out first) for this PATCH / DELETE (``kind``: replace_error or
        cancel_error); None: answered normally."""
        errors = self.change_errors.get(kind)
        return errors.pop(0) if errors else None

    def take_lookup_error(self) -> int | None:
        return self.lookup_errors.pop(0) if self.lookup_errors else None

    def take_listing_error(self) -> int | None:
        return self.listing_errors.pop(0) if self.listing_errors else None

    def take_delay(self) -> float:
        return self.delays.pop(0) if self.delays else 0.0

    def take_duplicate(self) -> bool:
        if self.duplicates_left > 0:
            self.duplicates_left -= 1
            return True
        return False

    def take_lost_bar(self) -> bool:
        if self.bars_to_lose > 0:
            self.bars_to_lose -= 1
            return True
        return False
