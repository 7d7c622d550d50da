"""Compare analytic gradients with centred finite differences, for every parameter.

    python -m app.gradcheck --model all

Runs on a small float64 model with a padded, masked batch and prints each parameter's max
relative error; exits 1 when any exceeds the tolerance. Besides the plain and the conditioned
model and distillation's soft targets, it checks the training-time regularisers (dropout,
locked dropout, DropConnect on the recurrent weights, embedding dropout) with their masks
fixed: every loss evaluation draws them from a generator with the same seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from app.data.corpus import Batch, make_batch
from app.flags import SEED, parse_checked
from app.nn import network
from app.nn.network import ModelConfig

TOLERANCE = 1e-6
NEGLIGIBLE = 1e-10  # entries where both gradients are below this carry no signal
# an entry is measured against at least this share of its parameter's largest gradient: the
# stencil's rounding error (~1e-13 absolute) can't resolve a 1e-8 entry to 1e-6 of itself
SCALE_FLOOR = 1e-4


# the regularised cases: config fields beyond the plain model's
REGULARISED = {
    "dropout": {"dropout": 0.3},
    "awd": {"dropout": 0.3, "locked_dropout": True, "weight_drop": 0.3, "embed_dropout": 0.3},
}


def small_problem(kind: str, seed: int = 0, layers: int = 2, embed: int = 4,
                  conditions: int = 0, **regularisation) -> tuple[ModelConfig, dict, Batch]:
    """A tiny float64 model and a batch of names of different lengths (so padding is exercised);
    ``regularisation``: extra ModelConfig fields (dropout rates)."""
    rng = np.random.default_rng(seed)
    V = 7
    config = ModelConfig(kind=kind, vocab_size=V, hidden=5, layers=layers, embed=embed,
                         conditions=conditions, cond_embed=3 if conditions else 0, **regularisation)
    params = network.init_params(config, rng, dtype=np.float64)
    for p in params.values():  # random biases too, so every entry gets a gradient
        p += rng.normal(0.0, 0.3, p.shape)
    lengths = [4, 1, 3]
    cond = rng.integers(0, conditions, len(lengths)) if conditions else None
    batch = make_batch([list(rng.integers(1, V, n)) for n in lengths], np.float64, cond)
    return config, params, batch


def with_soft_targets(config: ModelConfig, params: dict, batch: Batch,
                      seed: int = 0) -> tuple[ModelConfig, dict, Batch]:
    """The same problem with a random teacher distribution at every step (distillation)."""
    rng = np.random.default_rng(seed)
    soft = rng.dirichlet(np.ones(config.vocab_size), size=batch.targets.shape)   # (T, B, V)
    return config, params, dataclasses.replace(batch, soft=soft)


def relative_errors(config, params, batch, h: float = 1e-3,
                    mask_seed: int | None = None) -> dict[str, float]:
    """Max relative error |a - n| / (|a| + |n|) between analytic and numerical gradient, per parameter.

    With mask_seed, dropout is on and every evaluation draws the same masks (a generator seeded
    alike each time), so the loss is one smooth function of the parameters.

    The numerical gradient uses the fourth-order centred stencil
    (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h: its truncation error is O(h^4), so tiny
    gradient entries (1e-6, common in LSTM gates) are still measured to ~1e-7 in float64.
    """
    def masks() -> np.random.Generator | None:
        return None if mask_seed is None else np.random.default_rng(mask_seed)

    def loss() -> float:
        return network.loss_and_grads(config, params, batch, rng=masks(), want_grads=False)[0]

    _, grads, _ = network.loss_and_grads(config, params, batch, rng=masks())
    errors = {}
    for name, p in params.items():
        numerical = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            saved = p[idx]
            f = {}
            for k in (2, 1, -1, -2):
                p[idx] = saved + k * h
                f[k] = loss()
            p[idx] = saved
            numerical[idx] = (-f[2] + 8 * f[1] - 8 * f[-1] + f[-2]) / (12 * h)
        analytic = grads[name]
        scale = np.maximum(np.abs(analytic) + np.abs(numerical),
                           max(SCALE_FLOOR * float(np.abs(analytic).max()), 1e-300))
        rel = np.abs(analytic - numerical) / scale
        rel[(np.abs(analytic) < NEGLIGIBLE) & (np.abs(numerical) < NEGLIGIBLE)] = 0.0
        errors[name] = float(rel.max())
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.gradcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["rnn", "lstm", "all"], default="all",
                        help="which cell to check (default: all)")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"seed for the random model and batch (in {SEED}; default: %(default)s)")
    args = parse_checked(parser, argv, {"seed": SEED})
    kinds = ["rnn", "lstm"] if args.model == "all" else [args.model]
    failed = False
    cases = [("", {}, None, False), (" conditioned", {"conditions": 3}, None, False),
             (" soft targets", {}, None, True)]
    cases += [(f" {label}", fields, args.seed, False) for label, fields in REGULARISED.items()]
    for kind in kinds:
        for suffix, fields, mask_seed, soft in cases:
            label = kind + suffix
            problem = small_problem(kind, args.seed, **fields)
            if soft:
                problem = with_soft_targets(*problem, seed=args.seed)
            errors = relative_errors(*problem, mask_seed=mask_seed)
            for name, err in errors.items():
                status = "ok" if err <= TOLERANCE else "FAIL"
                failed |= err > TOLERANCE
                print(f"{label:18s} {name:12s} max rel error {err:.2e}  {status}")
    print("gradient check " + ("FAILED" if failed else f"passed (tolerance {TOLERANCE:g})"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
