"""A limit on compute time for step generators (``app.generation.sampling.sample_steps``).

    deadline = Deadline(0.5); names = sample_names(model, 100, rng, deadline=deadline)

The web service and ``python -m app.sample`` both bound a request by the time it computes,
not by its draws alone: a low temperature can make almost every draw a repeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator


class Deadline:
    """Stops sampling after ``seconds`` of its own compute time, or as soon as ``stop`` is called.

    Only the time between being resumed and yielding counts: a generator waiting at a yield
    (the service serving other requests between slices) spends none. ``seconds=None``: no limit.
    """

    def __init__(self, seconds: float | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.seconds, self.clock = seconds, clock
        self.spent = 0.0               # compute seconds before the current run
        self.reason: str | None = None  # why sampling must stop: "deadline", or stop()'s reason
        self._since = clock()

    def start(self) -> None:
        """Count from now (a generator calls it when it first runs)."""
        self._since = self.clock()

    def paused(self) -> Generator[None, None, None]:
        """Yield once, not counting the time until the caller resumes."""
        self.spent += self.clock() - self._since
        yield
        self._since = self.clock()

    def stop(self, reason: str) -> None:
        """Make sampling stop at its next step (e.g. "shutdown")."""
        self.reason = self.reason or reason

    def passed(self) -> bool:
        if self.reason is None and self.seconds is not None and (
                self.spent + self.clock() - self._since >= self.seconds):
            self.reason = "deadline"
        return self.reason is not None
