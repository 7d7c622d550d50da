"""The comparison report: every model in ``models/``, its cost, its validation NLL and its samples.

    python -m app.evaluate --report

For each model: parameter count, validation NLL per char, training time and chars/s; and at each
temperature, over 2,000 samples drawn by the service's sampler: novelty (not a real name), copies
(a training name), held-out hits (a validation name the model never saw), distinct share, mean
length and share of names with more than three words, against the real list, plus 20 examples.
Writes ``models/report.json`` and prints Markdown tables.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.data.corpus import (
    DATA_DIR,
    DEFAULT_NAMES,
    Corpus,
    data_sha256,
    fold,
    read_corpus,
    read_names,
    split_names,
)
from app.eval.fidelity import fidelity_report
from app.eval.fidelity import markdown as fidelity_markdown
from app.generation.drawing import draw
from app.generation.sampling import MAX_LENGTH_DEFAULT, draw_conditions
from app.lm.base import load_models
from app.lm.checkpoint import atomic_write
from app.paths import MODELS_DIR

TEMPERATURES = (0.5, 0.8, 1.0, 1.2)
SAMPLES = 2000
EXAMPLES = 20
CHUNK = 250                       # samples per draw() call: one progress-bar tick


def words(name: str) -> int:
    return len(name.split())


def name_stats(names: Sequence[str]) -> dict:
    """Length and word-count profile of a list of names (real or sampled)."""
    return {
        "n": len(names),
        "mean_length": float(np.mean([len(n) for n in names])) if names else None,
        "over_three_words": float(np.mean([words(n) > 3 for n in names])) if names else 0.0,
    }


def sample_stats(samples: Sequence[str | None], real_names: Sequence[str],
                 train_names: Sequence[str], n_examples: int = EXAMPLES) -> dict:
    """Metrics of raw samples (None = hit the length cap unfinished), compared after ``fold``.

    novelty_rate: share of finished samples not in the real list; copy_rate: share that
    reproduce a training name; held_out_rate: share that are real but held out from training
    (rediscovered); the three add up to 1. distinct_rate: distinct finished samples / finished.
    """
    finished = [s for s in samples if s is not None]
    real = {fold(n) for n in real_names}
    train = {fold(n) for n in train_names}
    keys = [fold(s) for s in finished]
    n = max(len(finished), 1)
    examples = list(dict.fromkeys(finished))[:n_examples]
    return {
        "samples": len(samples),
        "unfinished_rate": (len(samples) - len(finished)) / max(len(samples), 1),
        "novelty_rate": sum(k not in real for k in keys) / n,
        "copy_rate": sum(k in train for k in keys) / n,
        "held_out_rate": sum(k in real and k not in train for k in keys) / n,
        "distinct_rate": len(set(keys)) / n,
        **{k: v for k, v in name_stats(finished).items() if k != "n"},
        "examples": examples,
    }


def model_summary(name: str, model) -> dict:
    """What a model cost and how well it predicts held-out names, from its checkpoint."""
    metrics = model.metadata.get("metrics", {})
    distilled = model.metadata.get("distillation", {})   # a student's (app.training.distillation)
    return {
        "name": name,
        "kind": model.kind,
        "n_params": model.n_params,
        "val_nll": metrics.get("val_nll"),
        "train_seconds": metrics.get("train_seconds"),
        "chars_per_second": metrics.get("chars_per_second"),
        "weights": metrics.get("weights"),  # a mixture's component weights
        "gated": getattr(model, "gate", None) is not None,   # its weight changes with the context
        "product": getattr(model, "product", None) is not None,   # it also multiplies its sides
        "distilled_from": distilled.get("teacher_kind"),   # a student's teacher, or None
        # it learned, on each real name, what its teacher says without having seen that name
        "out_of_fold": bool(distilled.get("out_of_fold")),
        "split": model.metadata.get("split"),  # which names its validation NLL is measured on
    }


def training_names(model, real_names: Sequence[str]) -> list[str]:
    """The names a model was trained on, split again as its training run did: all of them
    for a model cross-fitted over folds or a distilled student (its teacher saw them all)."""
    cfg = model.metadata.get("train_config", {})
    data = Path(model.metadata.get("data_path", DEFAULT_NAMES))
    if not data.exists():  # trained in another checkout: the same file in this one
        data = DATA_DIR / data.name
    corpus = read_corpus(data) if data.exists() else Corpus(list(real_names))
    if cfg.get("members", 1) > 1 or "distillation" in model.metadata:
        return list(corpus.names)
    return split_names(corpus.names, cfg.get("val_fraction", 0.1), cfg.get("seed", 0),
                       strata=corpus.states).train


def sample_model(model, n: int, temperature: float, rng: np.random.Generator,
                 bar: tqdm | None = None) -> list[str | None]:
    """``n`` raw samples in chunks (nothing filtered: copies and repeats are what we measure)."""
    out: list[str | None] = []
    while len(out) < n:
        count = min(CHUNK, n - len(out))
        # a model conditioned on the state draws one per name, in proportion to the state's
        # municipalities, so its samples are comparable with the real list as a whole
        cond = draw_conditions(model, count, rng)
        names, _ = draw(model, count, "", MAX_LENGTH_DEFAULT, temperature, None, rng, cond)
        out.extend(names)
        if bar is not None:
            bar.update(count)
    return out


def build_report(models: dict, real_names: Sequence[str], samples: int = SAMPLES,
                 temperatures: Sequence[float] = TEMPERATURES, seed: int = 0,
                 progress: bool = True) -> dict:
    """The report for loaded models (name -> model); sampling is seeded per model and T."""
    total = samples * len(temperatures) * len(models)
    report = {
        "data_sha256": data_sha256(real_names),
        "samples_per_temperature": samples,
        "temperatures": list(temperatures),
        "seed": seed,
        "real": name_stats(real_names),
        "models": [],
    }
    with tqdm(total=total, desc="sampling", unit="name", disable=not progress,
              dynamic_ncols=True) as bar:
        for name, model in models.items():
            train = training_names(model, real_names)
            entry = model_summary(name, model)
            entry["sampling"] = []
            for temperature in temperatures:
                bar.set_postfix(model=name, T=temperature)
                rng = np.random.default_rng([seed, zlib.crc32(name.encode()),
                                             round(temperature * 1000)])
                drawn = sample_model(model, samples, temperature, rng, bar)
                stats = sample_stats(drawn, real_names, train)
                entry["sampling"].append({"temperature": temperature, **stats})
            report["models"].append(entry)
    return report


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """Two Markdown tables: cost and validation NLL per model, then samples per temperature."""
    real = report["real"]
    lines = ["| modelo | parámetros | NLL validación (nats/car.) | entrenamiento (s) | car./s |",
             "|---|---:|---:|---:|---:|"]
    for m in report["models"]:
        lines.append(f"| {m['name']} | {m['n_params']:,} | {_fmt(m['val_nll'], '.3f')} | "
                     f"{_fmt(m['train_seconds'], '.1f')} | {_fmt(m['chars_per_second'], ',.0f')} |")
    lines += ["", f"Muestras: {report['samples_per_temperature']:,} por modelo y temperatura. "
              f"Nombres reales: longitud media {real['mean_length']:.1f}, "
              f"{real['over_three_words']:.1%} con más de tres palabras.", "",
              "| modelo | T | nuevos | copias | validación | distintos | longitud media "
              "| > 3 palabras | ejemplos |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m in report["models"]:
        for s in m["sampling"]:
            lines.append(f"| {m['name']} | {s['temperature']} | {s['novelty_rate']:.1%} | "
                         f"{s['copy_rate']:.1%} | {s['held_out_rate']:.1%} | "
                         f"{s['distinct_rate']:.1%} | {_fmt(s['mean_length'], '.1f')} | "
                         f"{s['over_three_words']:.1%} | {', '.join(s['examples'][:3])} |")
    if report.get("fidelity"):
        lines += ["", fidelity_markdown(report["fidelity"])]
    return "\n".join(lines)


def write_report(report: dict, path: Path) -> None:
    text = json.dumps(report, ensure_ascii=False, indent=1) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def run(models_dir: Path | None = None, names: Path | None = None, samples: int | None = None,
        progress: bool = True) -> dict:
    """Build the report for every model in ``models_dir`` (default models/), write it there as
    report.json, and print it as Markdown."""
    models_dir = models_dir or MODELS_DIR
    models = load_models(models_dir)
    report = build_report(models, read_names(names or DEFAULT_NAMES), samples or SAMPLES,
                          progress=progress)
    if any(getattr(model, "conditions", None) for model in models.values()):
        report["fidelity"] = fidelity_report(models)
    write_report(report, models_dir / "report.json")
    print(markdown(report))
    return report
