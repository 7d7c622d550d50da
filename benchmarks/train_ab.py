"""A/B: this tree's numpy training step against another commit's, on the same epochs.

    python benchmarks/train_ab.py --ref HEAD~1 [--rounds 8] [--model lstm] [--threads 1]

Each side runs in a worker process of its own code (the other commit's ``app/`` exported with
``git archive``), with the default configuration of ``python -m app.train --model KIND`` and so
the same seeds and batches (it stops if the two cut an epoch differently), the step
train_speed.py times (loss, gradients, clipping, Adam, weight average). Every round is one whole
epoch, the two sides taking turns batch by batch (who goes first alternating), each timing its
own steps; only one of them computes at a time. Printed per round: chars/s of each side and the
ratio of their times, ref / this tree (above 1: this tree is faster), with min / median / max,
and the machine reference of train_speed.py.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

from code_trees import ROOT, Worker, export


def worker() -> None:
    """train_speed's engine worker (``train_speed.worker``) for the code tree on PYTHONPATH."""
    # the package of the tree on PYTHONPATH, imported before train_speed puts this one first
    importlib.import_module("app")
    importlib.import_module("train_speed").worker()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", help="the git commit to compare this tree with (required)")
    parser.add_argument("--model", choices=("lstm", "rnn"), default="lstm")
    parser.add_argument("--rounds", type=int, default=8, help="whole epochs (default: 8)")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1,
                        help="as `app.train --jobs N` trains one model (default: 1)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    if not args.ref:
        parser.error("--ref is required")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    sys.path.insert(0, str(ROOT))
    import train_speed

    exported = export(args.ref)
    sides: dict[str, Worker] = {}
    try:
        for label, tree in (("this tree", ROOT), (args.ref, exported)):
            sides[label] = Worker(Path(__file__), tree)
            sides[label].ask(f"numpy {args.model}")
            sides[label].ask(f"threads {args.threads}")   # "ready" after its warm-up
        speeds: dict[str, list[float]] = {label: [] for label in sides}
        probe = train_speed.default_trainer(args.model)   # this tree's batches, for their size
        ratios, reference = [], []
        for r in range(args.rounds):
            reference.append(train_speed.reference_gflops())
            batches = {side.ask(f"{r + 1}") for side in sides.values()}   # training's epoch r + 1
            if len(batches) > 1:
                sys.exit(f"error: the two trees cut epoch {r + 1} into {sorted(batches)} batches; "
                         "train_ab.py compares steps on the same batches only")
            # numpy leaves no threads spinning: the two sides need no pause between turns
            seconds = train_speed.time_epoch(sides, r + 1, batches.pop(), settle=0.0)
            chars = sum(b.n_tokens for b in train_speed.epoch_batches(probe, r + 1))
            for label in sides:
                speeds[label].append(chars / seconds[label])
            ratios.append(seconds[args.ref] / seconds["this tree"])
            print(f"round {r + 1}: " + ", ".join(f"{label} {speeds[label][-1]:,.0f} chars/s"
                                                for label in sides)
                  + f"; {args.ref} / this tree {ratios[-1]:.3f}", flush=True)
    finally:
        for side in sides.values():
            side.close()
        shutil.rmtree(exported)
    print(f"\n{args.model}, {args.threads} thread{'s' * (args.threads > 1)}, {args.rounds} whole epochs; "
          f"machine reference {train_speed.spread(reference)} GFLOP/s (min / median / max)")
    for label, values in speeds.items():
        print(f"  {label:>10}: chars/s {train_speed.spread(values)}")
    print(f"  time {args.ref} / this tree: {train_speed.spread(ratios, digits=3)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
