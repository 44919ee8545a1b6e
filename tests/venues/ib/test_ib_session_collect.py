"""Regression (found by the week benchmark, fixed): the collection an IB session runs after a
reconnect, to free the previous connection's ib_async Trades (reference cycles), did nothing on
some nights: ``gc.collect()`` returns 0 at once while another thread's collection is running,
and the other IB session (feed or broker) reconnects and collects at the same moment. The
previous day's Trades then stayed until CPython's next full collection, a day later, while the
new day's were allocated beside them. Now the collection is tried again until it has run."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

from ml4t_live.venues.ib.session import _collect


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _HoldsTheCollector:
    """Cyclic garbage whose finalizer keeps the collection that found it running until told."""

    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        self.me, self.entered, self.release = self, entered, release

    def __del__(self) -> None:
        self.entered.set()
        self.release.wait(5)


def test_the_collection_after_a_reconnect_runs_after_another_threads_collection():
    entered, release = threading.Event(), threading.Event()
    was_enabled = gc.isenabled()
    gc.disable()  # only the collections below run
    other = threading.Thread(target=gc.collect, name="other-collector")
    try:
        _HoldsTheCollector(entered, release)
        other.start()
        assert entered.wait(5)  # the other thread's collection is running
        left = _Cycle()  # what the lost connection left behind, garbage from now on
        left_behind = weakref.ref(left)
        del left
        assert gc.collect() == 0 and left_behind() is not None  # refused: one is running

        async def reconnected() -> None:
            collecting = asyncio.ensure_future(_collect("broker", "after the reconnect"))
            await asyncio.sleep(0)  # its first attempt is refused; it waits and tries again
            release.set()
            await asyncio.wait_for(collecting, 5)

        asyncio.run(reconnected())
        assert left_behind() is None
    finally:
        release.set()
        other.join(5)
        if was_enabled:
            gc.enable()
