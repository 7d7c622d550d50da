"""Fitting a mezcla: the weight of each component, on names neither trained on.

P(c | history) = w * P_lstm(c | history) + (1 - w) * P_ngram(c | history). By default w is a
gate (``app.lm.gate``): it changes with the context, from how sure each model is there and how
much they agree. With ``weighting="scalar"`` it is one number, maximising the likelihood of the
validation names (EM on the per-token probabilities, a concave problem). A gated mezcla then
adds a share of the two multiplied (``app.lm.product``) when that helps on the same names. All of
it is fitted out of fold for cross-fitted components. The CLI is ``python -m app.mixture``; the model class,
``MixtureLM``, lives in ``app.lm.ensemble``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from app.data.corpus import (
    DEFAULT_NAMES,
    DataError,
    data_sha256,
    learned_rows,
    make_batch,
    read_corpus,
    split_names,
)
from app.data.folds import describe, kfold
from app.lm.ensemble import MixtureLM
from app.lm.forced import forced_log_probs
from app.lm.gate import fit_gate
from app.lm.markov import MarkovLM
from app.lm.product import Product


def fit_weights(probs: np.ndarray, iterations: int = 500, tol: float = 1e-10) -> np.ndarray:
    """Mixture weights maximising sum(log(probs @ w)) for probs (N, K), by EM from uniform."""
    w = np.full(probs.shape[1], 1.0 / probs.shape[1])
    for _ in range(iterations):
        resp = probs * w
        resp /= resp.sum(axis=1, keepdims=True)
        new = resp.mean(axis=0)
        if np.abs(new - w).max() < tol:
            return new
        w = new
    return w


WEIGHTINGS = ("gate", "scalar")
PRODUCT_WEIGHTS = np.linspace(0.3, 0.9, 13)      # the grid fit_product searches: v ...
PRODUCT_SHARPNESS = (0.9, 1.0, 1.1, 1.2, 1.3)    # ... and s


def fit_product(log_gated: np.ndarray, log_a: np.ndarray, log_b: np.ndarray,
                target: np.ndarray) -> tuple[Product, float]:
    """The product term (``app.lm.product``) maximising the likelihood of N scored tokens, and
    its mean NLL: (v, s) on a grid, and for each its share by EM (a concave problem), so the fit
    is deterministic. log_gated, log_a, log_b: (N, V); target: (N,)."""
    rows = np.arange(len(target))
    p_gated = np.exp(log_gated[rows, target])
    best, best_nll = Product(0.5, 1.0, 0.0), float(-np.log(p_gated).mean())
    for weight in PRODUCT_WEIGHTS:
        for sharpness in PRODUCT_SHARPNESS:
            term = Product(float(weight), sharpness, 0.0)
            probs = np.column_stack([p_gated, np.exp(term.log_product(log_a, log_b)[rows, target])])
            share = min(float(fit_weights(probs)[1]), 0.99)   # a share of 1 drops the gate
            nll = float(-np.log(probs @ [1.0 - share, share]).mean())
            if nll < best_nll:
                best, best_nll = Product(float(weight), sharpness, share), nll
    return best, best_nll


def build(neural, ngram, data: Path = DEFAULT_NAMES, log=print, weighting: str = "gate",
          product: bool = True) -> tuple[MixtureLM, dict]:
    """Tune the mixture of two loaded models on their shared validation names.

    Returns the mixture and a summary {component and mixture validation NLL, weight, curve}.
    Raises DataError when the components were not trained on the same data and split.
    """

    started = time.perf_counter()
    corpus = read_corpus(data)
    names = corpus.names
    cross_fitted = neural.metadata.get("train_config", {}).get("members", 1) > 1
    # a cross-fitted ensemble's weights are fitted on n-grams counted afresh on its own folds,
    # so the n-gram's own split (the folds that chose its order) need not be the same
    for key in ("data_sha256",) if cross_fitted else ("data_sha256", "split"):
        values = {neural.metadata.get(key), ngram.metadata.get(key)}
        if len(values) != 1:
            raise DataError(f"the components differ in {key}: {sorted(map(str, values))}")
    if data_sha256(names) != neural.metadata["data_sha256"]:
        raise DataError(f"{data}: not the data the components were trained on")
    cfg = neural.metadata["train_config"]
    if cross_fitted:   # no name is left out, so out of fold
        (log_neural, log_ngram, target), val, description = out_of_fold_log_probs(
            neural, ngram, corpus, cfg)
    else:
        split = split_names(names, cfg["val_fraction"], cfg["seed"], strata=corpus.states)
        val, description = [n for n in split.val if not neural.vocab.unknown(n)], split.description
        (log_neural, target), (log_ngram, _) = (scored_tokens(m, val) for m in (neural, ngram))
    rows = np.arange(len(target))
    nll = -np.stack([log_neural[rows, target], log_ngram[rows, target]], axis=1)   # (N, 2)
    probs = np.exp(-nll)
    weights = fit_weights(probs)
    scalar_nll = float(-np.log(probs @ weights).mean())
    gate, val_nll, term, gated_nll = None, scalar_nll, None, None
    if weighting == "gate":
        fitted = fit_gate(log_neural, log_ngram, target, start_weight=float(weights[0]))
        log_gated = fitted.mix(log_neural, log_ngram)
        gated_nll = float(-log_gated[rows, target].mean())
        if gated_nll < scalar_nll:     # else one weight is all these names support
            gate, val_nll = fitted, gated_nll
            if product:
                fitted_term, product_nll = fit_product(log_gated, log_neural, log_ngram, target)
                if fitted_term.share > 0:
                    term, val_nll = fitted_term, product_nll
    curve = [{"weight": round(float(w), 2), "val_nll": float(-np.log(probs @ [w, 1 - w]).mean())}
             for w in np.linspace(0.0, 1.0, 21)]
    summary = {
        "weight": float(weights[0]),
        "weighting": "scalar" if gate is None else "gate",
        "val_nll": val_nll,
        "scalar_val_nll": scalar_nll,
        "gated_val_nll": gated_nll,
        "product": None if term is None else term.to_dict(),
        "component_val_nll": {neural.kind: float(nll[:, 0].mean()),
                              ngram.kind: float(nll[:, 1].mean())},
        "val_names": val,
    }
    for name, value in summary["component_val_nll"].items():
        log(f"{name:8s} validation NLL {value:.4f}")
    log(f"mezcla   validation NLL {scalar_nll:.4f} with one weight, {weights[0]:.3f} on "
        f"{neural.kind} and {weights[1]:.3f} on {ngram.kind}")
    if gate is not None:
        log(f"mezcla   validation NLL {gated_nll:.4f} with the gate")
    if term is not None:
        log(f"mezcla   validation NLL {val_nll:.4f} with {term.share:.2f} of the product "
            f"(weight {term.weight:.2f}, sharpness {term.sharpness})")
    elif gate is not None and product:
        log("the product term did not help on these names: none")
    if gate is None and weighting == "gate":
        log("the gate did not beat one weight on these names: one weight it is")
    seconds = time.perf_counter() - started
    metrics = {
        "val_nll": summary["val_nll"],
        "scalar_val_nll": scalar_nll,
        "gated_val_nll": gated_nll,
        "weights": weights.tolist(),
        "component_val_nll": summary["component_val_nll"],
        # the components' training plus tuning the weight
        "train_seconds": round(neural.metadata["metrics"]["train_seconds"]
                               + ngram.metadata["metrics"]["train_seconds"] + seconds, 2),
        "tune_seconds": round(seconds, 3),
        "n_val_names": len(val),
    }
    metadata = {
        "data_path": str(data), "data_sha256": neural.metadata["data_sha256"],
        "split": description, "metrics": metrics,
        "train_config": {"model": MixtureLM.kind, "val_fraction": cfg["val_fraction"],
                         "seed": cfg["seed"], "members": cfg.get("members", 1),
                         "components": [neural.kind, ngram.kind], "weighting": weighting,
                         "product": product},
        "history": curve,  # validation NLL against the neural component's weight
    }
    return MixtureLM([neural, ngram], weights, metadata, gate=gate, product=term), summary


def scored_tokens(model, names: list[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(N, V) log-probabilities at every token of ``names``, end tokens included, and the (N,)
    tokens that came, in the same order for any model given the same names."""
    rows, targets = [], []
    for start in range(0, len(names), batch_size):
        batch = make_batch([model.vocab.encode(n) for n in names[start:start + batch_size]])
        logp = forced_log_probs(model, batch)                                 # (T, B, V)
        t, b = np.nonzero(batch.mask)
        rows.append(logp[t, b])
        targets.append(batch.targets[t, b])
    return np.concatenate(rows), np.concatenate(targets)


def fold_components(members: list, ngram_order: int, names: list[str], states, k: int,
                    seed: int):
    """Per fold of a cross-fitted ensemble: (its one member that never saw the fold, an n-gram
    counted afresh at ``ngram_order`` on the other folds, the fold's split). The n-gram counts
    shared names as the members were trained (``TrainConfig.repeats``; checkpoints from before
    the option counted every occurrence)."""
    splits = kfold(names, k, seed, states)
    if len(members) != len(splits):
        raise DataError(f"the ensemble has {len(members)} members for {len(splits)} folds")
    vocab = members[0].vocab
    repeats = members[0].metadata.get("train_config", {}).get("repeats", True)
    for member, split in zip(members, splits, strict=True):
        counted = [vocab.encode(split.train[i]) for i in learned_rows(split.train, repeats)]
        yield member, MarkovLM.fit(counted, ngram_order, vocab), split


def out_of_fold_log_probs(ensemble, ngram, corpus, cfg: dict) -> tuple[tuple, list[str], str]:
    """(log P neural (N, V), log P n-gram (N, V), target (N,)) at every token of every name
    under a cross-fitted ensemble's and an n-gram's out-of-fold predictions, the names in fold
    order, and the folds' description.

    Fold i is scored by member i, the one that never saw it, and by the n-gram counted afresh
    (at the served order) on the other folds: the weight is then fitted on names neither
    component trained on. It is a conservative estimate: the served ensemble averages every
    member and the served n-gram counts every name, both stronger than one fold's.
    """

    vocab, neural, counted, targets, names = ensemble.vocab, [], [], [], []
    for member, fold_ngram, split in fold_components(ensemble.components, ngram.config.order,
                                                     corpus.names, corpus.states,
                                                     cfg["members"], cfg["seed"]):
        held_out = [n for n in split.val if not vocab.unknown(n)]
        (log_member, target), (log_ngram, _) = (scored_tokens(m, held_out)
                                                for m in (member, fold_ngram))
        neural.append(log_member)
        counted.append(log_ngram)
        targets.append(target)
        names += held_out
    return ((np.concatenate(neural), np.concatenate(counted), np.concatenate(targets)), names,
            describe(cfg["members"], cfg["seed"], corpus.states is not None))


def is_cross_fitted(model) -> bool:
    """True for a mezcla built on a cross-fitted ensemble, the only kind whose out-of-fold
    predictions exist (an n-gram keeps no folds: it counts every name)."""
    return (model.kind == MixtureLM.kind
            and model.metadata.get("train_config", {}).get("members", 1) >= 2)


def check_cross_fitted(model) -> None:
    """Raise DataError unless ``is_cross_fitted(model)``."""
    if not is_cross_fitted(model):
        raise DataError("out-of-fold targets need a mezcla of a cross-fitted ensemble "
                        f"(python -m app.mixture); this teacher is of kind {model.kind!r}")


def out_of_fold_mixtures(mezcla: MixtureLM, names: list[str], states=None):
    """Per fold of a mezcla built by ``build`` on ``names``: the mezcla as it would be without
    that fold (its ensemble's one member that never saw it and an n-gram counted without it,
    with the same weights, gate and product term), and the fold's split."""
    check_cross_fitted(mezcla)
    cfg = mezcla.metadata["train_config"]
    members, ngram = mezcla.components[:-1], mezcla.components[-1]
    side_weights = [float(mezcla.weights[:-1].sum()), float(mezcla.weights[-1])]
    for member, fold_ngram, split in fold_components(members, ngram.config.order, names, states,
                                                     cfg["members"], cfg["seed"]):
        yield (MixtureLM([member, fold_ngram], side_weights, gate=mezcla.gate,
                         product=mezcla.product), split)
