"""Scripted faults of the simulated gateway: what each kind does and how it is scheduled.

Kinds (``inject(kind, **params)`` from tests, ``[[fault]]`` tables in ``--faults file.toml``):

=========================  ==========================================================
``drop_connection``        close the socket of ``client_id`` (default: every client)
``refuse_connections``     refuse new connections for ``seconds``
``freeze_gateway``         hang for ``seconds`` (default: for good): every socket stays open and
                           new ones are accepted, but nothing is read, answered or sent (no
                           real-time bars, no acks, no handshake). When it thaws, the requests
                           that arrived meanwhile are handled; what it would have sent is lost
``silence_realtime_bars``  the real-time bar subscriptions of ``client_id`` (default: every
                           client) get nothing more, with no error and the socket up (IB-02: bars
                           silently stop); a new reqRealTimeBars is served normally
``nightly_reset``          data stops for ``bars`` bars: 1100, then 1102 (1101 with
                           ``data_lost=true``) and farm notices; bars in between are lost
``delay_acks``             hold the next ``count`` orders' acks back ``seconds``
``delay_fills``            hold the next ``count`` orders' fill messages back ``seconds``
``reject_next``            reject the next order: error 201 with ``reason``, then Inactive
                           (``status_first=true``: the Inactive frames first, then 201)
``partial_fill``           split the next order's fill into ``parts`` executions
``duplicate_exec_details`` send every execDetails of the next ``count`` orders twice
``exec_before_open_order`` the next ``count`` orders get no ack before their first fill
``status_before_exec``     fills of the next ``count`` orders send openOrder/orderStatus
                           before execDetails (the default is execDetails first)
``missing_order_status``   the next ``count`` orders get no orderStatus messages
``withhold_executions``    the executions of the next ``count`` orders after their first are
                           never sent (no execDetails, no commissionReport) nor listed by
                           reqExecutions; orderStatus still counts them (lost executions)
``pacing_violation``       answer the next ``count`` historical requests with error 162
``black_hole_next``        the next ``count`` placeOrders vanish: recorded, never answered,
                           never placed, absent from every query (IB-09); with
                           ``surface_after`` seconds they are placed that much later
``rollback_next_valid_id`` the next handshake of ``client_id`` (default: any) gets nextValidId
                           ``to``, as after a gateway restart (IB-05)
``gateway_restart``        the daily restart (IB-05): every client dropped, connections refused
                           for ``seconds``, each client's next nextValidId is ``rollback_to``
                           (none: no rollback)
``duplicate_order_status`` openOrder/orderStatus of the next ``count`` orders go out ``times``
                           times; a repeated Filled orderStatus carries avgFillPrice 0 (IB-11)
``late_commission``        commissionReports of the next ``count`` orders go out ``seconds``
                           after their execution, other frames in between (IB-13)
``commission_sentinel``    the next ``count`` orders' commissionReports carry ``value`` (-1,
                           "", 1.7976931348623157E308) instead of the commission; the real report follows after ``correct_after``
                           seconds (never when negative) (IB-13)
``missing_commission``     the next ``count`` orders' executions get no commissionReport
``cancel_reply``           the next ``count`` cancels: ``reply`` = "10147" / "10148" (refused,
                           the order unchanged), "late" (confirmed ``seconds`` later; meanwhile
                           out of matching but listed working, ``PendingCancel``, and not
                           completed) (IB-18) or
                           "lost" (never answered and never acted on: the order keeps working,
                           as a request written in the gateway's restart second gets no
                           response, IB-05)
``unanswered_completed_orders`` the next ``count`` reqCompletedOrders get no answer at all (no
                           completedOrder, no completedOrdersEnd): a look-up by orderRef
                           times out on the client side
``slow_completed_orders``  the next ``count`` reqCompletedOrders are answered ``seconds`` later
                           (what is completed then)
``stale_order_list``       the next ``count`` answers to the list ``list`` ("completedOrders":
                           reqCompletedOrders; "openOrders": reqOpenOrders and reqAllOpenOrders;
                           "executions": reqExecutions) are read when the request arrives and
                           sent ``seconds`` later, whatever changed meanwhile (a gateway slow to
                           send)
``duplicate_order_id``     the next ``count`` placeOrders get error 103, nothing placed (IB-20)
``rate_exceeded``          the next ``count`` placeOrders get error 100 (max message rate
                           exceeded), nothing placed (IB-23)
``refuse_next``            the next ``count`` placeOrders get error ``code`` with ``text``,
                           nothing placed (IB-21/22: 110, 200, 321, 451, 460 ...)
=========================  ==========================================================

Scheduling: ``at_bar = N`` fires just before replayed bar index N (0-based) opens; without
it a fault fires at once (a file's faults at start-up). Files use the shared scenario format
of :mod:`ml4t_live.sim.faults` (``seconds`` and ``count`` top-level, the rest in ``params``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..faults import Fault, FaultPlan

KINDS: dict[str, dict[str, object]] = {
    "drop_connection": {"client_id": None},
    "refuse_connections": {"seconds": 5.0},
    "freeze_gateway": {"seconds": None},
    "silence_realtime_bars": {"client_id": None},
    "nightly_reset": {"bars": 2, "data_lost": False},
    "delay_acks": {"seconds": 1.0, "count": 1},
    "delay_fills": {"seconds": 1.0, "count": 1},
    "reject_next": {"reason": "simulated rejection", "status_first": False},
    "partial_fill": {"parts": 2},
    "duplicate_exec_details": {"count": 1},
    "exec_before_open_order": {"count": 1},
    "status_before_exec": {"count": 1},
    "missing_order_status": {"count": 1},
    "withhold_executions": {"count": 1},
    "pacing_violation": {"count": 1},
    "black_hole_next": {"count": 1, "surface_after": None},
    "rollback_next_valid_id": {"to": 1, "client_id": None},
    "gateway_restart": {"seconds": 1.0, "rollback_to": 1},
    "duplicate_order_status": {"count": 1, "times": 3},
    "late_commission": {"count": 1, "seconds": 0.5},
    "commission_sentinel": {"count": 1, "value": "-1", "correct_after": 0.2},
    "missing_commission": {"count": 1},
    "cancel_reply": {"count": 1, "reply": "10148", "seconds": 1.0},
    "unanswered_completed_orders": {"count": 1},
    "slow_completed_orders": {"count": 1, "seconds": 0.5},
    "stale_order_list": {"count": 1, "seconds": 0.5, "list": "completedOrders"},
    "duplicate_order_id": {"count": 1},
    "rate_exceeded": {"count": 1},
    "refuse_next": {"count": 1, "code": 321, "text": "Error validating request.-'bN' : cause - "
                    "Order size does not conform to market rule"},
}


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    kind: str
    params: dict[str, Any]
    at_bar: int | None = None


def make_fault(kind: str, params: dict[str, Any]) -> ScriptedFault:
    """Validate a fault; raises ConfigError naming the bad kind or parameter."""
    if kind not in KINDS:
        raise ConfigError(f"unknown fault kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    params = dict(params)
    at_bar = params.pop("at_bar", None)
    unknown = set(params) - set(KINDS[kind])
    if unknown:
        raise ConfigError(
            f"fault {kind!r} has unknown parameter(s) {sorted(unknown)}; "
            f"it takes {sorted(KINDS[kind]) + ['at_bar']}"
        )
    merged = {**KINDS[kind], **params}
    if at_bar is not None and (not isinstance(at_bar, int) or at_bar < 0):
        raise ConfigError(f"fault {kind!r}: at_bar must be an integer >= 0, got {at_bar!r}")
    return ScriptedFault(kind, merged, at_bar)


def load_faults(source: str | Path | list[dict[str, Any]] | None) -> list[ScriptedFault]:
    """Faults from a TOML scenario in the shared format of ``ml4t_live.sim.faults``
    (``[[fault]] kind, at_bar, seconds, count, params``) or from a list of dicts shaped like
    ``inject``'s keywords (``{"kind": ..., "at_bar": ..., <params>}``)."""
    if source is None:
        return []
    if isinstance(source, (str, Path)):
        plan = FaultPlan.load(source, valid_kinds=KINDS)
        return [_from_plan(f) for f in plan.pending]
    faults = []
    for entry in source:
        entry = dict(entry)
        kind = entry.pop("kind", None)
        if not isinstance(kind, str):
            raise ConfigError(f"fault entry {entry} has no 'kind'")
        faults.append(make_fault(kind, entry))
    return faults


def _from_plan(fault: Fault) -> ScriptedFault:
    if fault.after_orders is not None:
        raise ConfigError(
            f"fault {fault.kind!r}: after_orders is not supported by the simulated IB gateway; "
            "use at_bar"
        )
    params: dict[str, Any] = dict(fault.params)
    if "seconds" in KINDS[fault.kind] and fault.seconds:
        params["seconds"] = fault.seconds
    if "count" in KINDS[fault.kind]:
        params["count"] = fault.count
    if fault.at_bar is not None:
        params["at_bar"] = fault.at_bar
    return make_fault(fault.kind, params)


_VALUED = ("ack_delay", "fill_delay", "duplicate_order_status", "late_commission",
           "commission_sentinel")  # fmt: skip


@dataclass(slots=True)
class OrderFaults:
    """Per-order fault flags (one instance per order; the venue's ``next_faults`` arms them)."""

    ack_delay: float = 0.0
    fill_delay: float = 0.0
    duplicate_exec_details: bool = False
    exec_before_open_order: bool = False
    status_before_exec: bool = False
    missing_order_status: bool = False
    withhold_executions: bool = False  # its executions after the first are lost
    duplicate_order_status: float = 0.0  # times each status frame goes out (0: once)
    late_commission: float = 0.0  # seconds the commissionReport is held back
    missing_commission: bool = False
    reject_status_first: bool = False
    commission_sentinel: float | None = None  # seconds until the real report (< 0: never)
    sentinel_value: str = ""
    _counts: dict[str, int] = field(default_factory=dict)
    _values: dict[str, float] = field(default_factory=dict)

    def arm(self, name: str, count: int, value: float = 0.0, text: str | None = None) -> None:
        self._counts[name] = self._counts.get(name, 0) + int(count)
        self._values[name] = value
        if text is not None:
            self.sentinel_value = text

    def take(self) -> OrderFaults:
        """The flags for the next order; decrements the armed counts."""
        out = OrderFaults()
        for name, count in list(self._counts.items()):
            if count <= 0:
                continue
            self._counts[name] = count - 1
            if name in _VALUED:
                setattr(out, name, self._values[name])
                out.sentinel_value = self.sentinel_value
            else:
                setattr(out, name, True)
        return out
