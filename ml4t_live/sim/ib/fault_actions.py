"""What each scripted fault does to the running gateway: one function per fault, dispatched by kind.

Threading rule: called on the gateway's loop only (the parts it changes live there). The fault
kinds and their parameters are declared in :mod:`.faults`; the gateway decides when one fires
(at once, or at its ``at_bar``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from .faults import ScriptedFault
from .order_faults import Refusal

if TYPE_CHECKING:
    from .handlers import Dispatcher
    from .replay import Replay
    from .server import IBServer
    from .venue import IBVenue


def fire(fault: ScriptedFault, server: IBServer, venue: IBVenue, replay: Replay, dispatcher: Dispatcher) -> None:
    """Make ``fault`` happen now: to the connections, the replay, the next orders or requests."""
    p, nxt = fault.params, venue.next_faults
    match fault.kind:
        case "drop_connection":
            server.drop(p["client_id"])
        case "refuse_connections":
            server.refuse_for(float(p["seconds"]))
        case "silence_realtime_bars":
            for conn in server.clients():
                if p["client_id"] is None or conn.client_id == p["client_id"]:
                    conn.subs.realtime.clear()  # the client still believes it is subscribed
        case "freeze_gateway":
            server.freeze(None if p["seconds"] is None else float(p["seconds"]))
        case "nightly_reset":
            replay.outage(int(p["bars"]), bool(p["data_lost"]))
        case "delay_acks":
            nxt.arm("ack_delay", int(p["count"]), float(p["seconds"]))
        case "delay_fills":
            nxt.arm("fill_delay", int(p["count"]), float(p["seconds"]))
        case "reject_next":
            venue.exchange.reject_next(str(p["reason"]))
            if p["status_first"]:
                nxt.arm("reject_status_first", 1)
        case "partial_fill":
            venue.exchange.split_next_fill(int(p["parts"]))
        case (
            "duplicate_exec_details" | "exec_before_open_order" | "missing_order_status"
            | "status_before_exec" | "withhold_executions"
        ):
            nxt.arm(fault.kind, int(p["count"]))
        case "pacing_violation":
            dispatcher.pacing_violations += int(p["count"])
        case "unanswered_completed_orders":
            dispatcher.unanswered_completed_orders += int(p["count"])
        case "slow_completed_orders":
            dispatcher.slow_completed_orders += [float(p["seconds"])] * int(p["count"])
        case "stale_order_list":
            if p["list"] not in ("openOrders", "completedOrders", "executions"):
                raise ConfigError(f"stale_order_list: list must be 'openOrders', 'completedOrders' or "
                                  f"'executions', got {p['list']!r}")  # fmt: skip
            dispatcher.stale_lists.setdefault(p["list"], []).extend([float(p["seconds"])] * int(p["count"]))
        case _:
            _fire_order_fault(fault.kind, p, server, venue, dispatcher)


def _fire_order_fault(
    kind: str, p: dict[str, Any], server: IBServer, venue: IBVenue, dispatcher: Dispatcher
) -> None:
    nxt, requests = venue.next_faults, venue.request_faults
    match kind:
        case "black_hole_next":
            after = p["surface_after"]
            requests.black_holes += [None if after is None else float(after)] * int(p["count"])
        case "duplicate_order_id":
            requests.duplicate_ids += int(p["count"])
        case "rate_exceeded":
            requests.rate_exceeded += int(p["count"])
        case "refuse_next":
            requests.refusals += [Refusal(int(p["code"]), str(p["text"]))] * int(p["count"])
        case "cancel_reply":
            reply = str(p["reply"])
            if reply not in ("10147", "10148", "late", "lost"):
                raise ConfigError(f"cancel_reply: reply must be 10147, 10148, late or lost, got {reply!r}")
            requests.cancel_replies += [(reply, float(p["seconds"]))] * int(p["count"])
        case "rollback_next_valid_id":
            dispatcher.rollback_next_valid_id(int(p["to"]), p["client_id"])
        case "gateway_restart":
            if p["rollback_to"] is not None:
                for client_id in list(server.by_client):
                    dispatcher.rollback_next_valid_id(int(p["rollback_to"]), client_id)
            server.refuse_for(float(p["seconds"]))
            server.drop(None)
        case "duplicate_order_status":
            nxt.arm(kind, int(p["count"]), float(p["times"]))
        case "late_commission":
            nxt.arm(kind, int(p["count"]), float(p["seconds"]))
        case "commission_sentinel":
            nxt.arm(kind, int(p["count"]), float(p["correct_after"]), str(p["value"]))
        case "missing_commission":
            nxt.arm(kind, int(p["count"]))
