"""In-process time to invent 10 and 1,000 names, novelty filter and nearest name included.

    python benchmarks/sampling_speed.py                                   # the served lstm
    python benchmarks/sampling_speed.py --model models/lstm.npz "models/teachers/lstm-<id>.npz#0"
    python benchmarks/sampling_speed.py --ref main --model /tmp/single.npz   # this tree vs main

A model is a checkpoint file, or FILE#K for member K of the ensemble in FILE (#0 of the served
student's teachers is one 1x160 LSTM, the model of issue 13's single-LSTM targets).

Targets: with a single 1x160 LSTM, 10 names <= 3 ms, 1,000 names <= 150 ms and a sampling step
at 10 rows <= 60 us; with any other model (the served lstm, a student or an ensemble), 10 names
<= 5 ms and 1,000 names <= 200 ms. Several models (or, with ``--ref``, this tree's code and
another commit's, each in its own worker process) are timed in rounds, and in every round the
order of the trees, of the models within a tree and of the three measures of a model (the
step, 10 names, 1,000 names) turns by one (with two, a flip), so a slow minute on this shared
machine hits them alike; each round also times three machine references: a matmul the size of
a 1,000-name step (GFLOP/s in wall time), a (16, 640) tanh (the size of the ~20 numpy calls of
a 10-name step) and a 1x160 LSTM's 10-row recurrent product alone, (12, 160) rows times the
(4, 160, 160) gate-major weights as the step runs it, the floor under that step's 60 us target
(both in thread CPU time, the step's clock). Prints min / median / max over rounds of each
round's median (repeats seeds per round): the step in thread CPU time, the names in wall time
and in CPU time of all threads.
One BLAS thread, as the service runs; the nearest-name search of 1,000 names uses every core
(``gazetteer.PARALLEL_QUERIES``), so there CPU time exceeds wall time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from code_trees import Worker, export
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
SINGLE_TARGETS_MS = {10: 3.0, 1000: 150.0}   # one 1x160 LSTM (issue 13)
SERVED_TARGETS_MS = {10: 5.0, 1000: 200.0}   # any other model served as lstm (issue 10)
STEP_TARGET_US = 60.0
STEP_ROWS = 10


def app_module(*names: str):
    """The first of ``names`` this code tree has: ``--ref`` may name a commit from before
    app/ was split into subpackages (app.sampling, app.lm, app.gazetteer then)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {', '.join(names)} in this code tree")


def median_ms(model, n: int, repeats: int, temperature: float = 0.8) -> tuple[float, float]:
    """Median wall and CPU (all threads) milliseconds of ``sample_names`` for n names over
    seeds 0..repeats-1."""
    sample_names = app_module("app.generation.sampling", "app.sampling").sample_names
    wall, cpu = [], []
    for seed in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        sample_names(model, n, np.random.default_rng(seed), temperature=temperature)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def step_us(model, repeats: int, temperature: float = 0.8) -> float:
    """Median microseconds per step of drawing ``STEP_ROWS`` sequences: a draw's thread CPU time
    (waiting for a core does not count) over the steps it ran (its longest sequence, end token
    included)."""
    draw = app_module("app.generation.drawing", "app.drawing", "app.sampling").draw
    per_step = []
    for seed in range(repeats):
        start = time.thread_time()
        names, _ = draw(model, STEP_ROWS, "", 40, temperature, None, np.random.default_rng(seed))
        seconds = time.thread_time() - start
        per_step.append(seconds / max(41 if s is None else len(s) + 1 for s in names) * 1e6)
    return statistics.median(per_step)


def turned(items: list, by: int) -> list:
    """``items`` rotated left by ``by``: round r's order, so each item takes each place in turn."""
    by %= len(items)
    return items[by:] + items[:by]


def measure(model, repeats: int, round_: int) -> dict[str, float]:
    """One round for one model: µs per step at 10 rows, ms for 10 and 1,000 names, in an order
    that turns with the round."""
    def names(n: int) -> dict[str, float]:
        wall, cpu = median_ms(model, n, repeats if n < 100 else max(3, repeats // 3))
        return {str(n): wall, f"{n} cpu": cpu}

    measures = [lambda: {"step": step_us(model, repeats)},
                *(lambda n=n: names(n) for n in SINGLE_TARGETS_MS)]
    return {key: value for run in turned(measures, round_) for key, value in run().items()}


def seconds_per_call(work, clock, repeats: int) -> float:
    """Seconds ``work()`` takes by ``clock`` (after one untimed call), over ``repeats`` calls."""
    work()
    start = clock()
    for _ in range(repeats):
        work()
    return (clock() - start) / repeats


def machine_speed(repeats: int = 200) -> tuple[float, float, float]:
    """(GFLOP/s of a (1000, 160) x (160, 640) float32 matmul in wall time, microseconds of a
    (16, 640) tanh and of a 10-row step's recurrent product as ``lstm.step`` runs it ((12, 160)
    rows, as ``padded_rows`` pads them, times the (4, 160, 160) gate-major weights), both in
    thread CPU time, the clock of the step they are floors under)."""
    rng = np.random.default_rng(0)
    h, W = (rng.standard_normal(s).astype(np.float32) for s in ((1000, 160), (160, 640)))
    small = rng.standard_normal((16, 640)).astype(np.float32)
    few_rows = np.ascontiguousarray(h[:12])
    gate_major = np.ascontiguousarray(W.reshape(160, 4, 160).transpose(1, 0, 2))
    matmul = seconds_per_call(lambda: h @ W, time.perf_counter, repeats)
    tanh = seconds_per_call(lambda: np.tanh(small), time.thread_time, repeats)
    recurrent = seconds_per_call(lambda: np.matmul(few_rows[None], gate_major), time.thread_time,
                                 repeats)
    return 2 * h.size * W.shape[1] / matmul / 1e9, tanh * 1e6, recurrent * 1e6


def single_160(model) -> bool:
    """Whether ``model`` is one 1x160 LSTM, the model issue 13's targets are set for."""
    config = getattr(model, "config", None)
    return config is not None and (config.kind, config.layers, config.hidden) == ("lstm", 1, 160)


def spread(values: list[float]) -> str:
    return f"{min(values):7.2f} / {statistics.median(values):7.2f} / {max(values):7.2f}"


def worker() -> None:
    """Serve rounds on stdin/stdout for the code tree on ``sys.path`` (see ``--ref``): the first
    line names the model files and is answered with what they are and from how many names the
    tree's nearest-name search uses every core (None: never); then each ``ROUND REPEATS`` line is
    answered by one JSON round, the models timed in an order that turns with the round, their
    results in file order."""
    gazetteer = app_module("app.data.gazetteer", "app.gazetteer")
    sample_names = app_module("app.generation.sampling", "app.sampling").sample_names
    load_model = app_module("app.lm.base", "app.lm").load_model
    threadpool_limits(limits=1, user_api="blas")

    def load(path: str):
        file, _, member = path.partition("#")
        model = load_model(file)
        return model.components[int(member)] if member else model

    models = [load(path) for path in json.loads(sys.stdin.readline())]
    gazetteer.load_gazetteer()
    for model in models:
        sample_names(model, 10, np.random.default_rng(0))   # warm-up: step tables, caches
    print(json.dumps([[[m.kind, len(getattr(m, "components", [m])), m.n_params, single_160(m)]
                       for m in models], getattr(gazetteer, "PARALLEL_QUERIES", None)]), flush=True)
    for line in sys.stdin:
        round_, repeats = map(int, line.split())
        results = {i: measure(models[i], repeats, round_)
                   for i in turned(list(range(len(models))), round_)}
        print(json.dumps([results[i] for i in range(len(models))]), flush=True)


class Tree:
    """A code tree (this one, or a commit exported with ``git archive``) timed in its own process."""

    def __init__(self, label: str, path: Path, models: list[Path]):
        self.label = label
        self.worker = Worker(Path(__file__), path)
        self.info, self.parallel_queries = self.worker.ask(
            json.dumps([str(p.resolve()) for p in models]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, nargs="+", default=[Path("models/lstm.npz")])
    parser.add_argument("--ref", help="also time this git commit's code, alternating with ours")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the order turning every round (default: 5)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="seeds per round for 10 names; a third of them for 1,000 names")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    threadpool_limits(limits=1, user_api="blas")
    trees = [Tree("this tree", ROOT, args.model)]
    exported = export(args.ref) if args.ref else None
    if exported:
        trees.append(Tree(args.ref, exported, args.model))
    times: dict[tuple[str, str, str], list[float]] = {}
    references = []
    for round_ in range(args.rounds):
        references.append(machine_speed())
        for tree in turned(trees, round_):
            answer = tree.worker.ask(f"{round_} {args.repeats}")
            for path, result in zip(args.model, answer, strict=True):
                for key, value in result.items():
                    times.setdefault((tree.label, str(path), key), []).append(value)
    for tree in trees:
        tree.worker.close()
    if exported:
        shutil.rmtree(exported)
    gflops, tanh_us, recurrent_us = zip(*references, strict=True)
    print(f"{args.rounds} rounds, the order turning every round; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; machine per round (min / median / "
          f"max): matmul {spread(list(gflops))} GFLOP/s (wall), (16, 640) tanh "
          f"{spread(list(tanh_us))} us (thread CPU), a 10-row step's recurrent product alone "
          f"{spread(list(recurrent_us))} us (thread CPU, the step's clock)")
    for path, (kind, members, n_params, single) in zip(args.model, trees[0].info, strict=True):
        print(f"{path} ({kind}, {members} member{'s' * (members > 1)}, {n_params:,} parameters)")
        targets = SINGLE_TARGETS_MS if single else SERVED_TARGETS_MS
        for tree in trees:
            step = times[tree.label, str(path), "step"]
            print(f"  [{tree.label}] step at {STEP_ROWS} rows: {spread(step)} us of thread CPU "
                  f"time (target <= {STEP_TARGET_US:g} us for one 1x160 LSTM)")
            for n, target in targets.items():
                values = times[tree.label, str(path), str(n)]
                verdict = "ok" if statistics.median(values) <= target else "over target"
                parallel = tree.parallel_queries is not None and n >= tree.parallel_queries
                cores = f", the nearest-name search on every core ({os.cpu_count()})" if parallel else ""
                print(f"  [{tree.label}] {n:>5} names: {spread(values)} ms of wall time (min / "
                      f"median / max of round medians; target <= {target:g} ms: {verdict}); "
                      f"CPU time of all threads {spread(times[tree.label, str(path), f'{n} cpu'])} "
                      f"ms{cores}")
        if len(trees) == 2:
            ratios = [statistics.median(times[trees[0].label, str(path), key])
                      / statistics.median(times[trees[1].label, str(path), key])
                      for key in ("step", "10", "10 cpu", "1000", "1000 cpu")]
            print(f"  this tree / {args.ref}, ratio of medians: step {ratios[0]:.2f}; 10 names "
                  f"{ratios[1]:.2f} (CPU {ratios[2]:.2f}); 1,000 names {ratios[3]:.2f} "
                  f"(CPU {ratios[4]:.2f})")


if __name__ == "__main__":
    main()
