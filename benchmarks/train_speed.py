"""Training throughput of the numpy RNN and LSTM against PyTorch, at equal thread counts.

    python benchmarks/train_speed.py [--rounds 5] [--threads 1 2] [--models lstm rnn]

For the default configurations of ``app.train`` (so it follows the tuning), each round times
one whole training epoch (every batch, length-bucketed and shuffled as ``app.train`` does for
that epoch) per engine: numpy with n threads (its main thread and, from n = 2, the step's
helper thread, with BLAS on one thread each, as `app.train --jobs n` trains one model) and
PyTorch with n threads (``torch.set_num_threads``), on the same batches, for each n. The
engines take turns batch by batch (who goes first alternating), so load drift on a shared
machine hits both; each round also times a fixed float32 matmul (GFLOP/s on one thread) as a
reference for how fast the machine was, and the same matmul on two threads at once (how much
of a second core there was: x2.0 a whole one, x1.0 none). At one thread a third engine takes
its turns too: numpy's step reduced to its own matrix products (recorded in a real step,
replayed on the same arrays), the floor under the step and so the ceiling on its ratio to
PyTorch. Printed: chars/s min / median / max per engine, and the ratios of each round (min /
median / max); at 2 threads also the ratio to PyTorch at whichever of its thread counts was
faster in the round (on shared cores its second thread can cost more than it brings).

Then (unless --no-wall) real `python -m app.train --model lstm --members 1 --jobs n` runs (one
model, not the cross-fitted ensemble) in a subprocess, ``--wall-runs`` for each n with the order
of the n alternating, and their process wall time to the best epoch (validation and checkpoint
saves included) and in all, min / median / max.

PyTorch is not a dependency of the product; for the comparison, install its CPU build (a wheel
on this machine's disk) into the environment that runs this script:

    pip install torch==2.13.0
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `app` importable
    sys.path.insert(0, str(ROOT))

from app.data.corpus import DEFAULT_NAMES, length_bucketed_batches  # noqa: E402
from app.nn import network  # noqa: E402
from app.nn.optim import clip_global_norm  # noqa: E402
from app.nn.recurrent import Workspace  # noqa: E402
from app.train import build_parser, resolve_config  # noqa: E402
from app.training.trainer import Trainer  # noqa: E402

KINDS = ("lstm", "rnn")
WARMUP_BATCHES = 5
TORCH_HINT = "pip install torch==2.13.0"
REFERENCE_N = 256   # the reference matmul: (N, N) @ (N, N) in float32 on one thread


def default_trainer(kind: str) -> Trainer:
    """A trainer exactly as `python -m app.train --model KIND` builds it (nothing is written)."""
    cfg = resolve_config(build_parser().parse_args(["--model", kind]))
    out = Path(tempfile.gettempdir()) / f"toponimo-bench-{kind}.npz"  # never written: no run()
    return Trainer(cfg, DEFAULT_NAMES, out, quiet=True)


def loss_norm(trainer: Trainer) -> float:
    """The loss normaliser of app.train: mean tokens per batch over an epoch."""
    encoded, batch_size = trainer.train_encoded, trainer.cfg.batch_size
    return sum(len(ids) + 1 for ids in encoded) / math.ceil(len(encoded) / batch_size)


def epoch_batches(trainer: Trainer, epoch: int) -> list:
    """The batches of training's epoch ``epoch`` (0 for the warm-up), as app.train draws them."""
    cfg = trainer.cfg
    return length_bucketed_batches(trainer.train_encoded, cfg.batch_size,
                                   np.random.default_rng([cfg.seed, epoch]))


def describe(cfg) -> str:
    inputs = f"embedding {cfg.embed}" if cfg.embed else "one-hot"
    return (f"{cfg.layers}x{cfg.hidden}, {inputs}, dropout {cfg.dropout}, batch {cfg.batch_size}, "
            f"{cfg.optimizer} lr {cfg.lr}, clip {cfg.clip}")


def reference_operands() -> tuple[np.ndarray, np.ndarray]:
    """The two (N, N) float32 matrices of the reference matmul."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((REFERENCE_N, REFERENCE_N), dtype=np.float32) for _ in range(2))
    return a, b


def reference_gflops() -> float:
    """GFLOP/s of a fixed float32 matmul on one BLAS thread: how fast the machine is right now."""
    a, b = reference_operands()
    out = np.empty_like(a)
    best = math.inf
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(20):
            started = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - started)
    return 2 * REFERENCE_N ** 3 / best / 1e9


def second_core(repeats: int = 40) -> float:
    """Throughput of the reference matmul run on two threads at once, over one thread's: 2.0
    when a second core is free, 1.0 when someone else has it (numpy releases the GIL in BLAS)."""
    a, b = reference_operands()

    def work() -> None:
        out = np.empty_like(a)
        for _ in range(repeats):
            np.matmul(a, b, out=out)

    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        work()
        alone = time.perf_counter() - started
        threads = [threading.Thread(target=work) for _ in range(2)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        together = time.perf_counter() - started
    return 2 * alone / together


# --- numpy -------------------------------------------------------------------------------------

class NumpyRun:
    """The training step of app.train (loss, gradients, clipping, Adam, weight average)."""

    def __init__(self, kind: str, norm: float):
        trainer = default_trainer(kind)
        self.cfg, self.model, self.optimizer = trainer.cfg, trainer.model, trainer.optimizer
        self.average, self.norm = trainer.average, norm
        self.rng = np.random.default_rng(0)  # dropout masks, as in training
        self.workspaces: dict[int, Workspace] = {}
        self.use_threads(1)

    def use_threads(self, n: int) -> None:
        """Train as `app.train --jobs n` trains one model: with a helper thread from n = 2."""
        if n not in self.workspaces:
            self.workspaces[n] = Workspace(threads=n)
        self.work = self.workspaces[n]

    def convert(self, batch):
        return batch

    def step(self, batch) -> None:
        _, grads, _ = network.loss_and_grads(self.model.config, self.model.params, batch,
                                             norm=self.norm, rng=self.rng, work=self.work)
        clip_global_norm(grads, self.cfg.clip)
        self.optimizer.step(self.model.params, grads, work=self.work)
        if self.average:
            self.average.update(self.model.params, self.work)


class MatmulsAlone(NumpyRun):
    """numpy's step reduced to its matrix products, the floor under it: ``convert`` (untimed)
    runs a real training step recording every ``np.matmul`` it makes, operands and outputs;
    ``step`` replays just those, on the same arrays."""

    def convert(self, batch):
        calls, matmul = [], np.matmul

        def recording(*args, **kwargs):
            calls.append((args, kwargs))
            return matmul(*args, **kwargs)

        np.matmul = recording
        try:
            super().step(batch)
        finally:
            np.matmul = matmul
        return calls

    def step(self, calls) -> None:
        for args, kwargs in calls:
            np.matmul(*args, **kwargs)


# --- PyTorch (optional) ------------------------------------------------------------------------

def import_torch():
    """torch, or None when it is not installed."""
    # idle OpenMP threads must sleep, not spin: on shared cores spinning makes torch 10-60x slower
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchRun:
    """The same model, loss and optimiser in PyTorch: same sizes, dropout places and batches."""

    def __init__(self, torch, kind: str, norm: float):
        nn = torch.nn
        trainer = default_trainer(kind)
        self.torch, self.cfg, self.norm = torch, trainer.cfg, norm
        config = trainer.model.config
        torch.manual_seed(0)
        V, H, E = config.vocab_size, config.hidden, config.embed
        self.embed = nn.Embedding(V, E) if E else None
        cell = nn.LSTM if config.kind == "lstm" else nn.RNN  # nn.RNN is tanh, like app.nn.rnn
        # numpy drops out each layer's input (when embedded) and output; nn.LSTM's own dropout
        # covers the outputs between layers, the Dropout module the rest
        self.rnn = cell(E or V, H, num_layers=config.layers,
                        dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(H, V)
        self.vocab_size, self.one_hot = V, not E
        modules = [m for m in (self.embed, self.rnn, self.out) if m is not None]
        self.params = params = [p for m in modules for p in m.parameters()]
        # decoupled decay on matrices only, like app.nn.optim.Adam
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": self.cfg.weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr)
        self.live = nn.ModuleList(modules)
        self.average = (torch.optim.swa_utils.AveragedModel(
            self.live, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(self.cfg.ema))
            if self.cfg.ema else None)

    def use_threads(self, n: int) -> None:
        self.torch.set_num_threads(n)

    def convert(self, batch):
        t = self.torch
        return (t.from_numpy(batch.inputs), t.from_numpy(batch.targets).reshape(-1),
                t.from_numpy(batch.mask.astype(np.float32)).reshape(-1))

    def step(self, batch) -> None:
        torch, F = self.torch, self.torch.nn.functional
        inputs, targets, mask = batch
        # numpy drops out embedded inputs but never one-hot ones
        x = (F.one_hot(inputs, self.vocab_size).float() if self.one_hot
             else self.drop(self.embed(inputs)))
        hs, _ = self.rnn(x)                                       # (T, B, H), zero initial state
        logits = self.out(self.drop(hs)).reshape(-1, self.vocab_size)
        nll = F.cross_entropy(logits, targets, reduction="none")
        loss = (nll * mask).sum() / self.norm
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip)
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(self.live)


# --- timing ------------------------------------------------------------------------------------

def measure(kind: str, rounds: int, threads: list[int], torch) -> dict:
    """chars/s per engine and thread count over whole epochs.

    Every engine trains on the same epoch, batch by batch in turns (which engine goes first
    alternates from batch to batch), so a change in the machine's load within the epoch hits
    all of them alike; each engine's time is the sum of its own steps.
    """
    probe = default_trainer(kind)
    cfg, norm = probe.cfg, loss_norm(probe)
    engines = {"numpy": NumpyRun(kind, norm)}
    if torch is not None:
        engines["torch"] = TorchRun(torch, kind, norm)
    floor = MatmulsAlone(kind, norm)   # timed at one thread, the step's matmuls' own
    warmup = epoch_batches(probe, 0)
    speeds = {(name, n): [] for name in engines for n in threads}
    ratios: dict[int, list[float]] = {n: [] for n in threads}
    reference, second = [], []
    for r in range(rounds):
        reference.append(reference_gflops())
        second.append(second_core())
        # round r is training's epoch r + 1: the same batches for every engine
        epoch = epoch_batches(probe, r + 1)
        n_tokens = sum(b.n_tokens for b in epoch)
        for n in threads:
            timed = {**engines, "matmuls": floor} if n == 1 else engines
            for engine in timed.values():
                engine.use_threads(n)
            # numpy's BLAS (torch has its own) on one thread, as app.train runs it: numpy's n
            # threads are its main thread and, from 2, the step's helper thread
            with threadpool_limits(limits=1, user_api="blas"):
                for engine in timed.values():                    # untimed warm-up at n threads
                    for batch in warmup[:WARMUP_BATCHES]:
                        engine.step(engine.convert(batch))
                seconds = dict.fromkeys(timed, 0.0)
                for k, batch in enumerate(epoch):
                    for name in (list(timed) if k % 2 == 0 else list(reversed(timed))):
                        engine = timed[name]
                        converted = engine.convert(batch)
                        started = time.perf_counter()
                        engine.step(converted)   # CPU only: every op has finished when it returns
                        seconds[name] += time.perf_counter() - started
            for name in timed:
                speeds.setdefault((name, n), []).append(n_tokens / seconds[name])
            if torch is not None:
                ratios[n].append(seconds["torch"] / seconds["numpy"])
    return {"kind": kind, "cfg": cfg, "n_tokens": n_tokens, "n_batches": len(epoch),
            "speeds": speeds, "ratios": ratios, "reference": reference,
            "second_core": second}


def time_to_best(kind: str, jobs: int) -> dict:
    """Process wall time of `python -m app.train --model KIND --members 1 --jobs JOBS` until its
    best epoch's checkpoint was written (its last "saved" line), and until it exited."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app.train", "--model", kind, "--members", "1",
                                 "--jobs", str(jobs), "--quiet",
                                 "--out", str(Path(tmp) / f"{kind}.npz")],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        best_at, last = None, ""
        for line in proc.stdout:
            if line.rstrip().endswith("saved"):
                best_at = time.perf_counter() - started
            last = line.strip() or last
        proc.wait()
        total = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"app.train exited with {proc.returncode}")
    return {"to_best": best_at, "total": total, "last": last}


def spread(values, digits: int = 2) -> str:
    """min / median / max: whole numbers from 100 up, else with ``digits`` decimals."""
    return " / ".join(f"{v:,.0f}" if v >= 100 else f"{v:.{digits}f}"
                      for v in (min(values), statistics.median(values), max(values)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/train_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds, each one whole epoch per engine (default: 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts, the same for numpy's BLAS and PyTorch (default: 1 2)")
    parser.add_argument("--models", choices=KINDS, nargs="+", default=list(KINDS),
                        help="which default configurations to time (default: lstm rnn)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--no-wall", action="store_true",
                        help="skip the real training runs (wall time to the best epoch)")
    parser.add_argument("--wall-runs", type=int, default=3,
                        help="real training runs per thread count (default: 3)")
    args = parser.parse_args(argv)
    if min(args.rounds, args.wall_runs, *args.threads) < 1:
        parser.error("--rounds, --wall-runs and --threads must be >= 1")

    torch = None if args.no_torch else import_torch()
    print(f"numpy {np.__version__}; machine reference: {REFERENCE_N}^3 float32 matmul on one thread")
    if torch is not None:
        print(f"torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    elif not args.no_torch:
        print(f"PyTorch is not installed: numpy figures only. To compare: {TORCH_HINT}")
    print("numpy runs its BLAS on one thread, as app.train does; at 2 threads, a helper thread "
          "beside its time loops takes the local derivatives, part of the weight gradients and "
          "half of each Adam update (app.nn.recurrent.Workspace), as "
          "`python -m app.train --jobs 2` does for one model")
    print(f"one training step = forward + backward + clip + Adam + weight average, float32; "
          f"{args.rounds} rounds of one whole epoch per engine, engines taking turns batch by batch\n")
    for kind in args.models:
        r = measure(kind, args.rounds, args.threads, torch)
        print(f"{kind}: {describe(r['cfg'])}; an epoch is {r['n_batches']} batches, "
              f"{r['n_tokens']:,} chars")
        print(f"  machine reference GFLOP/s (min / median / max): {spread(r['reference'])}; "
              f"two at once: x{spread(r['second_core'])} the throughput of one (per round: "
              f"{' '.join(f'{v:.2f}' for v in r['second_core'])})")
        for n in args.threads:
            for name in ("numpy", "torch"):
                if (name, n) in r["speeds"]:
                    s = r["speeds"][name, n]
                    print(f"  {name:5s} {n} thread{'s' if n > 1 else ' '}  chars/s {spread(s):>26s}   "
                          + " ".join(f"{v:,.0f}" for v in s))
            if r["ratios"][n]:
                print(f"  numpy/torch at {n} thread{'s' if n > 1 else ''}: {spread(r['ratios'][n])} "
                      f"(per round: {' '.join(f'{v:.2f}' for v in r['ratios'][n])})")
                fewer = [k for k in args.threads if k < n]
                if fewer:   # torch may run slower on more threads: compare with its best too
                    best = [max(r["speeds"]["torch", k][i] for k in (*fewer, n))
                            for i in range(args.rounds)]
                    against_best = [v / b for v, b in zip(r["speeds"]["numpy", n], best, strict=True)]
                    print(f"  numpy at {n} threads / torch at its fastest of "
                          f"{', '.join(map(str, (*fewer, n)))} threads in the round: "
                          f"{spread(against_best)}")
            if ("matmuls", n) in r["speeds"]:
                floor, numpy_speed = r["speeds"]["matmuls", n], r["speeds"]["numpy", n]
                share = [step / alone for step, alone in zip(numpy_speed, floor, strict=True)]
                print(f"  numpy's matmuls alone, replayed: chars/s {spread(floor)}; "
                      f"{spread([100 * v for v in share])} % of its step")
                if ("torch", n) in r["speeds"]:
                    ceiling = [alone / t for alone, t in zip(floor, r["speeds"]["torch", n], strict=True)]
                    print(f"  numpy's matmuls alone / torch: {spread(ceiling)} (the ratio numpy "
                          f"would reach if all but its matmuls were free)")
        print()
    walls: dict[int, list[dict]] = {n: [] for n in args.threads}
    for run in range(0 if args.no_wall else args.wall_runs):
        for n in args.threads if run % 2 == 0 else reversed(args.threads):
            walls[n].append(time_to_best("lstm", n))
    for n, runs in walls.items():
        if runs:
            print(f"python -m app.train --model lstm --members 1 --jobs {n}, {len(runs)} runs: best "
                  f"epoch's checkpoint written after {spread([w['to_best'] for w in runs])} s of "
                  f"process wall time, exit after {spread([w['total'] for w in runs])} s\n"
                  f"  ({runs[-1]['last']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
