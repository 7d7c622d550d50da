"""Mezcla: a mixture of two models' next-character distributions, weighted on validation.

    python -m app.mixture --neural models/lstm.npz --ngram models/markov.npz --out models/mezcla.npz
    python -m app.mixture ... --weight scalar      # one weight everywhere, not the gate
    python -m app.mixture ... --no-product         # the gated average without the product term

P(c | history) = w * P_lstm(c | history) + (1 - w) * P_ngram(c | history). By default w is a
gate (``app.lm.gate``): it changes with the context, from how sure each model is there and how
much they agree. With ``--weight scalar`` it is one number, maximising the likelihood of the
validation names. A gated mezcla adds a share of the two sides multiplied (``app.lm.product``)
if it helps on the same names. All is fitted on names neither component trained on (out of fold for
cross-fitted components; ``app.training.mixture_fit``), and the checkpoint is written only if
the mixture beats both components there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.data.corpus import DEFAULT_NAMES, DataError
from app.flags import FlagError
from app.lm import checkpoint
from app.lm.base import load_model, names_nll
from app.lm.checkpoint import CheckpointError
from app.paths import MODELS_DIR
from app.training.config import NEURAL_KINDS, check_writable
from app.training.mixture_fit import WEIGHTINGS, build
from app.training.promote import recorded_nll, replace_if_better, run_path
from app.training.student import teacher_ensemble

NEURAL = "an lstm or rnn, one network or a cross-fitted ensemble (python -m app.train)"
NGRAM = "an n-gram (python -m app.train --model markov)"


def _component(name: str, path: Path, kinds: tuple[str, ...], expected: str):
    """The model at ``path``, given as ``--name``; FlagError unless it is of one of ``kinds``
    (an ensemble is of its members' kind) and not conditioned on the state."""
    model = load_model(path)
    kind = getattr(model, "family", model.kind)
    if kind not in kinds:
        raise FlagError(f"--{name} {path} is of kind {kind!r}; --{name} takes {expected}")
    if model.conditions:
        raise FlagError(f"--{name} {path} is conditioned on the state, and a mezcla mixes "
                        f"models trained without --condition; --{name} takes {expected}")
    return model


def _cross_fitted(path: Path, neural):
    """The neural component ``neural`` read from ``path``, or for a served student, the
    cross-fitted ensemble it was distilled from: the student has no out-of-fold predictions to
    fit a weight on."""
    ensemble = teacher_ensemble(path, neural)
    if ensemble is None:
        return neural
    print(f"{path} is a student distilled from a mezcla; the mixture is built from its "
          f"ensemble, {ensemble}")
    try:
        return load_model(ensemble)
    except CheckpointError as exc:
        raise CheckpointError(f"--neural {path}: its ensemble cannot be read ({exc}); train the "
                              f"recipe again (python -m app.train --model lstm) or give an "
                              f"ensemble as --neural") from None


def _mean_nll(model, names: list[str]) -> float:
    """NLL per token (nats) of ``model`` on ``names``, as build() scores the components."""
    return float(np.concatenate(names_nll(model, names)).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.mixture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    models = MODELS_DIR
    parser.add_argument("--neural", type=Path, default=models / "lstm.npz",
                        help=f"neural component: {NEURAL} (default: models/lstm.npz)")
    parser.add_argument("--ngram", type=Path, default=models / "markov.npz",
                        help=f"n-gram component: {NGRAM} (default: models/markov.npz)")
    parser.add_argument("--data", type=Path, default=DEFAULT_NAMES,
                        help="the names both were trained on (default: data/municipios.txt)")
    parser.add_argument("--out", type=Path, default=models / "mezcla.npz",
                        help="the served mixture: replaced only if this one beats it on the "
                             "same validation names (default: models/mezcla.npz)")
    parser.add_argument("--weight", choices=WEIGHTINGS, default="gate",
                        help="gate: the weight changes with the context (default); scalar: one "
                             "weight everywhere")
    parser.add_argument("--no-product", action="store_true",
                        help="no product term: serve the gated average of the two alone")
    parser.add_argument("--force", action="store_true",
                        help="replace --out even if it scores better than this mixture")
    args = parser.parse_args(argv)
    if args.no_product and args.weight == "scalar":
        parser.error("--no-product does nothing with --weight scalar: the product term is added "
                     "to the gate only")
    try:
        return _run(args)
    except KeyboardInterrupt:   # a save is atomic: --out is whole, as it was or replaced
        print(f"\ninterrupted: {args.out} unchanged unless a line above says it was replaced",
              file=sys.stderr)
        return 130
    except OSError as exc:      # a full disk, a folder made read-only
        print(f"error: {exc.strerror or exc}: {exc.filename or args.out}; {args.out} unchanged",
              file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    run = run_path(args.out)
    try:
        check_writable(args.out, run)
        neural = _component("neural", args.neural, NEURAL_KINDS, NEURAL)
        ngram = _component("ngram", args.ngram, ("markov",), NGRAM)
        mixture, summary = build(_cross_fitted(args.neural, neural), ngram, args.data,
                                 weighting=args.weight, product=not args.no_product)
    except (CheckpointError, DataError, FlagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    best_single = min(summary["component_val_nll"].values())
    if summary["val_nll"] >= best_single:
        print(f"the mixture does not beat its best component ({best_single:.4f}); "
              f"{args.out} not written", file=sys.stderr)
        return 1
    checkpoint.save(run, mixture.checkpoint(mixture.metadata))
    val = summary["val_names"]
    score = (recorded_nll if mixture.metadata["train_config"]["members"] > 1
             else lambda path: _mean_nll(load_model(path), val))
    print(replace_if_better(run, args.out, score, force=args.force).message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
