"""A name that several municipalities share (Guadalupe, Hidalgo) is learned once, unless
``--repeats``; a conditioned model keeps every (name, state) pair."""

import numpy as np

from app.data.corpus import DEFAULT_NAMES, first_occurrences, read_names
from app.training import markov_fit
from app.training.config import TrainConfig
from app.training.distillation import Draws, student_data
from app.training.markov_fit import MarkovTrainConfig
from app.training.mixture_fit import fold_components
from app.training.trainer import Trainer
from tests.conftest import TINY_NAMES, make_tiny_model


def test_first_occurrences_keep_the_first_of_each_name_in_order():
    assert first_occurrences(["b", "a", "b", "c", "a"]) == [0, 1, 3]
    assert first_occurrences([]) == []


def names_with_repeats(tmp_path, repeated=("Guadalupe", "Hidalgo")):
    """~120 real names plus each of ``repeated`` four more times, as the real list has them."""
    names = read_names(DEFAULT_NAMES)[::20] + [n for n in repeated for _ in range(4)]
    path = tmp_path / "names.txt"
    path.write_text("\n".join(names), encoding="utf-8")
    return path


def test_a_neural_model_trains_on_each_distinct_name_once(tmp_path):
    data = names_with_repeats(tmp_path)
    once = Trainer(TrainConfig(hidden=8, embed=4, members=1), data, tmp_path / "a.npz", quiet=True)
    every = Trainer(TrainConfig(hidden=8, embed=4, members=1, repeats=True), data,
                    tmp_path / "b.npz", quiet=True)
    train = once.split.train
    assert len(once.train_encoded) == len(set(train)) < len(train) == len(every.train_encoded)
    assert sorted(map(tuple, once.train_encoded)) == sorted(
        {tuple(once.model.vocab.encode(n)) for n in train})


def test_a_conditioned_model_keeps_a_shared_name_once_per_state(tmp_path):
    rows = ["cve_ent,estado,cve_mun,municipio"]
    rows += [f"26,Sonora,{i:03d},{n}" for i, n in enumerate(read_names(DEFAULT_NAMES)[:40])]
    rows += ["26,Sonora,100,Guadalupe", "31,Yucatán,100,Guadalupe"]
    rows += [f"31,Yucatán,{i:03d},{n}" for i, n in enumerate(read_names(DEFAULT_NAMES)[-40:])]
    data = tmp_path / "states.csv"
    data.write_text("\n".join(rows), encoding="utf-8")
    trainer = Trainer(TrainConfig(hidden=8, embed=4, members=1, condition="estado"), data,
                      tmp_path / "e.npz", quiet=True)
    assert len(trainer.train_encoded) == len(trainer.split.train) == len(trainer.train_cond)


def counts(model):
    return {k: v for k, v in model.arrays.items() if k.endswith(".counts")}


def test_the_ngram_counts_a_shared_name_once(tmp_path):
    with_repeats = names_with_repeats(tmp_path)
    alone = tmp_path / "alone.txt"
    alone.write_text("\n".join(dict.fromkeys(read_names(with_repeats))), encoding="utf-8")
    cfg = MarkovTrainConfig(min_order=3, max_order=4, members=2)
    once, single = (markov_fit.train(cfg, path, tmp_path / f"{path.stem}.npz", log=lambda *_: None)
                    for path in (with_repeats, alone))
    every = markov_fit.train(MarkovTrainConfig(min_order=3, max_order=4, members=2, repeats=True),
                             with_repeats, tmp_path / "every.npz", log=lambda *_: None)
    top = f"k{once.config.order}.counts"
    assert once.config.order == single.config.order
    np.testing.assert_array_equal(counts(once)[top], counts(single)[top])
    assert counts(every)[f"k{every.config.order}.counts"].sum() > counts(once)[top].sum()


def test_the_student_learns_each_real_name_once():
    teacher = make_tiny_model("lstm")
    names = ["Abalá", "Acala", "Abalá", "Ahome", "Abalá"]
    draws = Draws(samples=0, val_samples=100)
    once, _, summary = student_data(teacher, names, draws, 0, log=lambda *_: None)
    every, _, _ = student_data(teacher, names, draws, 0, log=lambda *_: None, repeats=True)
    assert summary["real_names"] == 3 and len(once.encoded) == 3 and len(every.encoded) == 5


def test_the_mezcla_counts_its_out_of_fold_ngrams_as_its_members_were_trained():
    names = [*TINY_NAMES, "Acala", "Acala", "Acala"]

    def fold_ngrams(repeats):
        members = [make_tiny_model("lstm", seed=i, names=TINY_NAMES) for i in range(2)]
        for m in members:
            m.metadata["train_config"] = {"repeats": repeats}
        return [ngram for _, ngram, _ in fold_components(members, 3, names, None, 2, 0)]

    for once, every in zip(fold_ngrams(False), fold_ngrams(True), strict=True):
        top_once, top_every = once.arrays["k3.counts"].sum(), every.arrays["k3.counts"].sum()
        assert top_once <= top_every
    assert sum(n.arrays["k3.counts"].sum() for n in fold_ngrams(True)) > sum(
        n.arrays["k3.counts"].sum() for n in fold_ngrams(False))
