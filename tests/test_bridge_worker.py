"""The bridge's WorkerThread: a named thread draining a bounded queue (notifications use it)."""

from __future__ import annotations

import queue
import threading

import pytest

from ml4t_live.bridge import WorkerThread, live_threads
from ml4t_live.errors import BridgeError


def test_items_are_handled_in_order_on_the_named_thread_and_a_failing_item_does_not_stop_it():
    seen: queue.Queue = queue.Queue()

    def handle(item):
        if item is None:
            return  # an idle tick
        if item == "bad":
            raise ValueError("bad item")
        seen.put((item, threading.current_thread().name))

    worker = WorkerThread("test", "worker", handle, maxsize=10, tick=0.05).start()
    try:
        assert "ml4t-test-worker" in live_threads()
        assert all(worker.offer(i) for i in ("a", "bad", "b"))
        assert [seen.get(timeout=2), seen.get(timeout=2)] == [("a", "ml4t-test-worker"), ("b", "ml4t-test-worker")]
    finally:
        assert worker.close(timeout=2)
    assert "ml4t-test-worker" not in live_threads()
    assert not worker.offer("c")  # closed: nothing more is taken
    with pytest.raises(BridgeError, match="single-use"):
        worker.start()


def test_offer_never_blocks_a_full_queue_refuses_and_close_drains_what_is_queued():
    release = threading.Event()
    handled: list[str] = []

    def handle(item):
        if item is None:
            return
        release.wait(2)
        handled.append(item)

    worker = WorkerThread("test", "slow", handle, maxsize=2, tick=0.05).start()
    offers = [worker.offer(f"m{i}") for i in range(6)]  # the first may be taken at once
    assert offers[:2] == [True, True] and offers[-1] is False
    release.set()
    assert worker.close(timeout=2)
    assert handled == [f"m{i}" for i, ok in enumerate(offers) if ok]


def test_idle_ticks_reach_the_handler():
    ticks = threading.Event()
    worker = WorkerThread("test", "ticker", lambda item: item is None and ticks.set(), tick=0.02).start()
    try:
        assert ticks.wait(2)
    finally:
        worker.close(timeout=1)
