"""K-fold partitions: every name held out exactly once, repeats together, states spread evenly."""

from collections import Counter

import pytest

from app.data.corpus import DataError
from app.data.folds import fold_of, kfold

NAMES = [f"Nombre {i}" for i in range(103)] + ["Abasolo"] * 4 + ["Allende"] * 3


def test_every_distinct_name_is_held_out_exactly_once_and_repeats_stay_together():
    splits = kfold(NAMES, 5, seed=0)
    held = Counter(name for split in splits for name in set(split.val))
    assert set(held) == set(NAMES) and set(held.values()) == {1}
    for split in splits:
        assert not set(split.train) & set(split.val)
        assert len(split.train) + len(split.val) == len(NAMES)
        assert split.val.count("Abasolo") in (0, 4)
    sizes = [len(set(split.val)) for split in splits]
    assert max(sizes) - min(sizes) <= 1


def test_folds_do_not_depend_on_file_order_but_do_on_the_seed():
    assert fold_of(NAMES, 5, seed=0) == fold_of(list(reversed(NAMES)), 5, seed=0)
    assert fold_of(NAMES, 5, seed=0) != fold_of(NAMES, 5, seed=1)


def test_stratified_folds_give_every_state_its_share():
    names = [f"N{i}" for i in range(60)]
    states = ["Oaxaca"] * 40 + ["Sonora"] * 15 + ["Colima"] * 5
    assigned = fold_of(names, 5, seed=3, strata=states)
    for state in ("Oaxaca", "Sonora", "Colima"):
        per_fold = Counter(assigned[n] for n, s in zip(names, states, strict=True) if s == state)
        assert max(per_fold.values()) - min(per_fold.get(f, 0) for f in range(5)) <= 1


@pytest.mark.parametrize("k, message", [(1, "from 2 to 20"), (21, "from 2 to 20"),
                                        (5, "too few distinct names")])
def test_bad_fold_counts_are_clear_errors(k, message):
    names = NAMES if k != 5 else ["Ures", "Opodepe", "Ures"]
    with pytest.raises(DataError, match=message):
        kfold(names, k)
