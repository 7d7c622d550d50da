"""Training throughput of the numpy RNN and LSTM against PyTorch, at equal thread counts.

    python benchmarks/train_speed.py [--rounds 5] [--threads 1 2] [--models lstm rnn]

For the default configurations of ``app.train`` (so it follows the tuning), each round times
one whole training epoch (every batch, length-bucketed and shuffled as ``app.train`` does for
that epoch) per engine: numpy with n threads (its main thread and, from n = 2, the step's
helper thread, with BLAS on one thread each, as `app.train --jobs n` trains one model) and
PyTorch with n threads (``torch.set_num_threads``, fused AdamW where it has it), on the same
batches, for each n (the order of the n alternating from round to round). PyTorch is timed at
its best: once with OMP_WAIT_POLICY=PASSIVE (idle threads sleep) and once with it unset
(libgomp's default, which spins them a while first), each engine in a worker process of its
own, since OpenMP reads the policy once, when it starts. The engines take turns batch by batch
(the order reversed every other batch), so load drift on a shared machine hits all of them;
each times its own step inside its process, the pipe to it outside the timed region, and a
short pause after every turn lets a spinning engine's threads settle before the next one's.
The pause has a cost too: numpy's helper thread (from 2 threads) sleeps through it and must
wake for every batch, which a real training run never asks of it, so numpy's 2-thread figure
here is a pessimistic one (the wall runs below show the real effect of --jobs 2).
Each round also times a fixed float32 matmul (GFLOP/s on one thread) as a reference for how
fast the machine was, and the same matmul on two threads at once (how much of a second core
there was: x2.0 a whole one, x1.0 none). At one thread another engine takes its turns too:
numpy's step reduced to its own matrix products (recorded in a real step, replayed on the same
arrays), the floor under the step and so the ceiling on its ratio to PyTorch.

Printed per thread count: chars/s min / median / max per engine (and policy), the ratios
numpy / PyTorch of each round per policy, and, the headline, numpy over PyTorch's faster policy
in each round (min / median / max); from 2 threads also over PyTorch's fastest thread count
and policy in the round (on shared cores its second thread can cost more than it brings).

Then (unless --no-wall) real `python -m app.train --model lstm --members 1 --jobs n` runs (one
model, not the cross-fitted ensemble) in a subprocess, ``--wall-runs`` for each n with the order
of the n alternating: their process wall time to the best epoch (validation and checkpoint
saves included) and in all, min / median / max, and every run's best validation NLL.

PyTorch is not a dependency of the product; for the comparison, install its CPU build (a wheel
on this machine's disk) into the environment that runs this script:

    pip install torch==2.13.0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from code_trees import Worker
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
# OMP_WAIT_POLICY of each PyTorch engine; None leaves it unset: libgomp's default
TORCH_POLICIES = {"passive": "PASSIVE", "default": None}
# after a parallel region libgomp's default policy keeps the idle threads spinning (~10 ms of
# CPU measured here at 2 threads): pause this long after every turn, so that no engine's turn is
# charged for the cores another one's spinning threads still hold
SETTLE_SECONDS = 0.02


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

    def describe(self) -> str:
        return f"numpy {np.__version__}"

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

def torch_installed() -> bool:
    """Whether PyTorch can be imported (only its engines' worker processes import it)."""
    return importlib.util.find_spec("torch") is not None


def fused_adamw(torch, groups, lr: float):
    """AdamW, fused into one kernel over all parameters where this torch has that on the CPU
    (2.4 on; a few % faster a step here): the reference to beat should be at its best."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except RuntimeError:   # an older torch, whose fused AdamW is for CUDA only
        return torch.optim.AdamW(groups, lr=lr)


class TorchRun:
    """The same model, loss and optimiser in PyTorch: same sizes, dropout places and batches."""

    def __init__(self, kind: str, norm: float):
        import torch

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
        self.optimizer = fused_adamw(torch, groups, self.cfg.lr)
        self.live = nn.ModuleList(modules)
        self.average = (torch.optim.swa_utils.AveragedModel(
            self.live, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(self.cfg.ema))
            if self.cfg.ema else None)

    def describe(self) -> str:
        policy = os.environ.get("OMP_WAIT_POLICY")
        return (f"torch {self.torch.__version__}, "
                f"{'fused ' if self.optimizer.defaults['fused'] else ''}AdamW, "
                + (f"OMP_WAIT_POLICY={policy}" if policy is not None
                   else "OMP_WAIT_POLICY unset (libgomp's default)"))

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


RUNS = {"numpy": NumpyRun, "matmuls": MatmulsAlone, "torch": TorchRun}


# --- the engines' worker processes -------------------------------------------------------------

def serve(run, trainer: Trainer) -> None:
    """Answer the lines on stdin, one line of JSON each, for one engine: ``threads N`` sets it to
    N threads and warms it up there ("ready"); ``EPOCH`` is answered with the number of batches
    of training's epoch EPOCH; ``EPOCH K`` with the seconds the step on its batch K took, timed
    here around the step alone (so the pipe is outside), and the batch's characters."""
    epochs: dict[int, list] = {}
    # numpy's BLAS (torch has its own) on one thread, as app.train runs it: numpy's n threads
    # are its main thread and, from 2, the step's helper thread
    with threadpool_limits(limits=1, user_api="blas"):
        for line in sys.stdin:
            command, *k = line.split()
            if command == "threads":
                run.use_threads(int(k[0]))
                for batch in epoch_batches(trainer, 0)[:WARMUP_BATCHES]:   # untimed warm-up
                    run.step(run.convert(batch))
                answer = "ready"
            else:
                epoch = int(command)
                if epoch not in epochs:
                    epochs = {epoch: epoch_batches(trainer, epoch)}
                answer = timed_step(run, epochs[epoch][int(k[0])]) if k else len(epochs[epoch])
            print(json.dumps(answer), flush=True)


def timed_step(run, batch) -> list:
    """[seconds of one training step on ``batch``, its characters]: the conversion is untimed."""
    converted = run.convert(batch)
    started = time.perf_counter()
    run.step(converted)   # CPU only: every op has finished when it returns
    return [time.perf_counter() - started, batch.n_tokens]


def worker() -> None:
    """Serve one engine: a first line ``RUN KIND`` (a key of RUNS, a model kind) is answered with
    what the engine is, then the lines of ``serve``."""
    name, kind = sys.stdin.readline().split()
    trainer = default_trainer(kind)
    run = RUNS[name](kind, loss_norm(trainer))
    print(json.dumps(run.describe()), flush=True)
    serve(run, trainer)


def start_engines(kind: str, with_floor: bool, with_torch: bool
                  ) -> tuple[dict[str, Worker], dict[str, str]]:
    """The engines, each in a worker process of its own, by label (numpy, matmuls if asked, a
    torch engine per policy if asked), and what each one is."""
    specs = {"numpy": ("numpy", {})}
    if with_floor:
        specs["matmuls"] = ("matmuls", {})
    if with_torch:
        specs.update({f"torch {policy}": ("torch", {"OMP_WAIT_POLICY": value})
                      for policy, value in TORCH_POLICIES.items()})
    engines, described = {}, {}
    for label, (run, env) in specs.items():
        engines[label] = Worker(Path(__file__), ROOT, env)
        described[label] = engines[label].ask(f"{run} {kind}")
    return engines, described


# --- timing ------------------------------------------------------------------------------------

def time_epoch(engines: dict[str, Worker], epoch: int, n_batches: int,
               settle: float = SETTLE_SECONDS) -> dict[str, float]:
    """Seconds of each engine's steps over training's epoch ``epoch``, the engines taking turns
    batch by batch (the order reversed every other batch), so a change in the machine's load
    within the epoch hits all of them alike; a pause of ``settle`` seconds follows every turn
    (none is needed between engines that leave no threads spinning)."""
    seconds = dict.fromkeys(engines, 0.0)
    order = list(engines)
    for k in range(n_batches):
        for label in order if k % 2 == 0 else order[::-1]:
            seconds[label] += engines[label].ask(f"{epoch} {k}")[0]
            if settle:
                time.sleep(settle)
    return seconds


def measure(kind: str, rounds: int, threads: list[int], with_torch: bool) -> dict:
    """chars/s per engine and thread count over whole epochs, one list entry per round; round r
    is training's epoch r + 1, the same batches for every engine, the thread counts in turn
    (their order reversed every other round). The matmuls-alone engine runs at one thread."""
    probe = default_trainer(kind)
    speeds: dict[tuple[str, int], list[float]] = {}
    reference, second = [], []
    engines, described = start_engines(kind, 1 in threads, with_torch)
    try:
        for r in range(rounds):
            reference.append(reference_gflops())
            second.append(second_core())
            epoch = epoch_batches(probe, r + 1)
            n_tokens = sum(b.n_tokens for b in epoch)
            for n in threads if r % 2 == 0 else threads[::-1]:
                timed = {label: engine for label, engine in engines.items()
                         if n == 1 or label != "matmuls"}
                for engine in timed.values():
                    engine.ask(f"threads {n}")
                for label, seconds in time_epoch(timed, r + 1, len(epoch)).items():
                    speeds.setdefault((label, n), []).append(n_tokens / seconds)
    finally:
        for engine in engines.values():
            engine.close()
    return {"kind": kind, "cfg": probe.cfg, "n_tokens": n_tokens, "n_batches": len(epoch),
            "speeds": speeds, "described": described, "reference": reference,
            "second_core": second}


def time_to_best(kind: str, jobs: int) -> dict:
    """Process wall time of `python -m app.train --model KIND --members 1 --jobs JOBS` until its
    best epoch's checkpoint was written (its last "saved" line), and until it exited, and the
    best validation NLL it reports. The child runs unbuffered (-u), so each line arrives as it
    is printed and the time to the best epoch is when it was saved."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-u", "-m", "app.train", "--model", kind,
                                 "--members", "1", "--jobs", str(jobs), "--quiet",
                                 "--out", str(Path(tmp) / f"{kind}.npz")],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        best_at, best = None, None
        for line in proc.stdout:
            if line.rstrip().endswith("saved"):
                best_at = time.perf_counter() - started
            best = re.match(r"best validation NLL ([\d.]+) nats/char at epoch (\d+)", line) or best
        proc.wait()
        total = time.perf_counter() - started
    if proc.returncode != 0 or best is None:
        raise RuntimeError(f"app.train exited with {proc.returncode}"
                           + ("" if best else ", without a best validation NLL"))
    return {"to_best": best_at, "total": total, "val_nll": float(best[1]), "epoch": int(best[2])}


def spread(values, digits: int = 2) -> str:
    """min / median / max: whole numbers from 100 up, else with ``digits`` decimals."""
    return " / ".join(f"{v:,.0f}" if v >= 100 else f"{v:.{digits}f}"
                      for v in (min(values), statistics.median(values), max(values)))


def per_round(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def quotients(numerators: list[float], denominators: list[float]) -> list[float]:
    """Round by round, one speed over another."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def fastest_torch(speeds: dict, thread_counts: set[int]) -> list[float]:
    """PyTorch's chars/s in each round at whichever of its policies and ``thread_counts`` was
    fastest in that round."""
    runs = [s for (label, n), s in speeds.items() if label.startswith("torch") and n in thread_counts]
    return [max(in_round) for in_round in zip(*runs, strict=True)]


def show_ratios(what: str, ratios: list[float], note: str = "") -> None:
    """One printed line: min / median / max of a ratio over rounds, and each round's."""
    print(f"    {what}: {spread(ratios)} (per round: {per_round(ratios)}){note}")


def report_threads(speeds: dict, n: int, threads: list[int]) -> None:
    """The chars/s of every engine at n threads and the ratios numpy / PyTorch."""
    print(f"  {n} thread{'s' * (n > 1)}:")
    torches = [label for label, k in speeds if k == n and label.startswith("torch")]
    for label in ("numpy", *torches):
        print(f"    {label:14s} chars/s {spread(speeds[label, n]):>26s}   "
              + " ".join(f"{v:,.0f}" for v in speeds[label, n]))
    numpy_speed = speeds["numpy", n]
    for label in torches:
        show_ratios(f"numpy / {label}", quotients(numpy_speed, speeds[label, n]))
    if torches:
        show_ratios("headline, numpy / torch at its faster policy in each round",
                    quotients(numpy_speed, fastest_torch(speeds, {n})))
        fewer = {k for k in threads if k < n}
        if fewer:   # torch may run slower on more threads: compare with its best too
            counts = ", ".join(map(str, sorted(fewer | {n})))
            show_ratios(f"numpy / torch at its fastest of {counts} threads and policies in each "
                        "round", quotients(numpy_speed, fastest_torch(speeds, fewer | {n})))
    if ("matmuls", n) in speeds:
        floor = speeds["matmuls", n]
        print(f"    numpy's matmuls alone, replayed: chars/s {spread(floor)}; "
              f"{spread([100 * v for v in quotients(numpy_speed, floor)])} % of its step")
        if torches:
            show_ratios("numpy's matmuls alone / torch at its faster policy",
                        quotients(floor, fastest_torch(speeds, {n})),
                        " (the ratio numpy would reach if all but its matmuls were free)")


def report_walls(walls: dict[int, list[dict]]) -> None:
    """Wall times of the real training runs, and every run's best validation NLL."""
    for n, runs in walls.items():
        print(f"python -m app.train --model lstm --members 1 --jobs {n}, {len(runs)} runs: best "
              f"epoch's checkpoint written after {spread([w['to_best'] for w in runs])} s of "
              f"process wall time, exit after {spread([w['total'] for w in runs])} s\n"
              "  best validation NLL of each run: "
              + ", ".join(f"{w['val_nll']:.4f} (epoch {w['epoch']})" for w in runs))


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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if min(args.rounds, args.wall_runs, *args.threads) < 1:
        parser.error("--rounds, --wall-runs and --threads must be >= 1")

    with_torch = not args.no_torch and torch_installed()
    print(f"numpy {np.__version__}; machine reference: {REFERENCE_N}^3 float32 matmul on one thread")
    if not with_torch and not args.no_torch:
        print(f"PyTorch is not installed: numpy figures only. To compare: {TORCH_HINT}")
    print("numpy runs its BLAS on one thread, as app.train does; at 2 threads, a helper thread "
          "beside its time loops takes the local derivatives, part of the weight gradients and "
          "half of each Adam update (app.nn.recurrent.Workspace), as "
          "`python -m app.train --jobs 2` does for one model")
    print(f"one training step = forward + backward + clip + Adam + weight average, float32; "
          f"{args.rounds} round{'s' * (args.rounds > 1)} of one whole epoch per engine, each "
          f"engine in its own process, taking turns batch by batch with a "
          f"{SETTLE_SECONDS * 1000:.0f} ms pause after each turn\n")
    for kind in args.models:
        r = measure(kind, args.rounds, args.threads, with_torch)
        print(f"{kind}: {describe(r['cfg'])}; an epoch is {r['n_batches']} batches, "
              f"{r['n_tokens']:,} chars")
        for label, what in r["described"].items():
            if label.startswith("torch"):
                print(f"  {label}: {what}")
        print(f"  machine reference GFLOP/s (min / median / max): {spread(r['reference'])}; "
              f"two at once: x{spread(r['second_core'])} the throughput of one (per round: "
              f"{per_round(r['second_core'])})")
        for n in args.threads:
            report_threads(r["speeds"], n, args.threads)
        print()
    walls: dict[int, list[dict]] = {n: [] for n in args.threads}
    for run in range(0 if args.no_wall else args.wall_runs):
        for n in args.threads if run % 2 == 0 else reversed(args.threads):
            walls[n].append(time_to_best("lstm", n))
    if not args.no_wall:
        report_walls(walls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
