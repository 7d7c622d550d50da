"""Median in-process time to invent 10 and 1,000 names, novelty filter and nearest name included.

    python benchmarks/sampling_speed.py [--model models/lstm.npz] [--repeats 30]

Targets (issue 3): 10 names <= 5 ms, 1,000 names <= 200 ms with the default LSTM.
Runs with one BLAS thread, as the service does; the nearest-name search of 1,000 names uses
both cores (``gazetteer.PARALLEL_QUERIES``), so there CPU time exceeds wall time.
On a shared machine absolute times drift by tens of percent from one minute to the next, so
the run also times two references: a matmul the size of a 1,000-name step, and a tanh over a
(16, 640) array, the size of the ~25 numpy calls a 10-name step is made of.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.gazetteer import load_gazetteer
from app.lm import load_model
from app.sampling import sample_names

TARGETS_MS = {10: 5.0, 1000: 200.0}


def median_ms(model, n: int, repeats: int, temperature: float = 0.8) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``sample_names`` for n names, seeds 0..repeats-1.

    CPU time is printed too because a busy machine inflates wall time, not CPU time.
    """
    wall, cpu = [], []
    for seed in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        sample_names(model, n, np.random.default_rng(seed), temperature=temperature)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/lstm.npz"))
    parser.add_argument("--repeats", type=int, default=30, help="runs per size (1,000 names: 1/3)")
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    model = load_model(args.model)
    load_gazetteer()
    sample_names(model, 10, np.random.default_rng(0))  # warm-up
    gflops, call_us = machine_speed()
    print(f"model {args.model} ({model.kind}, {model.n_params:,} parameters); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"this machine now: matmul {gflops:.0f} GFLOP/s, (16, 640) tanh {call_us:.1f} us")
    for n, target in TARGETS_MS.items():
        repeats = args.repeats if n < 100 else max(3, args.repeats // 3)
        ms, cpu_ms = median_ms(model, n, repeats)
        verdict = "ok" if ms <= target else "over target"
        print(f"{n:>5} names: median {ms:8.2f} ms wall, {cpu_ms:8.2f} ms CPU over {repeats} runs "
              f"(target <= {target:g} ms: {verdict})")


if __name__ == "__main__":
    main()
