"""The bridge's contract: returns, re-raises, cancels on timeout, refuses its own thread and
calls after close, start-up failures raise in the caller, and no thread survives close()."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ml4t_live.bridge import LoopState, LoopThread, live_threads
from ml4t_live.errors import BridgeClosed, BridgeError, BridgeTimeout, WrongThread
from ml4t_live.events import BackgroundTaskFailed


@pytest.fixture
def loop_thread():
    thread = LoopThread("test", "worker").start()
    yield thread
    thread.close()


def test_thread_is_named_for_venue_and_role(loop_thread):
    assert loop_thread.name == "ml4t-test-worker"
    assert "ml4t-test-worker" in live_threads()


def test_call_returns_coroutine_result(loop_thread):
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    assert loop_thread.call(add(2, 3), timeout=5) == 5


def test_call_runs_plain_callable_on_the_loop_thread(loop_thread):
    assert loop_thread.call(lambda: threading.current_thread().name, timeout=5) == "ml4t-test-worker"


def test_call_reraises_the_targets_exception(loop_thread):
    async def boom():
        raise ValueError("venue said no")

    with pytest.raises(ValueError, match="venue said no"):
        loop_thread.call(boom(), timeout=5)


def test_timeout_cancels_the_task_and_raises(loop_thread):
    cancelled = threading.Event()
    started = threading.Event()

    async def slow():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(BridgeTimeout, match="did not finish within"):
        loop_thread.call(slow(), timeout=0.2)
    assert started.is_set()
    assert cancelled.wait(5), "the timed-out task was not cancelled"
    assert isinstance(BridgeTimeout("x"), TimeoutError)


def test_call_from_the_loops_own_thread_is_refused(loop_thread):
    async def nested():
        inner = asyncio.sleep(0)
        with pytest.raises(WrongThread):
            loop_thread.call(inner, timeout=1)
        return "refused"

    assert loop_thread.call(nested(), timeout=5) == "refused"


def test_call_after_close_is_refused_and_closes_the_coroutine():
    thread = LoopThread("test", "closed").start()
    assert thread.close() is True
    coro = asyncio.sleep(0)
    with pytest.raises(BridgeClosed):
        thread.call(coro, timeout=1)
    assert coro.cr_frame is None  # closed, so no "never awaited" warning
    assert thread.state is LoopState.CLOSED


def test_close_is_idempotent_and_joins():
    thread = LoopThread("test", "twice").start()
    assert thread.close() is True
    assert thread.close() is True
    assert "ml4t-test-twice" not in live_threads()


def test_startup_failure_reraises_in_caller_and_leaves_no_thread():
    async def setup():
        raise ConnectionRefusedError("gateway not listening on 127.0.0.1:4002")

    thread = LoopThread("test", "broken")
    with pytest.raises(ConnectionRefusedError, match="not listening"):
        thread.start(setup)
    assert "ml4t-test-broken" not in live_threads()
    with pytest.raises(BridgeClosed):
        thread.call(lambda: 1, timeout=1)


def test_a_loop_thread_is_single_use():
    thread = LoopThread("test", "once").start()
    thread.close()
    with pytest.raises(BridgeError, match="single-use"):
        thread.start()


def test_events_travel_from_loop_to_engine_in_order(loop_thread):
    async def produce():
        for i in range(3):
            await loop_thread.async_events.put(i)

    loop_thread.call(produce(), timeout=5)
    assert [loop_thread.events.get(timeout=5) for _ in range(3)] == [0, 1, 2]


def test_failed_background_task_is_reported_on_the_queue(loop_thread):
    async def crash():
        raise RuntimeError("stream died")

    loop_thread.call(lambda: loop_thread.spawn(crash(), "stream"), timeout=5)
    event = loop_thread.events.get(timeout=5)
    assert isinstance(event, BackgroundTaskFailed)
    assert event.task == "ml4t-test-worker:stream"
    assert "stream died" in event.error


def test_spawn_is_refused_off_the_loop_thread(loop_thread):
    coro = asyncio.sleep(0)
    with pytest.raises(WrongThread):
        loop_thread.spawn(coro, "x")


def test_close_runs_shutdown_then_cancels_background_tasks():
    thread = LoopThread("test", "ordered").start()
    order: list[str] = []

    async def forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            order.append("task cancelled")
            raise

    async def shutdown():
        order.append("shutdown")

    thread.call(lambda: thread.spawn(forever(), "forever"), timeout=5)
    assert thread.close(shutdown) is True
    assert order == ["shutdown", "task cancelled"]


def test_pending_call_is_answered_when_closed():
    thread = LoopThread("test", "pending").start()
    future = thread.submit(asyncio.Event().wait())
    thread.close(timeout=5)
    assert future.cancelled()


def test_close_reports_a_thread_that_will_not_die():
    thread = LoopThread("test", "stuck").start()
    release = threading.Event()
    # A callable that blocks the loop thread itself: the loop cannot run its shutdown.
    thread.submit(lambda: release.wait(10))
    try:
        assert thread.close(timeout=0.3) is False
    finally:
        release.set()
        thread._thread.join(10)  # let the fixture see a clean end
    assert "ml4t-test-stuck" not in live_threads()


def test_a_start_up_that_hangs_times_out_and_leaves_no_thread():
    async def setup():
        await asyncio.Event().wait()  # a gateway that never answers

    thread = LoopThread("test", "hung")
    with pytest.raises(BridgeTimeout, match="did not start within"):
        thread.start(setup, timeout=0.3)
    assert "ml4t-test-hung" not in live_threads()


def test_a_failure_is_reported_even_when_the_bounded_queue_is_full():
    thread = LoopThread("test", "full", queue_maxsize=1).start()
    try:

        async def fill_then_crash():
            await thread.async_events.put("bar")  # the queue is now full
            thread.spawn(crash(), "stream")

        async def crash():
            raise RuntimeError("stream died")

        thread.call(fill_then_crash(), timeout=5)
        assert thread.events.get(timeout=5) == "bar"
        report = thread.events.get(timeout=5)
        assert isinstance(report, BackgroundTaskFailed) and "stream died" in report.error
    finally:
        thread.close()
