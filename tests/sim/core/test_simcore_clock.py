"""VirtualClock: step mode waits for release(), speed mode paces by gap/speed, pause/resume.

Coroutines run on a real LoopThread (the only place allowed to make loops); synchronisation is by
awaiting tasks with timeouts, never by sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from ml4t_live.bridge import LoopThread
from ml4t_live.errors import ConfigError
from ml4t_live.sim.clock import VirtualClock

START = datetime(2024, 1, 2, 14, 30)
MINUTES = [START + timedelta(minutes=i) for i in range(4)]
NOT_YET = 0.05  # bounded wait used to show that something has NOT happened


@pytest.fixture
def loop_thread():
    thread = LoopThread("simcore", "clock").start()
    yield thread
    thread.close()


def test_step_mode_hands_out_a_bar_per_release(loop_thread: LoopThread) -> None:
    async def scenario() -> list[object]:
        clock = VirtualClock(MINUTES[:3])
        seen: list[object] = [clock.now, await clock.next_bar(timeout=1)]  # first bar: at once
        pending = asyncio.ensure_future(clock.next_bar())
        done, _ = await asyncio.wait({pending}, timeout=NOT_YET)
        seen.append(bool(done))  # not released yet -> still waiting
        clock.release()
        seen.append(await asyncio.wait_for(pending, 1))
        seen.append(clock.now)
        clock.release()  # an early release is remembered
        clock.release()  # ... but counts once
        seen.append(await clock.next_bar(timeout=1))
        seen.append(await clock.next_bar(timeout=1))  # exhausted -> None without waiting
        return seen

    assert loop_thread.call(scenario(), timeout=5) == [
        None,
        MINUTES[0],
        False,
        MINUTES[1],
        MINUTES[1],
        MINUTES[2],
        None,
    ]


def test_step_mode_timeout_leaves_the_clock_where_it_was(loop_thread: LoopThread) -> None:
    async def scenario() -> tuple[int, datetime | None]:
        clock = VirtualClock(MINUTES)
        await clock.next_bar()
        with pytest.raises(TimeoutError):
            await clock.next_bar(timeout=NOT_YET)
        return clock.index, clock.now

    assert loop_thread.call(scenario(), timeout=5) == (0, MINUTES[0])


def test_speed_mode_replays_every_bar_in_order(loop_thread: LoopThread) -> None:
    async def scenario() -> tuple[list[datetime], float]:
        clock = VirtualClock(MINUTES, speed=60_000)  # a minute bar every millisecond
        loop = asyncio.get_running_loop()
        started = loop.time()
        out = []
        while (ts := await clock.next_bar(timeout=1)) is not None:
            out.append(ts)
        return out, loop.time() - started

    bars, elapsed = loop_thread.call(scenario(), timeout=5)
    assert bars == MINUTES
    assert elapsed >= 3 * 0.001  # three gaps of one virtual minute at 60,000x


def test_speed_mode_caps_long_gaps_at_bar_seconds() -> None:
    stamps = [START, START + timedelta(minutes=1), START + timedelta(days=3)]
    clock = VirtualClock(stamps, speed=2.0)
    assert clock.bar_seconds == 60.0  # inferred from the data
    assert [clock.delay(i) for i in range(3)] == [0.0, 30.0, 30.0]
    assert VirtualClock(stamps, speed=2.0, bar_seconds=10).delay(2) == 5.0
    assert VirtualClock(stamps).delay(2) == 0.0  # step mode never sleeps


def test_pause_holds_the_clock_until_resume(loop_thread: LoopThread) -> None:
    async def scenario() -> list[object]:
        clock = VirtualClock(MINUTES[:2], speed=1e9)
        await clock.next_bar()
        clock.pause()
        pending = asyncio.ensure_future(clock.next_bar())
        done, _ = await asyncio.wait({pending}, timeout=NOT_YET)
        result: list[object] = [clock.paused, bool(done)]
        clock.resume()
        result.append(await asyncio.wait_for(pending, 1))
        return result

    assert loop_thread.call(scenario(), timeout=5) == [True, False, MINUTES[1]]


def test_pause_during_a_speed_wait_keeps_the_remainder(loop_thread: LoopThread) -> None:
    async def scenario() -> list[object]:
        clock = VirtualClock(MINUTES[:2], speed=60 / 0.2)  # 0.2 s between the two bars
        await clock.next_bar()
        pending = asyncio.ensure_future(clock.next_bar())
        await asyncio.wait({pending}, timeout=0.01)
        clock.pause()
        done, _ = await asyncio.wait({pending}, timeout=0.3)  # longer than the whole gap
        result: list[object] = [bool(done)]
        clock.resume()
        result.append(await asyncio.wait_for(pending, 1))
        return result

    assert loop_thread.call(scenario(), timeout=5) == [False, MINUTES[1]]


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="increase"):
        VirtualClock([MINUTES[1], MINUTES[0]])
    with pytest.raises(ConfigError, match="speed"):
        VirtualClock(MINUTES, speed=0)
    with pytest.raises(ConfigError, match="bar_seconds"):
        VirtualClock(MINUTES, speed=1, bar_seconds=-1)


def test_empty_clock_is_done(loop_thread: LoopThread) -> None:
    clock = VirtualClock([])
    assert clock.done and loop_thread.call(clock.next_bar(timeout=1), timeout=5) is None
