"""Fidelity: does a name generated for a state sound like that state? An independent judge says.

    python -m app.eval.fidelity                    # every state-conditioned model in models/
    python -m app.eval.fidelity --models /tmp/st --per-state 100 --temperature 0.8

The judge is a character n-gram multinomial naive Bayes (1- to 3-grams of the folded name framed
by ``^`` and ``$``, add-alpha smoothing, uniform prior over the states, so it judges how a name
sounds, not how many municipalities a state has). It learns the real names of each state on the
training side of the split the models use (10% of each state held out, seed 0). Its accuracy on
the held-out real names is the yardstick; its accuracy on ``per_state`` new names generated for
each state (the state asked for is the label) says how recognisably they come from their state.
Chance is 1 / number of states. ``python -m app.evaluate --report`` adds this to the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from app.data.corpus import DEFAULT_STATES_CSV, Corpus, fold, read_corpus, split_names
from app.data.gazetteer import Gazetteer, load_gazetteer
from app.flags import Range, parse_checked
from app.generation.sampling import TEMPERATURE_MAX, sample_names
from app.paths import MODELS_DIR

ORDERS = (1, 2, 3)
ALPHA = 0.5
PER_STATE = 100
TEMPERATURE = 0.8
RANGES = {"per_state": Range(1, 10_000), "temperature": Range(0, TEMPERATURE_MAX, low_open=True)}
VAL_FRACTION = 0.1   # as app.train: the held-out real names are the models' validation names
TOP = 3


def ngrams(name: str, orders: Sequence[int] = ORDERS) -> list[str]:
    """Character n-grams of the folded name, framed so that beginnings and endings count."""
    text = f"^{fold(name)}$"
    return [text[i:i + n] for n in orders for i in range(len(text) - n + 1)]


@dataclass(frozen=True)
class NaiveBayes:
    """Multinomial naive Bayes over character n-gram counts."""

    labels: list[str]
    features: dict[str, int]   # n-gram -> column
    log_prob: np.ndarray       # (C, F) log P(n-gram | label), smoothed
    log_prior: np.ndarray      # (C,)
    orders: tuple[int, ...] = ORDERS

    @classmethod
    def fit(cls, names: Sequence[str], labels: Sequence[str], orders: Sequence[int] = ORDERS,
            alpha: float = ALPHA, uniform_prior: bool = True) -> NaiveBayes:
        classes = list(dict.fromkeys(labels))
        class_of = {label: c for c, label in enumerate(classes)}
        features: dict[str, int] = {}
        rows, cols = [], []
        for name, label in zip(names, labels, strict=True):
            grams = ngrams(name, orders)
            cols += [features.setdefault(g, len(features)) for g in grams]
            rows += [class_of[label]] * len(grams)
        counts = np.zeros((len(classes), len(features)))   # (C, F)
        np.add.at(counts, (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)), 1.0)
        # add-alpha: every n-gram seen anywhere gets alpha pseudo-counts in every class
        log_prob = (np.log(counts + alpha)
                    - np.log(counts.sum(axis=1, keepdims=True) + alpha * len(features)))
        if uniform_prior:
            prior = np.full(len(classes), 1.0 / len(classes))
        else:
            prior = np.bincount([class_of[label] for label in labels], minlength=len(classes))
            prior = prior / prior.sum()
        return cls(classes, features, log_prob, np.log(prior), tuple(orders))

    def scores(self, names: Sequence[str]) -> np.ndarray:
        """(N, C) log P(label) + sum of log P(n-gram | label); unseen n-grams are skipped."""
        counts = np.zeros((len(names), len(self.features)))   # (N, F)
        for i, name in enumerate(names):
            for gram in ngrams(name, self.orders):
                column = self.features.get(gram)
                if column is not None:
                    counts[i, column] += 1.0
        return counts @ self.log_prob.T + self.log_prior

    def evaluate(self, names: Sequence[str], labels: Sequence[str], top: int = TOP) -> dict:
        """Accuracy, top-``top`` accuracy and mean per-label recall (balanced accuracy)."""
        if not names:
            return {"n": 0, "accuracy": None, f"top{top}": None, "balanced_accuracy": None,
                    "per_label": {}}
        scores = self.scores(names)
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        truth = np.array([self.labels.index(label) if label in self.labels else -1
                          for label in labels])
        hit = ranked[:, 0] == truth
        per_label = {label: float(hit[[lab == label for lab in labels]].mean())
                     for label in dict.fromkeys(labels)}
        return {"n": len(names), "accuracy": float(hit.mean()),
                f"top{top}": float((ranked == truth[:, None]).any(axis=1).mean()),
                "balanced_accuracy": float(np.mean(list(per_label.values()))),
                "per_label": per_label}


def generated_for_states(model, per_state: int, rng: np.random.Generator,
                         temperature: float = TEMPERATURE,
                         gazetteer: Gazetteer | None = None) -> tuple[list[str], list[str]]:
    """Up to ``per_state`` new names (not real ones) for each of the model's states, with the
    state asked for, through the service's sampler."""
    names, labels = [], []
    for i, estado in enumerate(model.conditions):
        result = sample_names(model, per_state, rng, temperature=temperature, novel=True,
                              gazetteer=gazetteer, estado=i)
        names += [s.name for s in result.names]
        labels += [estado] * len(result.names)
    return names, labels


def fidelity_report(models: dict, corpus: Corpus | None = None, per_state: int = PER_STATE,
                    temperature: float = TEMPERATURE, seed: int = 0,
                    val_fraction: float = VAL_FRACTION) -> dict:
    """The judge's accuracy on held-out real names and on each conditioned model's names."""
    corpus = corpus or read_corpus(DEFAULT_STATES_CSV)
    split = split_names(corpus.names, val_fraction, seed, strata=corpus.states)
    judge = NaiveBayes.fit(split.train, [corpus.states[i] for i in split.train_index])
    real = judge.evaluate(split.val, [corpus.states[i] for i in split.val_index])
    report = {
        "classifier": f"multinomial naive Bayes, character {min(ORDERS)}-{max(ORDERS)}-grams, "
                      f"add-{ALPHA} smoothing, uniform prior",
        "split": split.description,
        "states": len(judge.labels),
        "chance": 1.0 / len(judge.labels),
        "per_state": per_state,
        "temperature": temperature,
        "real_held_out": real,
        "models": [],
    }
    gazetteer = load_gazetteer()
    for name, model in models.items():
        if not getattr(model, "conditions", None):
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        with threadpool_limits(limits=1, user_api="blas"):   # small matmuls: threads only fight
            names, labels = generated_for_states(model, per_state, rng, temperature, gazetteer)
        report["models"].append({"name": name, **judge.evaluate(names, labels),
                                 "examples": dict(zip(labels[::per_state], names[::per_state],
                                                      strict=True))})
    return report


def _pct(value) -> str:
    return "—" if value is None else f"{value:.1%}"


def markdown(report: dict) -> str:
    """One table: the judge on held-out real names, then on each model's generated names."""
    lines = [f"Fidelidad por estado: {report['classifier']}; azar = {report['chance']:.1%} "
             f"({report['states']} estados). Los nombres generados son {report['per_state']} por "
             "estado: compárese su acierto con el acierto medio por estado de los reales.", "",
             "| nombres | cuántos | acierto | top-3 | acierto medio por estado |",
             "|---|---:|---:|---:|---:|"]
    rows = [("reales no vistos (validación)", report["real_held_out"])]
    rows += [(f"{m['name']}, {report['per_state']} por estado, T={report['temperature']}", m)
             for m in report["models"]]
    for label, r in rows:
        lines.append(f"| {label} | {r['n']:,} | {_pct(r['accuracy'])} | {_pct(r['top3'])} | "
                     f"{_pct(r['balanced_accuracy'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.eval.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=MODELS_DIR,
                        help="folder of checkpoints; the conditioned ones are judged "
                             "(default: models/)")
    parser.add_argument("--per-state", type=int, default=PER_STATE,
                        help=f"names generated per state and model (in {RANGES['per_state']}; "
                             f"default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE,
                        help=f"sampling temperature (in {RANGES['temperature']}; "
                             f"default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of a table")
    args = parse_checked(parser, argv, RANGES)
    if not args.models.is_dir():
        parser.error(f"--models {args.models}: no such folder")
    from app.lm.base import load_models
    models = load_models(args.models, log=lambda line: print(line, file=sys.stderr))
    if not any(getattr(model, "conditions", None) for model in models.values()):
        print(f"error: no state-conditioned model in {args.models} (train one with "
              f"python -m app.train --condition estado)", file=sys.stderr)
        return 2
    report = fidelity_report(models, per_state=args.per_state, temperature=args.temperature)
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
