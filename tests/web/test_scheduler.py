"""Admission and turn-taking for sampling: slices, fair order, bounded queue, cancel, drain."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from app.main import drain_on_signals
from app.web import scheduler
from app.web.scheduler import ClientGone, Overloaded, Scheduler


def steps(log: list, name: str, count: int, seconds: float = 0.0):
    """A step generator standing in for sampling: ``count`` steps of ``seconds`` busy time each."""
    def make(deadline):
        for _ in range(count):
            if seconds:
                time.sleep(seconds)
            log.append(name)
            yield
            if deadline.passed():
                return deadline.reason
        return name
    return make


def test_sampling_hands_the_event_loop_back_between_slices():
    ticks, log = [], []

    async def main():
        async def ticker():
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        outcome = await Scheduler(slice_seconds=0.005).run(steps(log, "a", 20, 0.002))
        task.cancel()
        return outcome

    value, seconds = asyncio.run(main())
    assert value == "a" and seconds >= 0.04
    assert len(ticks) >= 5                     # the loop ran other work between the slices


def test_a_cheap_request_overtakes_heavy_ones_already_running(monkeypatch):
    monkeypatch.setattr(scheduler, "LEVELS", (0.008,))
    log, finished = [], []

    async def main():
        turns = Scheduler(deadline_seconds=None)

        async def request(name, count):
            await turns.run(steps(log, name, count, 0.001))
            finished.append(name)

        heavy = [asyncio.create_task(request(f"heavy{i}", 60)) for i in range(3)]
        await asyncio.sleep(0.03)              # they have computed past the first level
        await request("cheap", 3)
        await asyncio.gather(*heavy)

    asyncio.run(main())
    assert finished[0] == "cheap"
    assert finished[1:] == ["heavy0", "heavy1", "heavy2"]   # same level: arrival order


def test_a_small_request_goes_before_large_ones_that_arrived_first():
    log, finished = [], []

    async def main():
        turns = Scheduler(deadline_seconds=None)

        async def request(name, count, heavy):
            await turns.run(steps(log, name, count, 0.001), heavy=heavy)
            finished.append(name)

        large = [asyncio.create_task(request(f"large{i}", 20, True)) for i in range(3)]
        await asyncio.sleep(0)                 # admitted, barely started
        await request("small", 3, False)
        await asyncio.gather(*large)

    asyncio.run(main())
    assert finished[0] == "small" and log.count("small") == 3
    assert log.index("small") <= 20            # waited for one slice at most, not three requests


def test_requests_of_one_level_run_whole_in_arrival_order(monkeypatch):
    monkeypatch.setattr(scheduler, "LEVELS", (10.0,))
    log = []

    async def main():
        turns = Scheduler(slice_seconds=0.0005)
        await asyncio.gather(*(turns.run(steps(log, name, 4, 0.001)) for name in "abc"))

    asyncio.run(main())
    assert log == list("aaaabbbbcccc")          # not interleaved, not all slowed together


def test_beyond_capacity_a_request_is_refused_at_once():
    async def main():
        turns = Scheduler(capacity=1)
        first = asyncio.create_task(turns.run(steps([], "a", 50, 0.001)))
        await asyncio.sleep(0)
        assert turns.saturated and turns.busy == 1
        with pytest.raises(Overloaded, match="busy with 1 requests"):
            await turns.run(steps([], "b", 1))
        await first
        assert turns.busy == 0 and not turns.saturated

    asyncio.run(main())


def test_large_requests_cannot_fill_the_queue_for_small_ones():
    async def main():
        turns = Scheduler(capacity=3, heavy_capacity=1)
        first = asyncio.create_task(turns.run(steps([], "large", 50, 0.001), heavy=True))
        await asyncio.sleep(0)
        assert turns.saturated and turns.heavy == 1
        with pytest.raises(Overloaded, match="1 large requests"):
            await turns.run(steps([], "large2", 1), heavy=True)
        assert (await turns.run(steps([], "small", 2)))[0] == "small"
        await first

    asyncio.run(main())


def test_a_client_that_left_is_dropped_before_its_work_starts_and_between_slices():
    log = []

    def gone():
        return True

    checks = iter([False, False, False, True])

    def leaves_later():
        return next(checks)

    async def main():
        turns = Scheduler(slice_seconds=0.0005)
        with pytest.raises(ClientGone):
            await turns.run(steps(log, "never", 5), gone)
        assert log == [] and turns.busy == 0
        with pytest.raises(ClientGone):
            await turns.run(steps(log, "some", 100, 0.001), leaves_later)
        assert 0 < len(log) < 100
        assert (await turns.run(steps(log, "next", 1)))[0] == "next"   # the turn was released

    asyncio.run(main())


def test_the_deadline_ends_the_request():
    log = []

    async def main():
        return await Scheduler(deadline_seconds=0.01).run(steps(log, "long", 10_000, 0.001))

    reason, _ = asyncio.run(main())
    assert reason == "deadline" and len(log) < 10_000


def test_draining_refuses_unstarted_requests_and_stops_started_ones():
    async def main():
        turns = Scheduler(deadline_seconds=None, capacity=4)
        started = asyncio.create_task(turns.run(steps([], "started", 10_000, 0.001)))
        await asyncio.sleep(0.02)
        queued = asyncio.create_task(turns.run(steps([], "queued", 10)))
        turns.drain()
        assert (await started)[0] == "shutdown"
        with pytest.raises(Overloaded, match="shutting down"):
            await queued
        with pytest.raises(Overloaded, match="shutting down"):
            await turns.run(steps([], "late", 1))

    asyncio.run(main())


def test_a_cancelled_waiting_request_does_not_block_the_others():
    async def main():
        turns = Scheduler()
        running = asyncio.create_task(turns.run(steps([], "a", 30, 0.001)))
        waiting = asyncio.create_task(turns.run(steps([], "b", 30, 0.001)))
        await asyncio.sleep(0.005)
        waiting.cancel()
        assert (await running)[0] == "a"
        assert (await turns.run(steps([], "c", 2)))[0] == "c" and turns.busy == 0

    asyncio.run(main())


def test_a_termination_signal_drains_the_scheduler_and_still_reaches_the_server(monkeypatch):
    received = []
    monkeypatch.setattr(signal, "getsignal", lambda sig: lambda signum, frame: received.append(signum))
    installed = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: installed.__setitem__(sig, handler))

    async def main():
        turns = Scheduler()
        drain_on_signals(turns)
        installed[signal.SIGTERM](signal.SIGTERM, None)   # as the interpreter would call it
        await asyncio.sleep(0)
        return turns

    assert asyncio.run(main()).draining
    assert received == [signal.SIGTERM]        # uvicorn's own handler still runs


@pytest.mark.parametrize("text, expected", [(None, scheduler.DEADLINE_SECONDS), ("", 0.5),
                                            ("2.5", 2.5)])
def test_the_deadline_comes_from_the_environment(monkeypatch, text, expected):
    if text is None:
        monkeypatch.delenv(scheduler.DEADLINE_ENV, raising=False)
    else:
        monkeypatch.setenv(scheduler.DEADLINE_ENV, text)
    assert scheduler.deadline_seconds() == expected


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "soon"])
def test_a_bad_deadline_in_the_environment_is_refused_by_name(monkeypatch, text):
    monkeypatch.setenv(scheduler.DEADLINE_ENV, text)
    with pytest.raises(ValueError, match="TOPONIMO_DEADLINE_SECONDS must be a positive number"):
        scheduler.deadline_seconds()
