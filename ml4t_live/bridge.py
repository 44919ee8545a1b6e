"""The bridge: the only module that creates threads and asyncio event loops.

Threading rule first: every asyncio object (an ``ib_async.IB``, an alpaca stream, a simulated
venue's server) lives on exactly one :class:`LoopThread` and is touched only from coroutines or
callables run *on* that thread. The engine thread talks to it in two ways:

* ``call(coro_or_fn, timeout)`` - blocking; the result (or the exception) comes back to the
  caller; a timeout cancels the task and raises :class:`~ml4t_live.errors.BridgeTimeout`.
* ``events`` - the sync side of the loop's one janus queue, on which the loop's code puts
  past-tense events (see :mod:`ml4t_live.events`) for the engine to read with a timeout.

Life cycle: ``start()`` (start-up errors re-raise in the caller) -> calls -> ``close()``
(idempotent: refuse new calls, run the owner's async shutdown, cancel what is left, close the
queue, stop the loop, join the thread with a timeout and report a thread that will not die).
Threads are named ``ml4t-<venue>-<role>`` so logs and leak checks can see them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import janus
from loguru import logger

from .errors import BridgeClosed, BridgeError, BridgeTimeout, WrongThread
from .events import BackgroundTaskFailed
from .logs import log_failure

T = TypeVar("T")
_log = logger.bind(component="bridge")


class LoopState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class LoopThread:
    """One asyncio loop in one dedicated, named worker thread, behind a blocking API."""

    def __init__(self, venue: str, role: str, *, queue_maxsize: int = 0) -> None:
        self.name = f"ml4t-{venue}-{role}"
        self._queue_maxsize = queue_maxsize
        self._state = LoopState.NEW
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: janus.Queue[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._main_task: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def state(self) -> LoopState:
        return self._state

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise BridgeClosed(f"{self.name} is not started")
        return self._loop

    @property
    def events(self) -> janus.SyncQueueProxy[Any]:
        """Engine side of the loop's event queue (``get(timeout=...)`` / ``get_nowait()``)."""
        if self._queue is None:
            raise BridgeClosed(f"{self.name} is not started")
        return self._queue.sync_q

    @property
    def async_events(self) -> janus.AsyncQueueProxy[Any]:
        """Loop side of the event queue; use only from coroutines running on this loop."""
        if self._queue is None:
            raise BridgeClosed(f"{self.name} is not started")
        return self._queue.async_q

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    # ------------------------------------------------------------------ start
    def start(
        self,
        setup: Callable[[], Awaitable[Any]] | None = None,
        *,
        timeout: float = 30.0,
    ) -> LoopThread:
        """Start the thread and its loop; run ``setup()`` on the loop before returning.

        Errors raised by ``setup`` (or by creating the loop) re-raise here, in the caller, and
        the thread is gone by the time they do.
        """
        with self._state_lock:
            if self._state is not LoopState.NEW:
                raise BridgeError(f"{self.name} was already started (a LoopThread is single-use)")
            self._state = LoopState.RUNNING
        self._thread = threading.Thread(
            target=self._run, args=(setup,), name=self.name, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            raise BridgeTimeout(f"{self.name} did not start within {timeout:.1f}s")
        if self._startup_error is not None:
            self._thread.join(timeout)
            with self._state_lock:
                self._state = LoopState.CLOSED
            raise self._startup_error
        _log.debug("{} started", self.name)
        return self

    def _run(self, setup: Callable[[], Awaitable[Any]] | None) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(setup))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def _main(self, setup: Callable[[], Awaitable[Any]] | None) -> None:
        self._stopped = asyncio.Event()
        self._main_task = asyncio.current_task()
        self._queue = janus.Queue(maxsize=self._queue_maxsize)
        try:
            if setup is not None:
                await setup()
        except BaseException as exc:  # re-raised in start()'s caller
            self._startup_error = exc
            self._queue.close()
            await self._queue.wait_closed()
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()

    # ------------------------------------------------------------------ calls
    def call(self, target: Coroutine[Any, Any, T] | Callable[[], T], timeout: float) -> T:
        """Run a coroutine (or a plain callable) on the loop and block for its result.

        Raises what the target raised; :class:`BridgeTimeout` (after cancelling the task) when it
        takes longer than ``timeout`` seconds; :class:`WrongThread` from the loop's own thread;
        :class:`BridgeClosed` once ``close()`` has begun.
        """
        future = self.submit(target)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BridgeTimeout(
                f"{self.name}: {_describe(target)} did not finish within {timeout:.3g}s; "
                "it was cancelled"
            ) from None
        except concurrent.futures.CancelledError:
            raise BridgeClosed(f"{self.name}: {_describe(target)} was cancelled by close()") from None

    def submit(
        self, target: Coroutine[Any, Any, T] | Callable[[], T]
    ) -> concurrent.futures.Future[T]:
        """Schedule ``target`` on the loop without waiting; returns a concurrent future."""
        coro = target if inspect.iscoroutine(target) else _as_coroutine(target)
        if self.in_loop_thread():
            coro.close()
            raise WrongThread(
                f"{self.name}: a blocking call from the loop's own thread would deadlock; "
                "await the coroutine instead"
            )
        with self._state_lock:  # close() cannot begin between this check and the scheduling
            if self._state is not LoopState.RUNNING or self._loop is None:
                coro.close()
                raise BridgeClosed(f"{self.name} is {self._state.value}; it accepts no more calls")
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a named background task; call on the loop thread only.

        The task is referenced until it ends; if it fails, the failure is logged and put on the
        event queue as :class:`BackgroundTaskFailed` (never lost). ``close()`` cancels it.
        """
        if not self.in_loop_thread():
            coro.close()
            raise WrongThread(f"{self.name}: spawn() must be called on the loop thread")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log_failure(_log, exc, "{}: background task {} failed", self.name, task.get_name())
        if self._queue is not None and not self._queue.closed:
            report = BackgroundTaskFailed(self.name, task.get_name(), f"{type(exc).__name__}: {exc}")
            try:
                self._queue.async_q.put_nowait(report)
            except janus.AsyncQueueFull:  # a bounded queue: deliver it as soon as there is room
                self.spawn(self._queue.async_q.put(report), "report-failure")

    # ------------------------------------------------------------------ close
    def close(
        self,
        shutdown: Callable[[], Awaitable[Any]] | None = None,
        *,
        timeout: float = 10.0,
    ) -> bool:
        """Stop the loop and join the thread; idempotent. Returns False if the thread won't die.

        Order: refuse new calls -> ``await shutdown()`` (the owner's unsubscribe / disconnect) ->
        cancel remaining background tasks -> close the event queue -> stop the loop -> join.
        """
        with self._state_lock:
            if self._state in (LoopState.CLOSING, LoopState.CLOSED):
                return self._thread is None or not self._thread.is_alive()
            was_running = self._state is LoopState.RUNNING
            self._state = LoopState.CLOSING
        if was_running and self._loop is not None and self._thread is not None:
            if self.in_loop_thread():
                raise WrongThread(f"{self.name}: close() from the loop's own thread")
            try:
                done = asyncio.run_coroutine_threadsafe(self._shutdown(shutdown, timeout), self._loop)
                done.result(timeout + 1.0)
            except (RuntimeError, concurrent.futures.TimeoutError) as exc:
                # RuntimeError: the loop already ended (its thread died); TimeoutError: it hangs.
                _log.warning("{}: orderly shutdown did not complete: {!r}", self.name, exc)
        alive = False
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
        with self._state_lock:
            self._state = LoopState.CLOSED
        if alive:
            _log.error(
                "{} did not stop within {:.1f}s; it is left running as a daemon thread",
                self.name,
                timeout,
            )
            return False
        _log.debug("{} closed", self.name)
        return True

    async def _shutdown(self, shutdown: Callable[[], Awaitable[Any]] | None, timeout: float) -> None:
        try:
            if not self._ready.is_set() and self._main_task is not None:
                self._main_task.cancel()  # start() timed out while setup was still running
            if shutdown is not None:
                try:
                    async with asyncio.timeout(timeout):
                        await shutdown()
                except Exception as exc:  # reported: close() must still finish
                    log_failure(_log, exc, "{}: shutdown step failed", self.name)
            # Background tasks and calls still in flight (their callers get BridgeClosed).
            skip = {asyncio.current_task(), self._main_task}
            pending = [t for t in asyncio.all_tasks() if t not in skip and not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            if self._queue is not None:
                self._queue.close()
                await self._queue.wait_closed()
        finally:
            if self._stopped is not None:
                self._stopped.set()


class WorkerThread:
    """One named thread that hands each item of a bounded queue to ``handler`` (blocking work
    kept off the engine thread, e.g. sending notifications).

    :meth:`offer` never blocks: it returns False when the queue is full or the worker closed.
    While idle the handler is called with ``None`` every ``tick`` seconds (timers). A handler
    that raises is logged and the worker goes on. :meth:`close` stops new items, lets the thread
    finish what is queued within ``timeout`` and joins it.
    """

    _STOP = object()

    def __init__(self, venue: str, role: str, handler: Callable[[Any], None], *,
                 maxsize: int = 100, tick: float = 1.0) -> None:  # fmt: skip
        self.name = f"ml4t-{venue}-{role}"
        self._handler = handler
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._tick = tick
        self._open = False
        self._deadline: float | None = None  # set by close(): drop what is left after it
        self._thread: threading.Thread | None = None

    def start(self) -> WorkerThread:
        if self._thread is not None:
            raise BridgeError(f"{self.name} was already started (a WorkerThread is single-use)")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._open = True
        self._thread.start()
        return self

    def offer(self, item: Any) -> bool:
        if not self._open:
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._tick)
            except queue.Empty:
                item = None
            if item is self._STOP:
                return
            if self._deadline is not None and time.monotonic() > self._deadline:
                continue  # closing and out of time: drain without handling
            try:
                self._handler(item)
            except Exception as exc:  # reported; the worker must go on
                log_failure(_log, exc, "{}: handler failed", self.name)

    def close(self, timeout: float = 5.0) -> bool:
        """Idempotent; False when the thread is still busy after ``timeout`` (left as a daemon)."""
        if self._thread is None or not self._open:
            return self._thread is None or not self._thread.is_alive()
        self._open = False
        self._deadline = time.monotonic() + timeout
        try:  # nothing is offered any more: room comes as the thread drains
            self._queue.put(self._STOP, timeout=timeout)
        except queue.Full:
            pass  # the handler is stuck: the join below times out and says so
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        if self._thread.is_alive():
            _log.error("{} did not stop within {:.1f}s; it is left running as a daemon thread",
                       self.name, timeout)  # fmt: skip
            return False
        return True


def _as_coroutine(fn: Callable[[], T]) -> Coroutine[Any, Any, T]:
    async def run() -> T:
        return fn()  # returned as is: a callable that returns a task does not wait for it

    return run()


def _describe(target: object) -> str:
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return str(name or type(target).__name__)


def live_threads() -> list[str]:
    """Names of ml4t worker threads still alive (for leak checks and shutdown reports)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("ml4t-") and t.is_alive()]
