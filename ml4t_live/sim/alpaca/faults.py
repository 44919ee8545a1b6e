"""Scripted faults for the simulated Alpaca: what each kind does and the state it leaves.

Kinds (``SimulatedAlpaca.inject(kind, **params)`` or a ``--faults`` scenario):

=========================  =====================================================================
``drop_trade_stream``      close every trade_updates socket (the client reconnects)
``drop_data_stream``       close every market-data socket
``silence_trade_stream``   keep the current trade_updates sockets open but send nothing on them
                           (for ``seconds`` if given, else until they disconnect)
``silence_data_stream``    same for the market-data sockets (new connections are served normally)
``rate_limit_storm``       the next ``count`` REST requests get 429 (default 5)
``submit_error``           the next ``count`` POST /v2/orders are ACCEPTED but answered ``status``
                           (500 default; 504 makes alpaca-py retry the submit): ambiguous outcome
``delay_trade_updates``    the next ``count`` trade updates leave ``seconds`` late (order kept)
``duplicate_trade_updates`` the next ``count`` trade updates are sent twice
``partial_fill``           the next fill is split into ``parts`` executions (matching core)
``reject_next``            the next order is rejected with ``reason`` (matching core)
=========================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "drop_trade_stream", "drop_data_stream", "silence_trade_stream", "silence_data_stream",
    "rate_limit_storm", "submit_error", "delay_trade_updates", "duplicate_trade_updates",
    "partial_fill", "reject_next",
)
STREAM_KINDS = KINDS[:4]


class UnknownFault(ValueError):
    pass


def check_fault(kind: str, params: dict[str, Any]) -> None:
    if kind not in KINDS:
        raise UnknownFault(f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if kind == "submit_error" and int(params.get("status", 500)) < 500:
        raise UnknownFault("submit_error needs a 5xx status")


@dataclass
class FaultState:
    """Counters the REST and stream layers consult; mutated only on the venue's loop."""

    rate_limit_left: int = 0
    submit_errors: list[int] = field(default_factory=list)  # statuses still to answer
    delays: list[float] = field(default_factory=list)  # seconds per upcoming trade update
    duplicates_left: int = 0
    applied: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def arm(self, kind: str, params: dict[str, Any]) -> None:
        """Record a REST / trade-update fault; stream and matching faults are applied elsewhere."""
        count = int(params.get("count", 1))
        if kind == "rate_limit_storm":
            self.rate_limit_left += int(params.get("count", 5))
        elif kind == "submit_error":
            self.submit_errors.extend([int(params.get("status", 500))] * count)
        elif kind == "delay_trade_updates":
            self.delays.extend([float(params.get("seconds", 1.0))] * count)
        elif kind == "duplicate_trade_updates":
            self.duplicates_left += count
        self.applied.append((kind, dict(params)))

    def take_rate_limit(self) -> bool:
        if self.rate_limit_left > 0:
            self.rate_limit_left -= 1
            return True
        return False

    def take_submit_error(self) -> int | None:
        return self.submit_errors.pop(0) if self.submit_errors else None

    def take_delay(self) -> float:
        return self.delays.pop(0) if self.delays else 0.0

    def take_duplicate(self) -> bool:
        if self.duplicates_left > 0:
            self.duplicates_left -= 1
            return True
        return False
