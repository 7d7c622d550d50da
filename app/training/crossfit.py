"""Cross-fitted ensembles: one member per fold, each early-stopped on its own fold, so that
together the members have seen every name, and the ensemble averages their distributions.

    python -m app.train --model lstm --members 7     # the default for lstm and rnn

Member i trains on the names outside fold i (``app.data.folds``, stratified by state for a CSV) and
stops early on fold i; all members share one vocabulary, read from every name. The ensemble's
validation figure is its members' out-of-fold NLL: each fold scored by the one member that never
saw it (a single member's quality; the average of all members is better, see ``app.cv``).
Members train in parallel processes (``--jobs``), one BLAS thread each; a member's checkpoint,
like a single run's, is written at each improvement, so ``--resume`` continues unfinished ones.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from app.data.corpus import (
    DataError,
    Vocabulary,
    data_sha256,
    length_bucketed_batches,
    read_corpus,
)
from app.data.folds import describe, kfold
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.ensemble import EnsembleLM
from app.training.config import TrainConfig
from app.training.trainer import EVAL_BATCH, Trainer, evaluate_nll

FINISHED = "finished"   # metrics flag of a member whose training ran to its end


def member_paths(run: Path, members: int) -> list[Path]:
    """Where the members of a run toward ``run`` keep their checkpoints."""
    folder = run.with_suffix(".members")
    return [folder / f"member{i + 1}.npz" for i in range(members)]


def folds_of(cfg: TrainConfig, data: Path):
    corpus = read_corpus(data)
    return corpus, kfold(corpus.names, cfg.members, cfg.seed, corpus.states)


def _check_resumable(member: Path) -> None:
    """Raise DataError, before any member trains, if a member file to resume cannot be read."""
    try:
        checkpoint.load(member).metadata["metrics"]
    except (checkpoint.CheckpointError, KeyError) as exc:
        raise DataError(f"--resume: {member}: {exc}; delete it and --resume trains that member "
                        f"again") from None


def _train_member(cfg: TrainConfig, data: Path, index: int, out: Path, quiet: bool) -> dict:
    """Train member ``index`` (in a worker process) unless it already finished."""
    from threadpoolctl import threadpool_limits

    if out.exists():
        metrics = checkpoint.load(out).metadata["metrics"]
        if metrics.get(FINISHED):
            return metrics
    corpus, folds = folds_of(cfg, data)
    vocab = Vocabulary.from_names(corpus.names)
    trainer = Trainer(replace(cfg, seed=cfg.seed + index), data, out, quiet=quiet,
                      split=folds[index], vocab=vocab, label=f"member {index + 1}",
                      resume_from=out if out.exists() else None)
    with threadpool_limits(limits=1, user_api="blas"):
        trainer.run()
    saved = checkpoint.load(out)
    saved.metadata["metrics"][FINISHED] = True
    checkpoint.save(out, saved)
    return saved.metadata["metrics"]


def train(cfg: TrainConfig, data: Path, run: Path, jobs: int = 1, resume: bool = False,
          quiet: bool = False, log=print) -> dict:
    """Train every member, then write the ensemble to ``run``; returns its metrics."""
    paths = member_paths(run, cfg.members)
    for path in paths:
        if not resume:
            path.unlink(missing_ok=True)
        elif path.exists():
            _check_resumable(path)
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")   # fresh workers: no inherited BLAS threads
    with ProcessPoolExecutor(max_workers=min(jobs, cfg.members), mp_context=context) as pool:
        metrics = list(pool.map(_train_member, [cfg] * cfg.members, [data] * cfg.members,
                                range(cfg.members), paths, [quiet] * cfg.members))
    wall = time.perf_counter() - started
    corpus, folds = folds_of(cfg, data)
    members = [load_model(path) for path in paths]
    oof = out_of_fold_nll(members, oof_batches(members[0].vocab, corpus, folds, members[0]))
    summary = {
        "val_nll": oof,
        "oof_nll": oof,
        "member_val_nll": [m["val_nll"] for m in metrics],
        "best_epochs": [m["best_epoch"] for m in metrics],
        "train_seconds": round(sum(m["train_seconds"] for m in metrics), 2),
        "wall_seconds": round(wall, 2),
        "chars_per_second": round(float(np.mean([m["chars_per_second"] for m in metrics])), 1),
        "n_train_names": len(set(corpus.names)),
        "members": cfg.members,
    }
    first = members[0].metadata
    metadata = {
        "data_path": str(data), "data_sha256": data_sha256(corpus.names),
        "split": describe(cfg.members, cfg.seed, corpus.states is not None),
        "train_config": asdict(cfg), "metrics": summary,
        "history": first["history"],
        "member_histories": [m.metadata["history"] for m in members],
        **{k: first[k] for k in ("condition", "conditions", "condition_codes",
                                 "condition_counts") if k in first},
    }
    ensemble = EnsembleLM(members, metadata=metadata)
    checkpoint.save(run, ensemble.checkpoint(metadata))
    log(f"ensemble of {cfg.members}: out-of-fold NLL {oof:.4f} (members "
        + ", ".join(f"{v:.4f}" for v in summary["member_val_nll"]) + f"); {wall:.1f} s")
    return summary


def oof_batches(vocab: Vocabulary, corpus, folds, model) -> list[list]:
    """Per fold, the batches of its held-out names (with their states for a conditioned model)."""
    conditions = getattr(model, "conditions", None)
    index = {state: c for c, state in enumerate(conditions or [])}
    out = []
    for split in folds:
        keep = [i for i in split.val_index if not vocab.unknown(corpus.names[i])]
        cond = [index[corpus.states[i]] for i in keep] if conditions else None
        out.append(length_bucketed_batches([vocab.encode(corpus.names[i]) for i in keep],
                                           EVAL_BATCH, cond=cond))
    return out


def out_of_fold_nll(members: list, batches: list[list]) -> float:
    """NLL per token of every fold under the one member that never saw it."""
    total = sum(evaluate_nll(m, b) * sum(x.n_tokens for x in b)
                for m, b in zip(members, batches, strict=True))
    return total / sum(x.n_tokens for b in batches for x in b)
