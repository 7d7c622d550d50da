"""Train an RNN, LSTM or n-gram model on the municipality names; serve it only if it wins.

    python -m app.train --model lstm        # the served recipe: a student of the mezcla
    python -m app.train --model lstm --no-student      # the cross-fitted ensemble itself

Early stopping on validation NLL. Every improvement is written atomically to a run file
(models/.runs/rnn.npz for models/rnn.npz), never to the served checkpoint: Ctrl-C or a crash
leaves the best model so far there, and --resume continues it. When the run finishes, it
replaces --out only if it beats it on the same validation names (or with --force).

For lstm the served model is one network distilled from the mezcla of a cross-fitted ensemble
and an n-gram, all trained here (``app.training.student``): --resume keeps the ensemble's
finished members and trains the rest again, and two rules written there decide promotion.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from app.flags import FlagError
from app.paths import MODELS_DIR
from app.training.config import (
    build_parser,
    check_jobs,
    check_writable,
    given_flags,
    resolve_config,
    wants_student,
)

__all__ = ["MODELS_DIR", "build_parser", "main", "resolve_config"]


def _default_out(args: argparse.Namespace) -> Path:
    conditioned = args.condition not in (None, "none")
    return args.out or MODELS_DIR / f"{args.model}{'_estado' if conditioned else ''}.npz"


def _run(args: argparse.Namespace) -> int:
    # numpy and the models load here, not at import: Ctrl-C while they load is caught in main
    from app.data.corpus import DEFAULT_NAMES, DEFAULT_STATES_CSV, DataError
    from app.lm import checkpoint
    from app.training import promote

    out = _default_out(args)
    run = promote.run_path(out)
    try:
        given_flags(args)  # the ranges first: no folder is created for a refused command
        source = _resume_source(args, run, out) if args.resume else None
        jobs = check_jobs(args)
        check_writable(out, run)
        checkpoint.remove_stale_temps(out)  # left beside it by a save killed with -9
        if args.model == "markov":
            return _train_markov(args, out, run)
        cfg = resolve_config(args, _resumed_config(source) if source else None)
        data = args.data or (DEFAULT_STATES_CSV if cfg.condition != "none" else DEFAULT_NAMES)
        if cfg.student:
            return _train_student(args, cfg, data, out, run, jobs, resume=source is not None)
        if cfg.members > 1:
            return _train_ensemble(args, cfg, data, out, run, jobs, resume=source is not None)
        from app.training.trainer import Trainer, nll_scorer
        trainer = Trainer(cfg, data, run, resume_from=source, quiet=args.quiet, threads=jobs)
    except (FlagError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not source and run.exists():
        run.unlink()  # an earlier run toward out, not promoted: this new one replaces it
        print(f"discarded the earlier run left in {run} (--resume would have continued it)")
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    print(f"data: {data} ({trainer.split.description}); vocabulary {len(trainer.model.vocab)} "
          f"tokens; {trainer.model.n_params:,} parameters; checkpoints go to {run}"
          + (f", resumed from {source}" if source else ""))
    try:
        from threadpoolctl import threadpool_limits

        # one BLAS thread: these small matmuls gain nothing from two, and on shared cores the
        # second thread's busy-waiting makes training 5-10x slower
        with threadpool_limits(limits=1, user_api="blas"):
            best = trainer.run()
            if not run.exists():
                print(f"no epoch improved on validation NLL {best['val_nll']:.4f}"
                      f"{f' of {source}' if source else ''}; {out} unchanged")
                return 0
            print(f"best validation NLL {best['val_nll']:.4f} nats/char at epoch {best['epoch']} "
                  f"({trainer.seconds:.1f} s of training)")
            outcome = promote.replace_if_better(run, out, nll_scorer(trainer.val_batches),
                                                force=args.force)
    except DataError as exc:   # found only once training starts (Trainer.run)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {_saved_state(run, out)}", file=sys.stderr)
        return 130
    print(outcome.message)
    return 0


def _resume_source(args: argparse.Namespace, run: Path, out: Path) -> Path:
    """What --resume continues: when the student recipe is asked for, its ensemble (the first
    member); else the unfinished run, else an ensemble's first member, else out. A served
    student is not continued: its recipe starts again from its ensemble's members."""
    from app.lm.checkpoint import CheckpointError, load
    from app.training.crossfit import member_paths
    from app.training.student import teacher_stages

    candidates = ([member_paths(teacher_stages(run)["ensemble"], 1)[0]] if wants_student(args)
                  else [run, member_paths(run, 1)[0]])
    source = next((path for path in candidates if path.exists()), out)
    try:
        distilled = source == out and "distillation" in load(out).metadata
    except CheckpointError:
        distilled = False   # _resumed_config says why it cannot be read
    if distilled:
        raise FlagError(f"--resume: {out} is a distilled student and no run toward it is left "
                        f"in {run.parent}; train again without --resume")
    return source


def _resumed_config(source: Path) -> dict:
    """The configuration the run to resume was started with (runs from before ensembles were
    one model each)."""
    from app.lm.checkpoint import CheckpointError, load

    try:
        return {"members": 1, **(load(source).metadata.get("train_config") or {})}
    except CheckpointError as exc:
        raise FlagError(f"--resume: {exc}") from None


def _train_ensemble(args: argparse.Namespace, cfg, data: Path, out: Path, run: Path, jobs: int,
                    resume: bool) -> int:
    """A cross-fitted ensemble (``app.training.crossfit``), promoted by its out-of-fold NLL."""
    from app.training import crossfit, promote

    folder = crossfit.member_paths(run, 1)[0].parent
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    print(f"data: {data}; {cfg.members} members, {min(jobs, cfg.members)} at a time; members' "
          f"checkpoints go to {folder}, the ensemble to {run}")

    def train_and_promote():
        crossfit.train(cfg, data, run, jobs=jobs, resume=resume, quiet=args.quiet)
        return promote.replace_if_better(run, out, promote.recorded_nll, force=args.force)

    return _outcome(train_and_promote, f"finished members are kept in {folder} and --resume "
                                       f"continues the others; {out} unchanged")


def _train_student(args: argparse.Namespace, cfg, data: Path, out: Path, run: Path, jobs: int,
                   resume: bool) -> int:
    """The served lstm: a student of the mezcla of a cross-fitted ensemble and an n-gram
    (``app.training.student``), promoted by the rules written there."""
    from app.training import crossfit, student

    members = crossfit.member_paths(student.teacher_stages(run)["ensemble"], 1)[0].parent
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    print(f"data: {data}; the teacher: {cfg.members} members, {min(jobs, cfg.members)} at a time "
          f"(checkpoints in {members}), an n-gram and their mezcla, then the student into "
          f"{run}")
    return _outcome(lambda: student.train(cfg, data, out, jobs=jobs, resume=resume,
                                          force=args.force, quiet=args.quiet),
                    f"finished members are kept in {members} and --resume continues the others "
                    f"(the n-gram, the mezcla and the student are trained again); {out} unchanged")


def _outcome(train_and_promote, interrupted: str) -> int:
    """Run a training that ends in a promotion; its message and exit code (2 for bad data,
    130 when interrupted, saying ``interrupted``: what was kept)."""
    from app.data.corpus import DataError

    try:
        outcome = train_and_promote()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return 130
    print(outcome.message)
    return 0


def _saved_state(run: Path, out: Path) -> str:
    """What an interrupted run left, read from the run file itself (a save may have been cut)."""
    from app.lm.checkpoint import CheckpointError, load

    try:
        metrics = load(run).metadata["metrics"]
    except (CheckpointError, KeyError):
        return f"no checkpoint was written; {out} unchanged"
    return (f"{run} holds this run's best so far (epoch {metrics['best_epoch']}, validation NLL "
            f"{metrics['val_nll']:.4f}); {out} unchanged; --resume continues the run")


def _train_markov(args: argparse.Namespace, out: Path, run: Path) -> int:
    """The n-gram model: counted, not trained by gradient, so one short pass and no resume."""
    from app.data.corpus import DEFAULT_NAMES
    from app.training import markov_fit, promote
    cfg = markov_fit.config_from_flags(args)
    print("configuration:", ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()))
    try:
        markov_fit.train(cfg, args.data or DEFAULT_NAMES, run)
        outcome = promote.replace_if_better(run, out, promote.recorded_nll, force=args.force)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {out} unchanged", file=sys.stderr)
        return 130
    print(outcome.message)
    return 0


def _write_failed(exc: OSError, args: argparse.Namespace) -> int:
    """A file could not be written mid-run (a full disk, a folder made read-only): what is
    left, exit 1. A save is atomic, so the run file holds the last checkpoint that was saved,
    and promotion moves the run file onto the served one: while it exists, that one is as it was."""
    from app.training.promote import run_path

    out = _default_out(args)
    run = run_path(out)
    left = (f"{run} holds the last checkpoint saved and {out} is unchanged; --resume continues "
            f"once the file can be written" if run.exists() else f"no run file is left in {run.parent}")
    print(f"error: {exc.strerror or exc}: {exc.filename or out}; {left}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__).parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # while numpy loads or the data is read: nothing written yet
        print("\ninterrupted before training started; nothing was written", file=sys.stderr)
        return 130
    except OSError as exc:
        return _write_failed(exc, args)


if __name__ == "__main__":
    sys.exit(main())
