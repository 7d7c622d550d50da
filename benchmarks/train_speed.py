"""Training throughput of the numpy RNN and LSTM, against PyTorch on the same batches.

    python benchmarks/train_speed.py [--batches 20] [--repeats 5]

For the default RNN and LSTM configurations of ``app.train`` (``TrainConfig`` + ``KIND_DEFAULTS``,
so it follows the tuning), times forward + backward + clipping + optimiser step in float32 on the
first batches of a training epoch (length-bucketed, as in training), after a warm-up, and prints
the median chars/s over several repeats. When PyTorch is importable the same model runs on the
same batches (same sizes, dropout, masked cross-entropy, optimiser, 2 threads) and the
numpy/PyTorch ratio is printed. PyTorch is not a dependency of the product; to compare, install
its CPU build (a wheel on this machine's disk):

    pip install torch==2.13.0

Then, for each committed checkpoint in models/: its recorded training time, best epoch and
validation NLL, the time to reach the best epoch (the LSTM's target is 90 s), and the mean length
of 2,000 names sampled at temperature 1.0 against the mean length of the real names.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: make `app` importable
    sys.path.insert(0, str(ROOT))

from app import network  # noqa: E402
from app.checkpoint import CheckpointError  # noqa: E402
from app.corpus import DEFAULT_NAMES, length_bucketed_batches, read_names  # noqa: E402
from app.lm import load_model  # noqa: E402
from app.optim import clip_global_norm  # noqa: E402
from app.sampling import MAX_LENGTH_LIMIT, draw  # noqa: E402
from app.train import MODELS_DIR, build_parser, resolve_config  # noqa: E402
from app.trainer import Trainer  # noqa: E402

KINDS = ("rnn", "lstm")
WARMUP_BATCHES = 3
LSTM_TARGET_SECONDS = 90.0
SAMPLES = 2000
TORCH_THREADS = 2
TORCH_HINT = "pip install torch==2.13.0"


def default_trainer(kind: str) -> Trainer:
    """A trainer exactly as `python -m app.train --model KIND` builds it (nothing is written)."""
    cfg = resolve_config(build_parser().parse_args(["--model", kind]))
    out = Path(tempfile.gettempdir()) / f"toponimo-bench-{kind}.npz"  # never written: no run()
    return Trainer(cfg, DEFAULT_NAMES, out, quiet=True)


def describe(cfg) -> str:
    inputs = f"embed {cfg.embed}" if cfg.embed else "one-hot"
    return (f"{cfg.layers}x{cfg.hidden}, {inputs}, dropout {cfg.dropout}, batch {cfg.batch_size}, "
            f"{cfg.optimizer} lr {cfg.lr}, clip {cfg.clip}, wd {cfg.weight_decay}")


# --- numpy -------------------------------------------------------------------------------------

class NumpyRun:
    """The training step of app.train, on its own model and optimiser, with n BLAS threads."""

    def __init__(self, trainer: Trainer, norm: float, blas_threads: int):
        self.cfg, self.model, self.optimizer = trainer.cfg, trainer.model, trainer.optimizer
        self.norm, self.blas_threads = norm, blas_threads
        self.rng = np.random.default_rng(0)  # dropout masks, as in training

    def run(self, batches) -> None:
        with threadpool_limits(limits=self.blas_threads, user_api="blas"):
            for batch in batches:
                _, grads, _ = network.loss_and_grads(self.model.config, self.model.params, batch,
                                                     norm=self.norm, rng=self.rng)
                clip_global_norm(grads, self.cfg.clip)
                self.optimizer.step(self.model.params, grads)


# --- PyTorch (optional) ------------------------------------------------------------------------

def import_torch():
    """torch, or None when it is not installed."""
    # idle OpenMP threads must sleep, not spin: on shared cores spinning makes torch 10-60x slower
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(TORCH_THREADS)
    return torch


class TorchRun:
    """The same model, loss and optimiser in PyTorch: same sizes, dropout places and batches."""

    def __init__(self, torch, trainer: Trainer, norm: float):
        nn = torch.nn
        self.torch, self.cfg, self.norm = torch, trainer.cfg, norm
        config = trainer.model.config
        if config.conditions:
            raise ValueError("the PyTorch comparison does not model conditioned networks")
        torch.manual_seed(0)
        V, H, E = config.vocab_size, config.hidden, config.embed
        self.embed = nn.Embedding(V, E) if E else None
        cell = nn.LSTM if config.kind == "lstm" else nn.RNN  # nn.RNN is tanh, like app.rnn
        # numpy drops out each layer's input (when embedded) and output; nn.LSTM's own dropout
        # covers the outputs between layers, the two Dropout modules the rest
        self.rnn = cell(E or V, H, num_layers=config.layers,
                        dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(H, V)
        self.vocab_size, self.one_hot = V, not E
        modules = [m for m in (self.embed, self.rnn, self.out) if m is not None]
        self.params = params = [p for m in modules for p in m.parameters()]
        if self.cfg.optimizer == "adagrad":
            self.optimizer = torch.optim.Adagrad(params, lr=self.cfg.lr)
        else:  # decoupled decay on matrices only, like app.optim.Adam
            groups = [{"params": [p for p in params if p.ndim >= 2],
                       "weight_decay": self.cfg.weight_decay},
                      {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
            self.optimizer = torch.optim.AdamW(groups, lr=self.cfg.lr)

    def convert(self, batch):
        t = self.torch
        return (t.from_numpy(batch.inputs), t.from_numpy(batch.targets).reshape(-1),
                t.from_numpy(batch.mask.astype(np.float32)).reshape(-1))

    def run(self, batches) -> None:
        for batch in batches:
            self.step(*batch)

    def step(self, inputs, targets, mask) -> None:
        torch, F = self.torch, self.torch.nn.functional
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


# --- timing ------------------------------------------------------------------------------------

def measure(kind: str, n_batches: int, repeats: int, blas_threads: list[int], torch) -> dict:
    """chars/s of each engine over repeats, interleaved so that load drift hits all of them."""
    trainer = default_trainer(kind)
    cfg, encoded = trainer.cfg, trainer.train_encoded
    # the loss normaliser of app.train: mean tokens per batch over an epoch
    norm = sum(len(ids) + 1 for ids in encoded) / math.ceil(len(encoded) / cfg.batch_size)
    # the first batches of training's epoch 1: shuffled buckets, so a mix of name lengths
    epoch = length_bucketed_batches(encoded, cfg.batch_size, np.random.default_rng([cfg.seed, 1]))
    warmup, timed = epoch[:WARMUP_BATCHES], epoch[WARMUP_BATCHES:WARMUP_BATCHES + n_batches]
    n_tokens = sum(b.n_tokens for b in timed)
    engines = {}  # label -> (engine, warm-up batches, timed batches)
    for n in blas_threads:
        label = f"numpy, BLAS {n} thread" + ("s" if n > 1 else "")
        engines[label] = (NumpyRun(default_trainer(kind), norm, n), warmup, timed)
    if torch is not None:
        tr = TorchRun(torch, trainer, norm)
        engines[f"torch, {TORCH_THREADS} threads"] = (
            tr, [tr.convert(b) for b in warmup], [tr.convert(b) for b in timed])
    for engine, warm, _ in engines.values():
        engine.run(warm)
    speeds: dict[str, list[float]] = {label: [] for label in engines}
    for _ in range(repeats):
        for label, (engine, _, batches) in engines.items():
            started = time.perf_counter()
            engine.run(batches)  # CPU only: every op has finished when run returns
            speeds[label].append(n_tokens / (time.perf_counter() - started))
    steps = [b.inputs.shape[0] for b in timed]
    return {"kind": kind, "cfg": cfg, "n_tokens": n_tokens, "n_batches": len(timed),
            "steps": (min(steps), max(steps)),
            "padding": 1 - n_tokens / sum(b.mask.size for b in timed), "speeds": speeds}


# --- committed checkpoints ---------------------------------------------------------------------

def checkpoint_report(path: Path, n_samples: int, seed: int) -> dict:
    model = load_model(path)
    metrics = model.metadata.get("metrics", {})
    history = model.metadata.get("history", [])
    best = metrics.get("best_epoch")
    to_best = (sum(r["seconds"] for r in history if r["epoch"] <= best)
               if best and history else None)
    names, _ = draw(model, n_samples, "", MAX_LENGTH_LIMIT, 1.0, None,
                    np.random.default_rng(seed))
    finished = [len(n) for n in names if n is not None]
    return {"kind": model.kind, "train_seconds": metrics.get("train_seconds"), "best_epoch": best,
            "val_nll": metrics.get("val_nll"), "to_best": to_best,
            "mean_length": float(np.mean(finished)) if finished else math.nan,
            "unfinished": len(names) - len(finished)}


def cell(value, spec: str, width: int) -> str:
    """A right-aligned table cell; '-' when the value is unknown."""
    return ("-" if value is None else format(value, spec)).rjust(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/train_speed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20,
                        help=f"timed batches per repeat, after {WARMUP_BATCHES} warm-up ones "
                             "(default: 20)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats; the median is reported (default: 5)")
    parser.add_argument("--models", choices=[*KINDS, "all"], default="all",
                        help="which default configurations to time (default: all)")
    parser.add_argument("--blas-threads", type=int, nargs="+",
                        help="numpy BLAS thread counts to time (default: the library default, "
                             "as app.train uses today, and 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--samples", type=int, default=SAMPLES,
                        help=f"names sampled per checkpoint for the length check (default: {SAMPLES})")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR,
                        help="where the committed checkpoints are (default: models/)")
    args = parser.parse_args(argv)
    if min(args.batches, args.repeats, args.samples, *(args.blas_threads or [1])) < 1:
        parser.error("--batches, --repeats, --samples and --blas-threads must be >= 1")

    torch = None if args.no_torch else import_torch()
    blas = sorted((i for i in threadpool_info() if i["user_api"] == "blas"),
                  key=lambda i: "numpy" not in i["filepath"])  # numpy's own BLAS first
    default_threads = blas[0]["num_threads"] if blas else 1
    blas_threads = args.blas_threads or sorted({default_threads, 1}, reverse=True)
    print(f"numpy {np.__version__} ({blas[0]['internal_api'] if blas else 'unknown BLAS'}, "
          f"{default_threads} threads by default)")
    if torch is not None:
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads, "
              f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    elif not args.no_torch:
        print(f"PyTorch is not installed: numpy figures only. To compare: {TORCH_HINT}")
    print(f"one training step = forward + backward + clip + optimiser step, float32; "
          f"{args.batches} batches after {WARMUP_BATCHES} warm-up, median of {args.repeats}\n")

    kinds = KINDS if args.models == "all" else (args.models,)
    results = [measure(kind, args.batches, args.repeats, blas_threads, torch) for kind in kinds]
    header = f"{'model':6s} {'engine':24s} {'chars/s':>9s} {'vs torch':>9s}   repeats"
    print(header)
    print("-" * (len(header) + 30))
    for r in results:
        medians = {label: statistics.median(s) for label, s in r["speeds"].items()}
        reference = next((m for label, m in medians.items() if label.startswith("torch")), None)
        for label, speeds in r["speeds"].items():
            ratio = medians[label] / reference if reference else None
            print(f"{r['kind']:6s} {label:24s} {cell(medians[label], ',.0f', 9)} "
                  f"{cell(ratio, '.2f', 9)}   " + " ".join(f"{s:,.0f}" for s in speeds))
    print()
    for r in results:
        lo, hi = r["steps"]
        print(f"{r['kind']}: {describe(r['cfg'])}; {r['n_batches']} batches of {r['n_tokens']:,} "
              f"chars, {lo}-{hi} time steps, {r['padding']:.0%} padding")

    real = read_names(DEFAULT_NAMES)
    real_mean = float(np.mean([len(n) for n in real]))
    print(f"\ncommitted checkpoints in {args.models_dir}; {args.samples:,} samples each at T=1.0; "
          f"real names average {real_mean:.2f} chars")
    header = (f"{'file':10s} {'val NLL':>8s} {'best ep':>8s} {'train s':>8s} {'to best s':>10s} "
              f"{'<= 90 s':>8s} {'mean len':>9s}")
    print(header)
    print("-" * len(header))
    found = False
    for kind in ("lstm", "rnn"):
        path = args.models_dir / f"{kind}.npz"
        if not path.exists():
            continue
        found = True
        try:
            c = checkpoint_report(path, args.samples, seed=0)
        except CheckpointError as exc:
            print(f"{path.name:10s} cannot load: {exc}")
            continue
        target = ""
        if kind == "lstm" and c["to_best"] is not None:
            target = "yes" if c["to_best"] <= LSTM_TARGET_SECONDS else "no"
        print(f"{path.name:10s} {cell(c['val_nll'], '.4f', 8)} {cell(c['best_epoch'], 'd', 8)} "
              f"{cell(c['train_seconds'], '.1f', 8)} {cell(c['to_best'], '.1f', 10)} "
              f"{target:>8s} {cell(c['mean_length'], '.2f', 9)}"
              + (f"  ({c['unfinished']} hit {MAX_LENGTH_LIMIT} chars)" if c["unfinished"] else ""))
    if not found:
        print(f"(no lstm.npz or rnn.npz in {args.models_dir} yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
