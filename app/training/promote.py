"""A run never writes the served checkpoint: it writes a run file, promoted only if it wins.

    run = run_path(Path("models/lstm.npz"))      # models/.runs/lstm.npz
    ... train, saving every improvement to run ...
    print(replace_if_better(run, served, score).message)

The run file sits in a hidden folder beside the served one (same file system, so promotion is
one atomic rename; the service only loads ``models/*.npz``). Promotion compares both on the
same validation names, so both must come from the same data, split and vocabulary.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.lm import checkpoint
from app.lm.checkpoint import CheckpointError

RUNS_FOLDER = ".runs"
# metadata that must agree for two checkpoints to be scored on the same names
COMPARABLE = ("data_sha256", "split", "vocab", "conditions")


def run_path(served: Path) -> Path:
    """Where a run toward ``served`` keeps its checkpoints until it finishes."""
    return served.parent / RUNS_FOLDER / served.name


@dataclass(frozen=True)
class Outcome:
    replaced: bool
    message: str


def _differences(candidate: dict, served: dict, keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if candidate.get(key) != served.get(key)]


def replace_if_better(candidate: Path, served: Path, score: Callable[[Path], float],
                      force: bool = False, comparable: tuple[str, ...] = COMPARABLE,
                      measure: str = "validation NLL") -> Outcome:
    """Rename ``candidate`` over ``served`` if it scores lower (by default NLL on the run's
    validation names, via ``score(path)``; ``measure`` names it in the message), if ``served``
    does not exist, or if ``force``; else keep both.

    The served file is kept when it cannot be read or differs in any ``comparable`` metadata
    (by default other data or another split): the two cannot be compared on the same names, and
    an unreadable file may be newer than this code. ``score`` may raise CheckpointError for a
    file it cannot load.
    """
    new = score(candidate)
    if not math.isfinite(new) and not force:
        return Outcome(False, f"kept {served}: this run's {measure} is {new}; "
                              f"the run is in {candidate}")

    def promote(why: str) -> Outcome:
        os.replace(candidate, served)
        return Outcome(True, f"{why}; saved to {served}")

    if force:
        return promote(f"replaced {served} as asked (--force): this run's {measure} {new:.4f}")
    if not served.exists():
        return promote(f"wrote {served}: {measure} {new:.4f}")
    keep = f"the run is in {candidate}; --force replaces {served} with it"
    try:
        differ = _differences(checkpoint.load(candidate).metadata,
                              checkpoint.load(served).metadata, comparable)
        if differ:
            return Outcome(False, f"kept {served}: it was built on other {', '.join(differ)}, "
                                  f"so the two cannot be compared on the same names; {keep}")
        old = score(served)
    except CheckpointError as exc:
        return Outcome(False, f"kept {served}: it cannot be read to compare ({exc}); {keep}")
    digits = 4 if f"{new:.4f}" != f"{old:.4f}" else 6   # never "1.5167 beats its 1.5167"
    if new < old or not math.isfinite(old):
        return promote(f"replaced {served}: this run's {new:.{digits}f} beats its {old:.{digits}f} "
                       f"({measure}, nats/char)")
    verdict = "beats" if old < new else "ties"
    return Outcome(False, f"kept {served}: its {old:.{digits}f} {verdict} this run's "
                          f"{new:.{digits}f} ({measure}, nats/char); {keep}")


def recorded_nll(path: Path) -> float:
    """score(path) for models built on every name (cross-fitted ensembles, n-grams and mixtures
    over folds): the held-out NLL the checkpoint recorded on its folds, since no name is left to
    score it on. Two such checkpoints are compared only when their data and folds agree (see
    ``COMPARABLE``), so their figures come from the same held-out names."""
    return float(checkpoint.load(path).metadata["metrics"]["val_nll"])
