"""Print invented municipality names, one per line.

    python -m app.sample --model models/lstm.npz -n 20 --temperature 0.8 --seed 1

Uses the same sampling function as the web service (``app.generation.sampling.sample_names``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.console import write_lines
from app.flags import SEED
from app.generation.deadline import Deadline
from app.generation.sampling import (
    MAX_LENGTH_DEFAULT,
    MAX_LENGTH_LIMIT,
    TEMPERATURE_MAX,
    TOP_K_MAX,
    SamplingError,
    resolve_estado,
    sample_names,
)
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError

MAX_NAMES = 10_000
DEADLINE_DEFAULT = 10.0   # seconds of compute; a low temperature can make most draws repeats
DEADLINE_MAX = 3600.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models/lstm.npz"),
                   help="checkpoint to sample from (default: %(default)s)")
    p.add_argument("-n", type=int, default=10, help=f"names to print, 1..{MAX_NAMES} "
                                                    "(default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help=f"divides the logits: near 0 gives the most likely name, 1 samples "
                        f"the model as trained, up to {TEMPERATURE_MAX} is wilder "
                        "(default: %(default)s)")
    p.add_argument("--top-k", type=int, help=f"sample only among the k most likely characters "
                                             f"(1 to {TOP_K_MAX})")
    p.add_argument("--prefix", default="", help="every name starts with this text (case kept)")
    p.add_argument("--max-length", type=int, default=MAX_LENGTH_DEFAULT,
                   help=f"longest name, 1..{MAX_LENGTH_LIMIT}; longer draws are dropped "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, help="same seed and options, same names (default: random)")
    p.add_argument("--no-novel", action="store_true",
                   help="also print names that exist in the real list")
    p.add_argument("--estado", help="for a model trained by state: the state's name or two-digit "
                                    "INEGI code, accents and case ignored (default: a state per "
                                    "name, in proportion to its municipalities)")
    p.add_argument("--deadline", type=float, default=DEADLINE_DEFAULT, metavar="SECONDS",
                   help="stop after this much compute time and print the names found so far, "
                        f"more than 0 and at most {DEADLINE_MAX:g} (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.n <= MAX_NAMES:
        parser.error(f"-n must be between 1 and {MAX_NAMES}, got {args.n}")
    if args.top_k is not None and not 1 <= args.top_k <= TOP_K_MAX:
        parser.error(f"--top-k must be from 1 to {TOP_K_MAX}, got {args.top_k}")
    if args.seed is not None and args.seed not in SEED:
        parser.error(f"--seed must be in {SEED}, got {args.seed}")
    if not 0 < args.deadline <= DEADLINE_MAX:   # also false for nan
        parser.error(f"--deadline must be > 0 and <= {DEADLINE_MAX:g} seconds, got {args.deadline}")
    try:
        model = load_model(args.model)
        estado = None if args.estado is None else resolve_estado(model, args.estado)[1]
        result = sample_names(model, args.n, np.random.default_rng(args.seed),
                              temperature=args.temperature, top_k=args.top_k,
                              prefix=args.prefix,
                              max_length=args.max_length, novel=not args.no_novel,
                              estado=estado, deadline=Deadline(args.deadline))
    except SamplingError as exc:
        parser.error(f"--{exc.field.replace('_', '-')}: {exc}")
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if write_lines((sampled.name for sampled in result.names), "the names"):
        return 1
    if not result.complete:
        why = (f"the {args.deadline:g} s deadline passed" if result.stopped == "deadline"
               else "the draw budget ran out")
        print(f"warning: found {len(result.names)} of {args.n} names in {result.draws} draws: "
              f"{why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
