"""Distillation: one student LSTM trained on a teacher's next-character distributions.

    python -m app.distill --teacher models/mezcla.npz --data data/municipios.txt \
        --out models/alumno.npz --samples 10000 --hidden 256

The teacher (any model: an ensemble, a mixture, an n-gram) is slow to sample or large; the
student is one network, as cheap as a single LSTM. Its training names are the real names plus
``--samples`` names drawn from the teacher, and its target at every step is the teacher's whole
next-character distribution there (with ``--hard-weight``, mixed on the real names with the
character actually written). Teacher samples come without limit, so the student can afford
more capacity than a network fitted on the real names alone.

Early stopping needs names neither the student nor the teacher trained on, and the teacher has
seen every real name. So the student is validated on ``--val-samples`` fresh teacher samples,
with real names and the student's own training samples removed from them: its cross-entropy
to the teacher there. Held-out real names judge the student in ``python -m app.cv``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.data.corpus import (
    DEFAULT_NAMES,
    DataError,
    Split,
    data_sha256,
    length_bucketed_batches,
    make_batch,
    read_corpus,
)
from app.generation.drawing import draw
from app.generation.sampling import MAX_LENGTH_DEFAULT, ROUND_MAX
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from app.lm.forced import forced_log_probs
from app.training.config import RANGES, FlagError, TrainConfig, check_writable, flag, given_flags
from app.training.promote import run_path
from app.training.trainer import EVAL_BATCH, Trainer

SAMPLES_RANGE = (0, 1_000_000)
VAL_SAMPLES_RANGE = (100, 100_000)
TEMPERATURE_RANGE = (0.05, 5.0)
TEACHER_BATCH = 256      # names per teacher pass, of similar lengths (sorted): little padding
STUDENT_FLAGS = ("hidden", "layers", "embed", "dropout", "epochs", "batch_size", "lr", "ema",
                 "patience", "seed")
# the student's own defaults, best in paired CV on fold 1 (README): with soft targets and
# teacher samples it needs far less dropout, and gains from more width, than python -m app.train
STUDENT_DEFAULTS = {"hidden": 256, "dropout": 0.1, "epochs": 20}


@dataclass(frozen=True)
class SoftNames:
    """Encoded names and, for each, the (len + 1, V) next-character distribution to learn."""

    encoded: list[list[int]]
    soft: list


def teacher_distributions(teacher, encoded: list[list[int]]) -> list:
    """The teacher's next-character distribution at every step of every name: one
    (len + 1, V) float32 array per name, the last row the distribution of the end token's step."""
    out = [None] * len(encoded)
    by_length = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))   # little padding
    for start in range(0, len(encoded), TEACHER_BATCH):
        rows = by_length[start:start + TEACHER_BATCH]
        chunk = [encoded[i] for i in rows]
        probs = np.exp(forced_log_probs(teacher, make_batch(chunk))).astype(np.float32)  # (T, B, V)
        for b, (i, ids) in enumerate(zip(rows, chunk, strict=True)):
            out[i] = probs[: len(ids) + 1, b]
    return out


def teacher_samples(teacher, count: int, temperature: float, rng) -> list[str]:
    """``count`` raw draws from the teacher (no novelty filter); draws hitting the length cap
    are dropped."""
    names: list[str] = []
    for start in range(0, count, ROUND_MAX):
        drawn, _ = draw(teacher, min(ROUND_MAX, count - start), "", MAX_LENGTH_DEFAULT,
                        temperature, None, rng)
        names += [n for n in drawn if n]
    return names


def with_hard_targets(soft: list, encoded: list[list[int]], weight: float) -> list:
    """(1 - weight) * teacher + weight * the written character, per step of each name."""
    if weight == 0.0:
        return soft
    out = []
    for probs, ids in zip(soft, encoded, strict=True):
        one_hot = np.zeros_like(probs)
        one_hot[np.arange(len(ids) + 1), [*ids, 0]] = 1.0         # the end token last
        out.append((1.0 - weight) * probs + weight * one_hot)
    return out


def student_data(teacher, names: list[str], samples: int, val_samples: int,
                 temperature: float, hard_weight: float, seed: int,
                 log=print) -> tuple[SoftNames, SoftNames, dict]:
    """The student's training set (real names + teacher samples, soft targets), its validation
    set (fresh teacher samples neither trained on) and a summary of both."""
    vocab = teacher.vocab
    real = [n for n in names if not vocab.unknown(n)]
    drawn = teacher_samples(teacher, samples, temperature, np.random.default_rng([seed, 1]))
    seen = set(real) | set(drawn)
    fresh = teacher_samples(teacher, val_samples, temperature, np.random.default_rng([seed, 2]))
    val = [n for n in fresh if n not in seen]
    real_ids = [vocab.encode(n) for n in real]
    drawn_ids = [vocab.encode(n) for n in drawn]
    val_ids = [vocab.encode(n) for n in val]
    log(f"teacher: {len(real)} real names, {len(drawn)} samples to train on, {len(val)} of "
        f"{len(fresh)} fresh samples to validate on (the rest are real or training names)")
    soft_real = with_hard_targets(teacher_distributions(teacher, real_ids), real_ids, hard_weight)
    train = SoftNames(real_ids + drawn_ids, soft_real + teacher_distributions(teacher, drawn_ids))
    summary = {"real_names": len(real), "samples": len(drawn), "samples_asked": samples,
               "val_samples": len(val), "val_samples_asked": val_samples,
               "samples_real": sum(n in set(real) for n in drawn),
               "temperature": temperature, "hard_weight": hard_weight}
    return train, SoftNames(val_ids, teacher_distributions(teacher, val_ids)), summary


def load_teacher(teacher_path: Path, data: Path):
    """The teacher and the names it was trained on. Raises DataError."""
    try:
        teacher = load_model(teacher_path)
    except CheckpointError as exc:
        raise DataError(f"--teacher: {exc}") from None
    if getattr(teacher, "conditions", None):
        raise DataError(f"--teacher {teacher_path} is conditioned on the state; distillation "
                        f"takes an unconditioned teacher")
    names = read_corpus(data).names
    if teacher.metadata.get("data_sha256") not in (None, data_sha256(names)):
        raise DataError(f"--data {data}: not the names the teacher {teacher_path} was trained on")
    return teacher, names


def train_student(cfg: TrainConfig, teacher, teacher_path: Path, data: Path, names: list[str],
                  out: Path, train: SoftNames, val: SoftNames, summary: dict,
                  quiet: bool = False, log=print) -> dict:
    """Train the student on ``train``, early-stopped on ``val``, into ``out`` (each improvement
    saved there, with the summary of its data); returns its best epoch."""
    if not val.encoded:
        raise DataError("no fresh teacher sample is new to validate on; raise --val-samples")
    description = (f"distilled from {teacher_path.name} over {summary['real_names']} real names "
                   f"and {summary['samples']} teacher samples; validated on "
                   f"{summary['val_samples']} fresh teacher samples, seed {cfg.seed}")
    everything = Split(train=names, val=[], description=description,
                       train_index=list(range(len(names))), val_index=[])
    trainer = Trainer(cfg, data, out, quiet=quiet, split=everything, vocab=teacher.vocab)
    trainer.train_encoded, trainer.train_soft = train.encoded, train.soft
    trainer.val_batches = length_bucketed_batches(val.encoded, EVAL_BATCH, soft=val.soft)
    trainer.n_val_names, trainer.val_skipped = len(val.encoded), 0
    trainer.extra_metadata = {"distillation": {
        **summary, "teacher": str(teacher_path), "teacher_kind": teacher.kind,
        "val_measure": "cross-entropy to the teacher on fresh teacher samples"}}
    log(f"student: {trainer.model.n_params:,} parameters; {len(train.encoded)} names to train on")
    return trainer.run()


def distill(cfg: TrainConfig, teacher_path: Path, data: Path, out: Path, samples: int,
            val_samples: int, temperature: float, hard_weight: float, quiet: bool = False,
            log=print) -> dict:
    """Sample the teacher, then train the student into ``out``; returns its best epoch."""
    teacher, names = load_teacher(teacher_path, data)
    train, val, summary = student_data(teacher, names, samples, val_samples, temperature,
                                       hard_weight, cfg.seed, log)
    return train_student(cfg, teacher, teacher_path, data, names, out, train, val, summary,
                         quiet, log)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.distill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, required=True,
                   help="the model to imitate (any kind but a state-conditioned one)")
    p.add_argument("--data", type=Path,
                   help="the names the teacher was trained on (default: data/municipios.txt)")
    p.add_argument("--out", type=Path, required=True, help="where the student is written")
    p.add_argument("--samples", type=int, default=10_000,
                   help=f"teacher samples to train on besides the real names (in "
                        f"[{SAMPLES_RANGE[0]}, {SAMPLES_RANGE[1]}]; default: %(default)s)")
    p.add_argument("--val-samples", type=int, default=2_000,
                   help=f"fresh teacher samples drawn to early-stop on (in "
                        f"[{VAL_SAMPLES_RANGE[0]}, {VAL_SAMPLES_RANGE[1]}]; default: %(default)s)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help=f"temperature of the teacher's samples (in [{TEMPERATURE_RANGE[0]}, "
                        f"{TEMPERATURE_RANGE[1]}]; default: %(default)s)")
    p.add_argument("--hard-weight", type=float, default=0.0,
                   help="on the real names, weight of the written character against the "
                        "teacher's distribution (in [0, 1]; default: %(default)s)")
    defaults = TrainConfig()
    for name in STUDENT_FLAGS:
        default = STUDENT_DEFAULTS.get(name, getattr(defaults, name))
        p.add_argument(flag(name), type=type(getattr(defaults, name)),
                       help=f"student's {name.replace('_', ' ')} (in {RANGES[name]}; default: "
                            f"{default}" + ("" if name in STUDENT_DEFAULTS else
                                            ", as python -m app.train --model lstm") + ")")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check_args(args: argparse.Namespace) -> TrainConfig:
    """Every flag against its range, before anything is read; the student's configuration."""
    for name, value, (low, high) in (("--samples", args.samples, SAMPLES_RANGE),
                                     ("--val-samples", args.val_samples, VAL_SAMPLES_RANGE),
                                     ("--temperature", args.temperature, TEMPERATURE_RANGE),
                                     ("--hard-weight", args.hard_weight, (0.0, 1.0))):
        if not low <= value <= high:   # NaN fails too
            raise FlagError(f"{name} must be in [{low}, {high}], got {value}")
    student = given_flags(args)
    if not args.teacher.is_file():
        raise FlagError(f"--teacher {args.teacher}: no such file")
    check_writable(args.out, run_path(args.out))
    return TrainConfig(**{**STUDENT_DEFAULTS, **student, "model": "lstm", "members": 1})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = check_args(args)
    except FlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    run = run_path(args.out)   # written at each improvement, renamed once training ends
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            best = distill(cfg, args.teacher, args.data or DEFAULT_NAMES, run, args.samples,
                           args.val_samples, args.temperature, args.hard_weight, args.quiet)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the best student so far is in {run}; {args.out} unchanged",
              file=sys.stderr)
        return 130
    run.replace(args.out)
    print(f"student: cross-entropy to the teacher {best['val_nll']:.4f} nats/char on fresh "
          f"samples at epoch {best['epoch']}; saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
