"""In-process time to invent 10 and 1,000 names, novelty filter and nearest name included.

    python benchmarks/sampling_speed.py                                   # the served lstm
    python benchmarks/sampling_speed.py --model models/lstm.npz /tmp/single.npz --rounds 5

Targets: 10 names <= 5 ms and 1,000 names <= 200 ms with the served default LSTM. Several
models are timed in alternating rounds (the order flips every round), so a slow minute on this
shared machine hits them alike; each round also times two machine references, a matmul the size
of a 1,000-name step and a (16, 640) tanh (the size of the ~25 numpy calls of a 10-name step).
Prints min / median / max over rounds of each round's median (repeats seeds per round). One
BLAS thread, as the service runs; the nearest-name search of 1,000 names uses both cores
(``gazetteer.PARALLEL_QUERIES``), so there CPU time exceeds wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.data.gazetteer import load_gazetteer
from app.generation.sampling import sample_names
from app.lm.base import load_model

TARGETS_MS = {10: 5.0, 1000: 200.0}


def median_ms(model, n: int, repeats: int, temperature: float = 0.8) -> float:
    """Median wall milliseconds of ``sample_names`` for n names over seeds 0..repeats-1."""
    wall = []
    for seed in range(repeats):
        start = time.perf_counter()
        sample_names(model, n, np.random.default_rng(seed), temperature=temperature)
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall)


def machine_speed(repeats: int = 200) -> tuple[float, float]:
    """(GFLOP/s of a (1000, 160) x (160, 640) float32 matmul, microseconds of a (16, 640) tanh)."""
    rng = np.random.default_rng(0)
    h, W = (rng.standard_normal(s).astype(np.float32) for s in ((1000, 160), (160, 640)))
    small = rng.standard_normal((16, 640)).astype(np.float32)
    timings = []
    for work in (lambda: h @ W, lambda: np.tanh(small)):
        work()
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        timings.append((time.perf_counter() - start) / repeats)
    return 2 * h.size * W.shape[1] / timings[0] / 1e9, timings[1] * 1e6


def spread(values: list[float]) -> str:
    return f"{min(values):7.2f} / {statistics.median(values):7.2f} / {max(values):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", default=[Path("models/lstm.npz")])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="seeds per round for 10 names; a third of them for 1,000 names")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    models = {str(path): load_model(path) for path in args.model}
    load_gazetteer()
    for model in models.values():
        sample_names(model, 10, np.random.default_rng(0))  # warm-up: step tables, caches
    times = {(name, n): [] for name in models for n in TARGETS_MS}
    references = []
    for round_ in range(args.rounds):
        references.append(machine_speed())
        order = list(models) if round_ % 2 == 0 else list(reversed(models))
        for name in order:
            for n in TARGETS_MS:
                repeats = args.repeats if n < 100 else max(3, args.repeats // 3)
                times[name, n].append(median_ms(models[name], n, repeats))
    gflops, tanh_us = zip(*references, strict=True)
    print(f"{args.rounds} alternating rounds; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; machine per round (min / median / max): matmul "
          f"{spread(list(gflops))} GFLOP/s, (16, 640) tanh {spread(list(tanh_us))} us")
    for name, model in models.items():
        members = len(getattr(model, "components", [model]))
        print(f"{name} ({model.kind}, {members} member{'s' * (members > 1)}, "
              f"{model.n_params:,} parameters)")
        for n, target in TARGETS_MS.items():
            median = statistics.median(times[name, n])
            verdict = "ok" if median <= target else "over target"
            print(f"  {n:>5} names: {spread(times[name, n])} ms (min / median / max of round "
                  f"medians; target <= {target:g} ms: {verdict})")


if __name__ == "__main__":
    main()
