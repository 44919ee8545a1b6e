"""When a journaled bar arrived, kept across processes (the ``bars.arrived`` column).

A live bar carries ``received_at`` (``time.monotonic()`` when its feed handed it over), and the
rails' end-of-run clock counts the prices' age from it (``RiskGate.clock_from``). Monotonic time
means nothing to another process, so the journal keeps the arrival as wall-clock time, and a warm
restart turns it back into this process's monotonic time. The column holds

* the wall-clock time (``time.time()``) the bar arrived;
* :data:`NO_ARRIVAL`: the bar came without an arrival time (a recorded source's, a scripted
  one): its clock is its own timestamp, in the run that journaled it and after a restart;
* NULL: not known (a journal written before the column): :data:`~ml4t_live.events.UNKNOWN_ARRIVAL`,
  which the rails read as prices of unknown age.
"""

from __future__ import annotations

import time

from ..events import UNKNOWN_ARRIVAL

#: the ``arrived`` of a bar that came without an arrival time
NO_ARRIVAL = 0.0


def journaled(received_at: float | None) -> float:
    """The ``arrived`` to journal for a bar received at ``received_at`` (``time.monotonic()``)."""
    if received_at is None:
        return NO_ARRIVAL
    return time.time() - (time.monotonic() - received_at)


def replayed(arrived: float | None) -> float | None:
    """A journaled ``arrived`` as this process's ``time.monotonic()`` (``BarClosed.replayed_arrival``):
    None for :data:`NO_ARRIVAL`, ``UNKNOWN_ARRIVAL`` for NULL. A wall clock set back past the
    arrival since then reads as an arrival now, never as one in the future."""
    if arrived is None:
        return UNKNOWN_ARRIVAL
    if arrived == NO_ARRIVAL:
        return None
    return time.monotonic() - max(0.0, time.time() - arrived)
