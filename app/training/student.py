"""The served lstm: one network distilled from the mezcla of a cross-fitted ensemble and an n-gram.

    python -m app.train --model lstm        # ensemble -> n-gram -> gated mezcla -> student
    python -m app.distill --teacher models/mezcla.npz --out models/alumno.npz   # any teacher

Cross-validation (``python -m app.cv``, recipe ``alumno``) found a student of the mezcla better
on unseen names than the ensemble it descends from, at the sampling cost of one LSTM. This runs
that recipe on every name. Each stage is kept in the run's teacher folder
(``models/.runs/lstm.teacher/``); when the student is promoted, its ensemble goes on to
``models/teachers/lstm-<digest>.npz`` (named after its contents, moved there before the student
is), where ``python -m app.mixture --neural models/lstm.npz`` finds it: a mezcla is fitted on
out-of-fold predictions, and only the ensemble has those. The student keeps ``app.distill``'s
defaults whatever the flags given for the ensemble.

The student learned from a teacher that saw every real name, so no real name is left to compare
it with the served model. It replaces the served one (the recipe's, or ``app.distill``'s
``--out``) when both hold:
1. its teacher is no worse on held-out names than the served model's teacher (or than the served
   model itself, when that learned from none), on the same folds: a worse recipe cannot win by
   imitating itself well;
2. it is closer to its teacher than the served model is (cross-entropy, nats per character) on
   fresh teacher samples that no model here trained on, nor the new student stopped on. Rule 1
   is the one that guards quality; rule 2 keeps the served file when the run is a repeat.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from app.data.corpus import length_bucketed_batches, read_corpus
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.forced import forced_log_probs
from app.training import crossfit, markov_fit, mixture_fit, promote
from app.training.config import TrainConfig
from app.training.distillation import (
    STUDENT_DEFAULTS,
    Draws,
    SoftNames,
    fresh_soft_names,
    load_teacher,
    resolve_draws,
    student_data,
    train_student,
)
from app.training.trainer import EVAL_BATCH

TEACHERS_FOLDER = "teachers"   # beside the served checkpoints: the ensembles students came from
DRAWS = Draws()   # app.distill's defaults: the alumno recipe of app.cv
# a student and the served model are scored on the same fresh samples: the same names and
# vocabulary are enough (their splits differ by construction)
STUDENT_COMPARABLE = ("data_sha256", "vocab", "conditions")


def teacher_stages(run: Path) -> dict[str, Path]:
    """Where a run toward a student keeps its teacher's stages."""
    folder = run.with_suffix(".teacher")
    return {stage: folder / f"{stage}.npz" for stage in ("ensemble", "markov", "mezcla")}


def ensemble_path(served: Path, ensemble: Path) -> Path:
    """Where the ensemble file ``ensemble`` goes beside the served student ``served``: named
    after its contents, so that a served student always finds its own ensemble."""
    digest = hashlib.sha256(ensemble.read_bytes()).hexdigest()[:12]
    return served.parent / TEACHERS_FOLDER / f"{served.stem}-{digest}.npz"


def teacher_ensemble(student_path: Path, student) -> Path | None:
    """The cross-fitted ensemble a served student descends from, or None for any other model."""
    relative = student.metadata.get("distillation", {}).get("ensemble")
    return student_path.parent / relative if relative else None


def student_config(cfg: TrainConfig) -> TrainConfig:
    """The student's own configuration: app.distill's defaults, the recipe's seed."""
    return TrainConfig(**{**STUDENT_DEFAULTS, "model": "lstm", "members": 1, "seed": cfg.seed})


def cross_entropy(model, soft_names: SoftNames) -> float:
    """Nats per character between a teacher's distributions and ``model``'s on the same names."""
    total, tokens = 0.0, 0
    for batch in length_bucketed_batches(soft_names.encoded, EVAL_BATCH, soft=soft_names.soft):
        log_p = forced_log_probs(model, batch)                       # (T, B, V)
        total -= float(np.einsum("tbv,tbv->", batch.soft, log_p))    # soft is 0 on padding
        tokens += batch.n_tokens
    return total / tokens


def train_teacher(cfg: TrainConfig, data: Path, run: Path, jobs: int, resume: bool,
                  quiet: bool, log=print) -> Path:
    """The ensemble, the n-gram and their gated mezcla (no product term), each into the run's
    teacher folder; returns the mezcla's path (its held-out NLL is in its metrics, ``val_nll``)."""
    stages = teacher_stages(run)
    crossfit.train(cfg, data, stages["ensemble"], jobs=jobs, resume=resume, quiet=quiet, log=log)
    counting = markov_fit.MarkovTrainConfig(val_fraction=cfg.val_fraction, seed=cfg.seed,
                                            members=cfg.members, repeats=cfg.repeats)
    markov_fit.train(counting, data, stages["markov"], log=log)
    # the gated average only: the product term lowers the mezcla's NLL but makes it copy more
    # real names, and a student copies what its teacher copies (5-fold CV: 1.4484 with it, 1.4518
    # without; 93.7 % against 94.9 % new names at T = 1)
    mezcla, _ = mixture_fit.build(load_model(stages["ensemble"]),
                                  load_model(stages["markov"]), data, log=log, product=False)
    checkpoint.save(stages["mezcla"], mezcla.checkpoint(mezcla.metadata))
    return stages["mezcla"]


def teacher_figure(metadata: dict) -> tuple[float, str]:
    """The held-out NLL of the model behind a checkpoint, and its folds: its teacher's for a
    student, its own for any other model. Raises KeyError if it has none."""
    distilled = metadata.get("distillation")
    if distilled is not None:
        return distilled["teacher_val_nll"], distilled["teacher_split"]
    return metadata["metrics"]["val_nll"], metadata["split"]


def teacher_record(teacher) -> dict:
    """What a student's metadata keeps of its teacher for rule 1: the teacher's own held-out
    NLL and folds; nothing for a teacher that is itself a student or records no such figure."""
    if "distillation" in teacher.metadata:
        return {}
    try:
        nll, split = teacher_figure(teacher.metadata)
    except KeyError:
        return {}
    return {"teacher_val_nll": nll, "teacher_split": split}


def _distil(cfg: TrainConfig, teacher, teacher_path: Path, data: Path, corpus, run: Path,
            draws: Draws, repeats: bool, extra: dict, quiet: bool, log,
            threads: int = 1) -> SoftNames:
    """Train a student of ``teacher`` on ``corpus`` (read from ``data``) into ``run``, its
    summary with ``extra``; returns the fresh teacher samples rule 2 judges it on, new to it
    (not the ones it stopped on)."""
    train_set, fresh, summary = student_data(teacher, corpus.names, draws, cfg.seed, log,
                                             corpus.states, repeats)
    seen = {teacher.vocab.decode(ids) for ids in train_set.encoded + fresh.encoded}
    judge, _ = fresh_soft_names(teacher, draws, seen, np.random.default_rng([cfg.seed, 3]))
    summary.update(teacher_record(teacher), **extra)
    run.unlink(missing_ok=True)   # an earlier student toward the same file, not promoted
    best = train_student(cfg, teacher, teacher_path, data, corpus.names, run,
                         train_set, fresh, summary, quiet, log, threads=threads)
    log(f"student: cross-entropy to its teacher {best['val_nll']:.4f} nats/char on fresh "
        f"samples at epoch {best['epoch']}")
    return judge


def distill(cfg: TrainConfig, teacher_path: Path, data: Path, out: Path, draws: Draws,
            force: bool = False, quiet: bool = False, log=print) -> promote.Outcome:
    """Sample any teacher, train a student with ``cfg`` toward ``out`` (``python -m
    app.distill``) and promote it by the rules of this module's docstring."""
    run = promote.run_path(out)
    teacher, corpus = load_teacher(teacher_path, data)
    judge = _distil(cfg, teacher, teacher_path, data, corpus, run, draws, cfg.repeats, {},
                    quiet, log)
    return promote_student(run, out, judge, force)


def train(cfg: TrainConfig, data: Path, out: Path, jobs: int = 1, resume: bool = False,
          force: bool = False, quiet: bool = False, log=print) -> promote.Outcome:
    """Train the whole recipe toward the served student ``out``; promote it if it wins."""
    run = promote.run_path(out)
    teacher_path = train_teacher(cfg, data, run, jobs, resume, quiet, log)
    teacher, stages = load_model(teacher_path), teacher_stages(run)
    draws = resolve_draws(DRAWS, teacher)
    ensemble = ensemble_path(out, stages["ensemble"])
    config = student_config(cfg)
    log("student: " + ", ".join(f"{k}={v}" for k, v in {**asdict(config), **asdict(draws)}.items()
                                if k in (*STUDENT_DEFAULTS, *asdict(draws))))
    judge = _distil(config, teacher, teacher_path, data, read_corpus(data), run, draws,
                    cfg.repeats, {"ensemble": os.path.relpath(ensemble, out.parent)},
                    quiet, log, threads=jobs)
    add_teacher_cost(run, teacher.metadata["metrics"]["train_seconds"])
    # the ensemble goes first: whichever file is served then, the ensemble it names exists
    ensemble.parent.mkdir(exist_ok=True)
    os.replace(stages["ensemble"], ensemble)
    outcome = promote_student(run, out, judge, force)
    if not outcome.replaced:
        os.replace(ensemble, stages["ensemble"])   # nothing served names it
        return outcome
    for stale in ensemble.parent.glob(f"{out.stem}-*.npz"):   # ensembles of former students
        if stale != ensemble:
            stale.unlink()
    return outcome


def add_teacher_cost(path: Path, teacher_seconds: float) -> None:
    """Make a student checkpoint's training time the whole recipe's, its teacher's included
    (what /comparar shows as the cost of the model); its own stays as ``student_seconds``."""
    saved = checkpoint.load(path)
    metrics = saved.metadata["metrics"]
    metrics["student_seconds"] = metrics["train_seconds"]
    metrics["train_seconds"] = round(metrics["train_seconds"] + teacher_seconds, 2)
    checkpoint.save(path, saved)


def promote_student(run: Path, out: Path, judge: SoftNames, force: bool) -> promote.Outcome:
    """The two rules of this module's docstring for the student in ``run``, then
    promote.replace_if_better on the second: cross-entropy to the new teacher on ``judge``."""
    keep = f"the run is in {run}; --force replaces {out} with it"
    if out.exists() and not force:
        try:
            served, candidate = checkpoint.load(out).metadata, checkpoint.load(run).metadata
        except checkpoint.CheckpointError as exc:
            return promote.Outcome(False, f"kept {out}: it cannot be read to compare ({exc}); {keep}")
        differ = [key for key in STUDENT_COMPARABLE if served.get(key) != candidate.get(key)]
        if differ:
            return promote.Outcome(False, f"kept {out}: it was built on other {', '.join(differ)}, "
                                          f"so the two cannot be compared; {keep}")
        try:
            served_nll, served_split = teacher_figure(served)
        except KeyError:
            return promote.Outcome(False, f"kept {out}: it records no held-out NLL to compare "
                                          f"this run's teacher with; {keep}")
        try:
            teacher_nll, teacher_split = teacher_figure(candidate)
        except KeyError:
            return promote.Outcome(False, f"kept {out}: this run's teacher records no held-out "
                                          f"NLL to compare it with; {keep}")
        behind = "its teacher" if "distillation" in served else "it"
        if served_split != teacher_split:
            return promote.Outcome(False, f"kept {out}: {behind} was measured on other folds "
                                          f"than this run's teacher; {keep}")
        if served_nll < teacher_nll:
            return promote.Outcome(False, f"kept {out}: {behind} scores {served_nll:.4f} on "
                                          f"held-out names, this run's teacher {teacher_nll:.4f}; "
                                          f"{keep}")
    return promote.replace_if_better(run, out, lambda path: cross_entropy(load_model(path), judge),
                                     force=force, comparable=STUDENT_COMPARABLE,
                                     measure="cross-entropy to this run's teacher on its fresh samples")
