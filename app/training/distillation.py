"""Distillation: one student LSTM trained on a teacher's next-character distributions.

The teacher (any model: an ensemble, a mixture, an n-gram) is slow to sample or large; the
student is one network, as cheap as a single LSTM. Its training names are the real names plus
names drawn from the teacher, and its target at every step is the teacher's whole
next-character distribution there (with a hard weight, mixed on the real names with the
character actually written). Teacher samples come without limit, so the student can afford
more capacity than a network fitted on the real names alone.

Early stopping needs names neither the student nor the teacher trained on, and the teacher has
seen every real name. So the student is validated on fresh teacher samples, with real names and
the student's own training samples removed from them: its cross-entropy to the teacher there.
Held-out real names judge the student in ``python -m app.cv``. ``app.training.student`` runs it
and decides whether the student replaces the served model (``python -m app.distill``, and the
student of ``python -m app.train --model lstm``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.data.corpus import (
    DataError,
    Split,
    data_sha256,
    learned_rows,
    length_bucketed_batches,
    make_batch,
    read_corpus,
)
from app.flags import Range
from app.generation.drawing import draw
from app.generation.sampling import MAX_LENGTH_DEFAULT, ROUND_MAX
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from app.lm.forced import forced_log_probs
from app.training.config import TrainConfig
from app.training.mixture_fit import check_cross_fitted, is_cross_fitted, out_of_fold_mixtures
from app.training.trainer import EVAL_BATCH, Trainer

SAMPLES_RANGE = Range(0, 1_000_000)
VAL_SAMPLES_RANGE = Range(100, 100_000)
TEMPERATURE_RANGE = Range(0.05, 5.0)
HARD_WEIGHT_RANGE = Range(0.0, 1.0)
TEACHER_BATCH = 256      # names per teacher pass, of similar lengths (sorted): little padding
STUDENT_FLAGS = ("hidden", "layers", "embed", "dropout", "epochs", "batch_size", "lr", "ema",
                 "patience", "seed")
# the student's own defaults (README, paired 5-fold CV): with soft targets and teacher samples it
# needs far less dropout than python -m app.train, and gains from width; 1x256 learns 0.009 more
# but samples at 1.2-1.7x the cost of 1x192, which is what the student is served for
STUDENT_DEFAULTS = {"hidden": 192, "dropout": 0.1, "epochs": 30}


@dataclass(frozen=True)
class Draws:
    """What the student learns from besides the real names (``python -m app.distill``'s flags)."""

    samples: int = 10_000          # teacher samples to train on
    val_samples: int = 2_000       # fresh teacher samples drawn to early-stop on
    temperature: float = 1.0       # of the teacher's samples
    # on the real names, weight of the written character: 0.3 beat 0 in all 5 folds of app.cv
    hard_weight: float = 0.3
    # on the real names, the teacher without the fold holding each name (a mezcla of a
    # cross-fitted ensemble): what it would say of a name it never saw, not what it memorised.
    # None: whenever the teacher allows it (the served recipe's does), as app.cv chose
    out_of_fold: bool | None = None
    drop_copies: bool = False      # leave out teacher samples that are real names


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


def out_of_fold_distributions(teacher, names: list[str], states=None) -> dict[str, np.ndarray]:
    """Each real name's (len + 1, V) distributions under the teacher without the fold that
    holds it (``mixture_fit.out_of_fold_mixtures``)."""
    vocab, out = teacher.vocab, {}
    for fold_teacher, split in out_of_fold_mixtures(teacher, names, states):
        held_out = sorted({n for n in split.val if not vocab.unknown(n)})
        soft = teacher_distributions(fold_teacher, [vocab.encode(n) for n in held_out])
        out.update(zip(held_out, soft, strict=True))
    return out


def resolve_draws(draws: Draws, teacher) -> Draws:
    """``draws`` with ``out_of_fold`` decided for this teacher: when None, out of fold if the
    teacher is a cross-fitted mezcla. Raises DataError if asked for a teacher that has no folds."""
    if draws.out_of_fold is None:
        return replace(draws, out_of_fold=is_cross_fitted(teacher))
    if draws.out_of_fold:
        check_cross_fitted(teacher)
    return draws


def student_data(teacher, names: list[str], draws: Draws, seed: int, log=print,
                 states=None, repeats: bool = False) -> tuple[SoftNames, SoftNames, dict]:
    """The student's training set (real names + teacher samples, soft targets), its validation
    set (fresh teacher samples neither trained on) and a summary of both. ``states``: the
    names' states, when the teacher's folds were stratified by them. A name several
    municipalities share is learned once, unless ``repeats`` (as the teacher's models)."""
    draws = resolve_draws(draws, teacher)   # before minutes of sampling
    vocab = teacher.vocab
    real = [names[i] for i in learned_rows(names, repeats) if not vocab.unknown(names[i])]
    drawn = teacher_samples(teacher, draws.samples, draws.temperature,
                            np.random.default_rng([seed, 1]))
    real_set = set(real)
    copies = sum(n in real_set for n in drawn)
    if draws.drop_copies:
        drawn = [n for n in drawn if n not in real_set]
    val, asked = fresh_soft_names(teacher, draws, real_set | set(drawn),
                                  np.random.default_rng([seed, 2]))
    real_ids = [vocab.encode(n) for n in real]
    drawn_ids = [vocab.encode(n) for n in drawn]
    log(f"teacher: {len(real)} real names, {len(drawn)} samples to train on, "
        f"{len(val.encoded)} of {asked} fresh samples to validate on (the rest are real or "
        f"training names)")
    if draws.out_of_fold:
        by_name = out_of_fold_distributions(teacher, names, states)
        soft_real = [by_name[n] for n in real]
    else:
        soft_real = teacher_distributions(teacher, real_ids)
    soft_real = with_hard_targets(soft_real, real_ids, draws.hard_weight)
    train = SoftNames(real_ids + drawn_ids, soft_real + teacher_distributions(teacher, drawn_ids))
    summary = {"real_names": len(real), "samples": len(drawn), "samples_asked": draws.samples,
               "val_samples": len(val.encoded), "val_samples_asked": draws.val_samples,
               "samples_real": copies, "temperature": draws.temperature,
               "hard_weight": draws.hard_weight, "out_of_fold": draws.out_of_fold,
               "drop_copies": draws.drop_copies}
    return train, val, summary


def fresh_soft_names(teacher, draws: Draws, exclude: set[str], rng) -> tuple[SoftNames, int]:
    """``draws.val_samples`` fresh teacher samples minus ``exclude`` (names a model here trained
    on), with the teacher's distributions along them; and how many were drawn."""
    fresh = teacher_samples(teacher, draws.val_samples, draws.temperature, rng)
    ids = [teacher.vocab.encode(n) for n in fresh if n not in exclude]
    return SoftNames(ids, teacher_distributions(teacher, ids)), len(fresh)


def load_teacher(teacher_path: Path, data: Path):
    """The teacher and the corpus it was trained on. Raises DataError."""
    try:
        teacher = load_model(teacher_path)
    except CheckpointError as exc:
        raise DataError(f"--teacher: {exc}") from None
    if getattr(teacher, "conditions", None):
        raise DataError(f"--teacher {teacher_path} is conditioned on the state; distillation "
                        f"takes an unconditioned teacher")
    corpus = read_corpus(data)
    if teacher.metadata.get("data_sha256") not in (None, data_sha256(corpus.names)):
        raise DataError(f"--data {data}: not the names the teacher {teacher_path} was trained on")
    return teacher, corpus


def train_student(cfg: TrainConfig, teacher, teacher_path: Path, data: Path, names: list[str],
                  out: Path, train: SoftNames, val: SoftNames, summary: dict,
                  quiet: bool = False, log=print, threads: int = 1) -> dict:
    """Train the student on ``train``, early-stopped on ``val``, into ``out`` (each improvement
    saved there, with the summary of its data); returns its best epoch. ``threads``: see
    ``Trainer``."""
    if not val.encoded:
        raise DataError("no fresh teacher sample is new to validate on; raise --val-samples")
    description = (f"distilled from {teacher_path.name} over {summary['real_names']} real names "
                   f"and {summary['samples']} teacher samples; validated on "
                   f"{summary['val_samples']} fresh teacher samples, seed {cfg.seed}")
    everything = Split(train=names, val=[], description=description,
                       train_index=list(range(len(names))), val_index=[])
    trainer = Trainer(cfg, data, out, quiet=quiet, split=everything, vocab=teacher.vocab,
                      threads=threads)
    trainer.train_encoded, trainer.train_soft = train.encoded, train.soft
    trainer.val_batches = length_bucketed_batches(val.encoded, EVAL_BATCH, soft=val.soft)
    trainer.n_val_names, trainer.val_skipped = len(val.encoded), 0
    trainer.extra_metadata = {"distillation": {
        **summary, "teacher": str(teacher_path), "teacher_kind": teacher.kind,
        "val_measure": "cross-entropy to the teacher on fresh teacher samples"}}
    log(f"student: {trainer.model.n_params:,} parameters; {len(train.encoded)} names to train on")
    return trainer.run()

