"""Admission control for sampling on the event loop: a bounded queue, a deadline, fair turns.

    scheduler = Scheduler(); result, seconds = await scheduler.run(make_steps, client_gone)

``client_gone()`` must answer at once (``disconnect.watch_disconnect`` gives one that does).

Each worker process samples on its own event loop, one slice (~1 ms) at a time, so the loop
keeps serving other requests in between. A slice lasts at least as long as the loop just spent
on other work (up to 50 ms): sampling keeps half the CPU even under a flood of other requests
(a closed loop of clients retrying 503s would otherwise starve it). Who runs the next slice is
decided by multi-level feedback, as operating systems schedule processes: the request that has
computed least so far (by level: under 50 ms, under 200 ms, or more; a request known to be
heavy starts at the second) goes first, in arrival order within a level. A cheap request never
waits behind heavy ones, and requests of similar cost still finish in arrival order instead of
all slowing down together. Every request also has a deadline in compute time
(``app.generation.deadline``), after which it returns what it found.

Beyond ``capacity`` requests in progress, or ``heavy_capacity`` heavy ones (those whose draw
budget may cost up to the deadline), ``run`` refuses at once (``Overloaded``: a 503 with
Retry-After) and the worker reports itself not ready. Heavy requests thus never fill the queue:
a flood of them still leaves room for small ones, which the turns then serve first. A client
that hung up is dropped before its first slice and between slices. ``drain`` (on SIGTERM)
refuses new and not-yet-started requests and stops the started ones at their next step, so the
process exits quickly.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import math
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

from app.generation.deadline import Deadline

T = TypeVar("T")

CAPACITY = 64            # sampling requests in progress per worker, beyond which it answers 503
HEAVY_CAPACITY = 16      # of which heavy: at most 16 x the deadline of work queued
DEADLINE_SECONDS = 0.5   # compute time per request; the costliest sensible one takes ~0.3 s
DEADLINE_ENV = "TOPONIMO_DEADLINE_SECONDS"   # an operator's (or a test's) other per-request limit
SLICE_SECONDS = 0.001    # how long a request keeps the event loop before handing it back ...
MAX_SLICE_SECONDS = 0.05  # ... or as long as the loop spent on other work before it, up to this
LEVELS = (0.05, 0.2)   # compute seconds that move a request down a level (above a small one)
RETRY_AFTER_SECONDS = 1


def deadline_seconds() -> float:
    """The per-request compute limit: $TOPONIMO_DEADLINE_SECONDS if set, else DEADLINE_SECONDS.
    Raises ValueError for a value that is not a positive number of seconds."""
    text = os.environ.get(DEADLINE_ENV)
    if not text:
        return DEADLINE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{DEADLINE_ENV} must be a positive number of seconds, got {text!r}")
    return value


class Overloaded(Exception):
    """The worker cannot take this request now (retry after RETRY_AFTER_SECONDS)."""


class ClientGone(Exception):
    """The client disconnected, so its request was dropped."""


@dataclass(eq=False)
class _Job:
    seq: int
    deadline: Deadline
    heavy: bool
    served: float = 0.0        # compute seconds so far
    finished: bool = False
    wake: asyncio.Future | None = field(default=None, repr=False)

    def key(self) -> tuple[int, int]:
        level = bisect.bisect(LEVELS, self.served)
        return (max(level, 1) if self.heavy else level), self.seq   # heavy: never in the first


class Scheduler:
    """One per event loop (per worker process)."""

    def __init__(self, capacity: int = CAPACITY, heavy_capacity: int = HEAVY_CAPACITY,
                 deadline_seconds: float | None = DEADLINE_SECONDS,
                 slice_seconds: float = SLICE_SECONDS):
        self.capacity, self.heavy_capacity = capacity, heavy_capacity
        self.deadline_seconds = deadline_seconds
        self.slice_seconds = slice_seconds
        self.draining = False
        self._jobs: set[_Job] = set()
        self._waiting: list[tuple[tuple[int, int], _Job]] = []   # heap by _Job.key
        self._running: _Job | None = None
        self._woken = 0.0          # when the running job was told it is its turn
        self._seq = itertools.count()

    @property
    def busy(self) -> int:
        """Requests admitted and not finished."""
        return len(self._jobs)

    @property
    def heavy(self) -> int:
        """Heavy requests admitted and not finished."""
        return sum(job.heavy for job in self._jobs)

    @property
    def saturated(self) -> bool:
        """True while a request of either kind would be refused."""
        return self.busy >= self.capacity or self.heavy >= self.heavy_capacity

    def drain(self) -> None:
        """Refuse new and unstarted requests; stop the started ones at their next step."""
        self.draining = True
        for job in self._jobs:
            job.deadline.stop("shutdown")

    def refusal(self, heavy: bool = False) -> str | None:
        """Why a new request (heavy or not) would be refused now, or None if it is admitted."""
        if self.draining:
            return "the server is shutting down"
        if self.busy >= self.capacity:
            return f"this worker is busy with {self.busy} requests, the most it takes"
        if heavy and self.heavy >= self.heavy_capacity:
            return (f"this worker is busy with {self.heavy} large requests, the most it takes; "
                    "smaller requests are still served")
        return None

    async def run(self, make_steps: Callable[[Deadline], Generator[None, None, T]],
                  client_gone: Callable[[], bool] | None = None,
                  heavy: bool = False) -> tuple[T, float]:
        """Drive ``make_steps(deadline)`` (e.g. ``sampling.sample_steps``) through in slices,
        taking turns with the other requests; its value and the compute seconds it took.
        Raises Overloaded when the worker is full or draining, ClientGone if the client left."""
        refused = self.refusal(heavy)
        if refused:
            raise Overloaded(refused)
        job = _Job(next(self._seq), Deadline(self.deadline_seconds), heavy)
        steps = make_steps(job.deadline)
        self._jobs.add(job)
        try:
            while True:
                await self._turn(job)
                try:
                    if client_gone is not None and client_gone():
                        raise ClientGone
                    if self.draining and not job.served:
                        raise Overloaded("the server is shutting down")
                    start = time.perf_counter()
                    length = max(self.slice_seconds, min(start - self._woken, MAX_SLICE_SECONDS))
                    try:
                        while time.perf_counter() - start < length:
                            next(steps)
                    except StopIteration as done:
                        job.served += time.perf_counter() - start
                        return done.value, job.served
                    job.served += time.perf_counter() - start
                finally:
                    self._running = None
        finally:
            job.finished = True
            self._jobs.discard(job)
            if self._running is None:
                self._dispatch()

    async def _turn(self, job: _Job) -> None:
        """Wait until ``job`` is the one to run a slice."""
        job.wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (job.key(), job))
        if self._running is None:
            self._dispatch()
        try:
            if job.wake.done():     # our turn already: still let the loop poll I/O first
                await asyncio.sleep(0)
            else:
                await job.wake      # set by _dispatch: the loop polls I/O before we resume
        except asyncio.CancelledError:
            if self._running is job:
                self._running = None
            raise

    def _dispatch(self) -> None:
        """Wake the waiting job that has computed least (first come within a level)."""
        while self._waiting:
            _, job = heapq.heappop(self._waiting)
            if not job.finished and not job.wake.done():
                self._running = job
                self._woken = time.perf_counter()
                job.wake.set_result(None)
                return
