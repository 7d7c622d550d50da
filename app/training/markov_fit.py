"""Fitting the n-gram: its order chosen on held-out names, then counted on the names it keeps.

    python -m app.train --model markov
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

from app.data.corpus import (
    NO_SCORABLE_VALIDATION,
    DataError,
    Vocabulary,
    data_sha256,
    learned_rows,
    read_corpus,
    split_names,
)
from app.data.folds import describe, kfold
from app.flags import FlagError, flag
from app.lm import checkpoint
from app.lm.markov import MarkovLM, mean_nll
from app.training.config import VAL_FRACTION_IDLE, TrainConfig, given_flags


@dataclass(frozen=True)
class MarkovTrainConfig:
    min_order: int = 2
    max_order: int = 8
    val_fraction: float = 0.1
    seed: int = 0
    members: int = 7   # > 1: the order is chosen by cross-validation on this many folds (as
    #                    the neural ensembles are cross-fitted: TrainConfig.members)
    repeats: bool = False   # count a shared name once per municipality (else once)


def order_scores(folds: list[tuple[list[list[int]], list[list[int]]]], vocab: Vocabulary,
                 orders: range, log=print) -> list[dict]:
    """Training and held-out NLL of every order, each pooled over (train, held-out) pairs of
    encoded names: the gap between the two is how much an order memorises."""
    def pooled(pairs: list[tuple[MarkovLM, list[list[int]]]]) -> float:
        pairs = [(model, encoded) for model, encoded in pairs if encoded]   # a fold may have none
        tokens = [sum(len(ids) + 1 for ids in encoded) for _, encoded in pairs]
        return sum(mean_nll(m, e) * n for (m, e), n in zip(pairs, tokens, strict=True)) / sum(tokens)

    history = []
    for order in orders:
        started = time.perf_counter()
        fitted = [(MarkovLM.fit(train_encoded, order, vocab), train_encoded, held_out)
                  for train_encoded, held_out in folds]
        record = {"order": order,
                  "train_nll": pooled([(m, train) for m, train, _ in fitted]),
                  "val_nll": pooled([(m, held) for m, _, held in fitted]),
                  "fit_seconds": round((time.perf_counter() - started) / len(folds), 4)}
        history.append(record)
        log(f"order {order}  train {record['train_nll']:.4f}  held-out {record['val_nll']:.4f}")
    return history


def train(cfg: MarkovTrainConfig, data, out, log=print) -> MarkovLM:
    """Choose the order on held-out names, fit it, save it to ``out``.

    With ``members`` > 1 (the default), the order is the one with the lowest NLL pooled over
    the same folds the neural ensembles are cross-fitted on (``app.data.folds``), and the model is
    then counted on every name: none is left out. With ``members`` = 1, the order is chosen on
    ``val_fraction`` of the names and the model keeps the other names only, as a single neural
    run does (so the two can be mixed on the same validation names).
    """
    started = time.perf_counter()
    corpus = read_corpus(data)  # as the neural trainer reads it, so the split is the same
    names = corpus.names
    orders = range(cfg.min_order, cfg.max_order + 1)
    if cfg.members > 1:
        vocab = Vocabulary.from_names(names)
        splits = kfold(names, cfg.members, cfg.seed, corpus.states)
        description = describe(cfg.members, cfg.seed, corpus.states is not None)
        fitted_on, held_out_names = names, [n for s in splits for n in s.val]
    else:
        split = split_names(names, cfg.val_fraction, cfg.seed, strata=corpus.states)
        vocab, splits, description = Vocabulary.from_names(split.train), [split], split.description
        fitted_on, held_out_names = split.train, split.val
    def counted(names: list[str]) -> list[list[int]]:
        return [vocab.encode(names[i]) for i in learned_rows(names, cfg.repeats)]

    pairs = [(counted(s.train), [vocab.encode(n) for n in s.val if not vocab.unknown(n)])
             for s in splits]
    if not any(held_out for _, held_out in pairs):
        raise DataError(NO_SCORABLE_VALIDATION)
    history = order_scores(pairs, vocab, orders, log)
    best = min(history, key=lambda record: record["val_nll"])
    fit_started = time.perf_counter()
    encoded = counted(fitted_on)
    model = MarkovLM.fit(encoded, best["order"], vocab)
    n_tokens = sum(len(ids) + 1 for ids in encoded)
    seconds = time.perf_counter() - started
    n_held_out = sum(len(held) for _, held in pairs)
    metrics = {
        "train_nll": mean_nll(model, encoded),
        "val_nll": best["val_nll"],
        "best_order": best["order"],
        "train_seconds": round(seconds, 3),  # every order fitted and scored
        "chars_per_second": round(n_tokens / max(time.perf_counter() - fit_started, 1e-9), 1),
        "n_train_names": len(fitted_on),
        "n_val_names": n_held_out,
        "val_skipped": len(held_out_names) - n_held_out,
    }
    model.metadata = {
        "data_path": str(data), "data_sha256": data_sha256(names), "split": description,
        "train_config": {"model": "markov", **asdict(cfg)}, "metrics": metrics,
        "history": history,
        "ngram_sizes": [len(model.arrays[f"k{k}.keys"]) for k in range(1, model.config.order + 1)],
    }
    checkpoint.save(out, model.checkpoint(model.metadata))
    log(f"best held-out NLL {best['val_nll']:.4f} nats/char at order {model.config.order} "
        f"({seconds:.2f} s in all); counted on {len(encoded)} names"
        f"{'' if cfg.repeats else ' (each distinct name once)'}")
    return model


def config_from_flags(args) -> MarkovTrainConfig:
    """The flags of `python -m app.train --model markov`: the shared --data, --out, --force,
    --val-fraction and --seed (defaults from the neural TrainConfig, so the split is the same).
    Raises FlagError for any other flag or a value out of range."""
    neural = [flag(f.name) for f in fields(TrainConfig)
              if f.name not in ("model", "val_fraction", "seed", "members", "repeats")
              and getattr(args, f.name, None) is not None] + (["--resume"] if args.resume else [])
    if neural:
        raise FlagError(f"{', '.join(neural)} does not apply to --model markov (it takes "
                        f"--data, --out, --force, --members, --val-fraction, --seed and "
                        f"--repeats)")
    given, defaults = given_flags(args), TrainConfig()
    if "val_fraction" in given and given.get("members", defaults.members) > 1:
        raise FlagError(f"--val-fraction does not apply {VAL_FRACTION_IDLE}")
    return MarkovTrainConfig(val_fraction=given.get("val_fraction", defaults.val_fraction),
                             seed=given.get("seed", defaults.seed),
                             members=given.get("members", defaults.members),
                             repeats=given.get("repeats", defaults.repeats))
