"""The fake clock the engine's look-up and cancel-resend tests give ``UnknownOrders`` and
``CancelResends``: the tests move ``now`` themselves (no sleeps)."""

from __future__ import annotations


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
