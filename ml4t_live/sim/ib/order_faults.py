"""Order requests the simulated gateway answers wrongly on purpose (see ``faults.py`` for kinds).

Threading rule: lives on the gateway's loop with the :class:`~.venue.IBVenue` that consults it.

:class:`RequestFaults` decides, before the order book sees a request, whether a placeOrder
vanishes (black hole, IB-09), is refused with 103 (duplicate order id, IB-20) or 100 (message
rate exceeded, IB-23), and how the next cancels are answered (10147 / 10148 / late, IB-18; lost).
:func:`commission_frames` and :func:`status_repeats` shape the messages of one order's fill
(late / missing / sentinel commissionReport, IB-13; repeated status frames, IB-11).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from loguru import logger

from . import encoders as enc
from .faults import OrderFaults

_log = logger.bind(component="sim.ib.venue")

DUPLICATE_ID = (103, "Duplicate order id")
RATE_EXCEEDED = (100, "Max rate of messages per second has been exceeded:max=50 rec=51 (1)")


@dataclass(frozen=True, slots=True)
class Refusal:
    """How a placeOrder is answered instead of placed: error ``code`` with ``text``, or (code 0)
    swallowed, to be placed ``surface_after`` seconds later (None: never)."""

    code: int
    text: str = ""
    surface_after: float | None = None


@dataclass(slots=True)
class RequestFaults:
    """Armed request faults, each consumed by the next matching request."""

    black_holes: list[float | None] = field(default_factory=list)  # each: its surface_after
    duplicate_ids: int = 0
    rate_exceeded: int = 0
    refusals: list[Refusal] = field(default_factory=list)  # scripted (code, text) answers
    cancel_replies: list[tuple[str, float]] = field(default_factory=list)
    swallowed: list[tuple[int, int, str]] = field(default_factory=list)  # black-holed orders

    def refuse_place(self, client_id: int, order_id: int, order_ref: str) -> Refusal | None:
        if self.black_holes:
            surface_after = self.black_holes.pop(0)
            self.swallowed.append((client_id, order_id, order_ref))
            _log.info("black hole: order {} ({!r}) of client {} vanishes (surfaces after {})",
                      order_id, order_ref, client_id, surface_after)  # fmt: skip
            return Refusal(0, surface_after=surface_after)
        if self.duplicate_ids > 0:
            self.duplicate_ids -= 1
            return Refusal(*DUPLICATE_ID)
        if self.rate_exceeded > 0:
            self.rate_exceeded -= 1
            return Refusal(*RATE_EXCEEDED)
        return self.refusals.pop(0) if self.refusals else None

    def cancel_reply(self) -> tuple[str, float] | None:
        """The scripted answer to the next cancel: ("10147" | "10148" | "late" | "lost", seconds)."""
        return self.cancel_replies.pop(0) if self.cancel_replies else None


def commission_frames(ex: enc.ExecView, faults: OrderFaults) -> tuple[list[bytes], list[tuple[float, bytes]]]:
    """(frames sent with the execution, [(delay, frame)] sent later) for one commissionReport."""
    if faults.missing_commission:
        return [], []
    if faults.commission_sentinel is not None:
        sentinel = enc.commission_report(ex, raw=faults.sentinel_value)
        later = [] if faults.commission_sentinel < 0 else [(faults.commission_sentinel, enc.commission_report(ex))]
        return [sentinel], later
    if faults.late_commission > 0:
        return [], [(faults.late_commission, enc.commission_report(ex))]
    return [enc.commission_report(ex)], []


def status_repeats(view: enc.OrderView, faults: OrderFaults, with_open_order: bool) -> list[bytes]:
    """Extra copies of an order's openOrder / orderStatus pair (IB repeats them; a repeated
    Filled orderStatus can carry avgFillPrice 0)."""
    times = int(faults.duplicate_order_status)
    if times <= 1:
        return []
    echo = dataclasses.replace(view, avg_fill_price=0.0) if view.status == "Filled" else view
    pair = ([enc.open_order(view)] if with_open_order else []) + [enc.order_status(echo)]
    return pair * (times - 1)
