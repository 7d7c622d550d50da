r"""Distillation: one student LSTM trained on a teacher's next-character distributions.

    python -m app.distill --teacher models/mezcla.npz --data data/municipios.txt \
        --out models/alumno.npz --samples 10000 --hidden 192

The teacher (any model: an ensemble, a mixture, an n-gram) is slow to sample or large; the
student is one network, as cheap as a single LSTM. Its training names are the real names plus
``--samples`` names drawn from the teacher, and its target at every step is the teacher's whole
next-character distribution there (with ``--hard-weight``, mixed on the real names with the
character actually written; and, when the teacher is a mezcla of a cross-fitted ensemble, as
the teacher would be without the fold holding each name, so the student learns what the teacher
says of names it never saw, not what it memorised: fewer copies, see ``--no-out-of-fold``).
Teacher samples come without limit, so the student can afford
more capacity than a network fitted on the real names alone.

Early stopping needs names neither the student nor the teacher trained on, and the teacher has
seen every real name. So the student is validated on ``--val-samples`` fresh teacher samples,
with real names and the student's own training samples removed from them: its cross-entropy
to the teacher there. Held-out real names judge the student in ``python -m app.cv``.

The student is written to a run file (models/.runs/alumno.npz for models/alumno.npz) and
replaces ``--out`` by the rules of the served lstm's student (``app.training.student``): when
``--out`` does not exist; or when the teacher is no worse on held-out names than the one
behind ``--out``, on the same folds, and the student is closer to this teacher than ``--out`` is,
on fresh teacher samples the new student neither trained nor stopped on; or with ``--force``.
Ctrl-C leaves ``--out`` as it was. The library behind this command is
``app.training.distillation`` (teacher samples, the student's data and training), with
``app.training.student`` (promotion).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from threadpoolctl import threadpool_limits

from app.data.corpus import DEFAULT_NAMES, DataError
from app.flags import FlagError, check_range, flag
from app.training.config import RANGES, TrainConfig, check_writable, given_flags
from app.training.distillation import (
    HARD_WEIGHT_RANGE,
    SAMPLES_RANGE,
    STUDENT_DEFAULTS,
    STUDENT_FLAGS,
    TEMPERATURE_RANGE,
    VAL_SAMPLES_RANGE,
    Draws,
)
from app.training.promote import run_path
from app.training.student import distill


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.distill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, required=True,
                   help="the model to imitate (any kind but a state-conditioned one)")
    p.add_argument("--data", type=Path,
                   help="the names the teacher was trained on (default: data/municipios.txt)")
    p.add_argument("--out", type=Path, required=True,
                   help="the served student: replaced only if this one wins by the rules above")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if --out wins by those rules")
    p.add_argument("--samples", type=int, default=Draws.samples,
                   help=f"teacher samples to train on besides the real names (in "
                        f"{SAMPLES_RANGE}; default: %(default)s)")
    p.add_argument("--val-samples", type=int, default=Draws.val_samples,
                   help=f"fresh teacher samples drawn to early-stop on (in "
                        f"{VAL_SAMPLES_RANGE}; default: %(default)s)")
    p.add_argument("--temperature", type=float, default=Draws.temperature,
                   help=f"temperature of the teacher's samples (in {TEMPERATURE_RANGE}; "
                        f"default: %(default)s)")
    p.add_argument("--hard-weight", type=float, default=Draws.hard_weight,
                   help=f"on the real names, weight of the written character against the "
                        f"teacher's distribution (in {HARD_WEIGHT_RANGE}; default: %(default)s)")
    p.add_argument("--out-of-fold", action=argparse.BooleanOptionalAction, default=None,
                   help="on the real names, learn the teacher without the fold holding each name "
                        "(a mezcla of a cross-fitted ensemble): what it says of unseen names "
                        "(default: whenever the teacher is such a mezcla)")
    p.add_argument("--drop-copies", action="store_true",
                   help="leave out the teacher samples that are real names")
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
    for name, allowed in (("samples", SAMPLES_RANGE), ("val_samples", VAL_SAMPLES_RANGE),
                          ("temperature", TEMPERATURE_RANGE), ("hard_weight", HARD_WEIGHT_RANGE)):
        check_range(name, getattr(args, name), allowed)
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
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            draws = Draws(args.samples, args.val_samples, args.temperature, args.hard_weight,
                          args.out_of_fold, args.drop_copies)
            outcome = distill(cfg, args.teacher, args.data or DEFAULT_NAMES, args.out, draws,
                              force=args.force, quiet=args.quiet)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the best student so far is in {run_path(args.out)}; {args.out} "
              f"unchanged", file=sys.stderr)
        return 130
    print(outcome.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
