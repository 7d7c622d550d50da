"""A/B: this tree's sampler against another commit's, in alternating rounds, CPU and wall time.

    python benchmarks/sampling_ab.py --ref main [--rounds 10]

Both samplers run in this process on the same model, gazetteer and seeds, one BLAS thread each;
the order of A and B flips every round, so a slow minute on a shared machine hits both alike.
Prints min / median / max over rounds of each round's median (30 seeds for 10 names, 3 for 1,000).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.data.gazetteer import load_gazetteer
from app.generation import sampling
from app.lm.base import load_model

ROOT = Path(__file__).resolve().parent.parent


def load_sampler(ref: str):
    """``app/generation/sampling.py`` as it is at ``ref``, imported under another module name."""
    source = subprocess.run(["git", "show", f"{ref}:app/generation/sampling.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "sampling_ref.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location("sampling_ref", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sampling_ref"] = module
    spec.loader.exec_module(module)
    return module


def round_ms(sampler, model, gazetteer, n: int, seeds: range) -> tuple[float, float]:
    """Median wall and CPU milliseconds over ``seeds``."""
    wall, cpu = [], []
    for seed in seeds:
        start, start_cpu = time.perf_counter(), time.process_time()
        sampler.sample_names(model, n, np.random.default_rng(seed), gazetteer=gazetteer)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main", help="git commit or branch to compare with")
    parser.add_argument("--model", type=Path, default=ROOT / "models/lstm.npz")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    model, gazetteer = load_model(args.model), load_gazetteer()
    samplers = {args.ref: load_sampler(args.ref), "this tree": sampling}
    for sampler in samplers.values():
        round_ms(sampler, model, gazetteer, 10, range(5))          # warm-up
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for n, seeds in ((10, 30), (1000, 3)):
        results = {label: ([], []) for label in samplers}
        for r in range(args.rounds):
            order = list(samplers.items())[:: 1 if r % 2 == 0 else -1]
            for label, sampler in order:
                wall, cpu = round_ms(sampler, model, gazetteer, n, range(r * seeds, (r + 1) * seeds))
                results[label][0].append(wall)
                results[label][1].append(cpu)
        for label, (wall, cpu) in results.items():
            print(f"{n:>5} names, {label:>10}: wall min {min(wall):7.2f} median "
                  f"{statistics.median(wall):7.2f} max {max(wall):7.2f} ms; CPU min {min(cpu):7.2f} "
                  f"median {statistics.median(cpu):7.2f} max {max(cpu):7.2f} ms")


if __name__ == "__main__":
    main()
