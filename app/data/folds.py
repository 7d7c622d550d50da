"""K-fold partitions of the names: the yardstick for tuning, and the parts ensemble members train on.

    folds = kfold(corpus.names, 5, seed=0, strata=corpus.states)
    folds[2].train, folds[2].val    # fold 2 held out, the other four to train on

Folds are made over distinct names, so the repeats of a name (several states share some) never
straddle two folds. Within each stratum (a state, when the CSV gives them; else one stratum for
all) names are ordered by a hash of (seed, name) and dealt to the folds in turn, each stratum
starting where the last one stopped, so every fold gets its share of every state and the folds'
sizes differ by at most one name. A name listed under several states is dealt once, under the
first state it appears with.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.data.corpus import MIN_NAMES_TO_SPLIT, DataError, Split, split_key

MIN_FOLDS = 2
MAX_FOLDS = 20


def fold_of(names: Sequence[str], k: int, seed: int = 0,
            strata: Sequence[str] | None = None) -> dict[str, int]:
    """Each distinct name's fold, 0..k-1 (see the module docstring)."""
    if not MIN_FOLDS <= k <= MAX_FOLDS:
        raise DataError(f"--folds must be from {MIN_FOLDS} to {MAX_FOLDS}, got {k}")
    first_stratum: dict[str, str] = {}
    for name, stratum in zip(names, strata if strata is not None else [""] * len(names),
                             strict=True):
        first_stratum.setdefault(name, stratum)
    if len(first_stratum) < max(k, MIN_NAMES_TO_SPLIT):
        raise DataError(f"too few distinct names for {k} folds: {len(first_stratum)}")
    by_stratum: dict[str, list[str]] = {}
    for name, stratum in first_stratum.items():
        by_stratum.setdefault(stratum, []).append(name)
    assigned: dict[str, int] = {}
    turn = 0
    for stratum in sorted(by_stratum):
        for name in sorted(by_stratum[stratum], key=lambda n: split_key(n, seed)):
            assigned[name] = turn % k
            turn += 1
    return assigned


def describe(k: int, seed: int, stratified: bool) -> str:
    """The ``split`` metadata of models built on these folds: equal strings, same folds."""
    return (f"{k}-fold cross-fitting over distinct names"
            f"{' stratified by state' if stratified else ''} (sha256(seed:name) order), seed {seed}")


def kfold(names: Sequence[str], k: int, seed: int = 0,
          strata: Sequence[str] | None = None) -> list[Split]:
    """k splits of ``names``: split i holds out fold i and trains on the others."""
    assigned = fold_of(names, k, seed, strata)
    how = "stratified by state, " if strata is not None else ""
    splits = []
    for i in range(k):
        train_index = [j for j, name in enumerate(names) if assigned[name] != i]
        val_index = [j for j, name in enumerate(names) if assigned[name] == i]
        n_val = sum(1 for fold in assigned.values() if fold == i)
        description = (f"fold {i + 1} of {k} over distinct names ({how}sha256(seed:name) order), "
                       f"seed {seed}: {len(assigned) - n_val} train / {n_val} held-out distinct names")
        splits.append(Split(train=[names[j] for j in train_index],
                            val=[names[j] for j in val_index], description=description,
                            train_index=train_index, val_index=val_index))
    return splits
