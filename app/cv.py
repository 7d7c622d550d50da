"""K-fold cross-validation of the training recipes: held-out NLL per model, mean ± sd over folds.

    python -m app.cv --model lstm rnn markov mezcla --folds 5
    python -m app.cv --model lstm --label lstm-h192 --train-flags "--hidden 192" --jobs 2
    python -m app.cv --model lstm lstm_estado --data data/municipios_por_estado.csv
    python -m app.cv --model alumno --label alumno --teachers base --distill-flags "--samples 10000"
    python -m app.cv --model mezcla --label un-peso --mixture-flags "--weight scalar"

Every model is judged the way a user meets it: for each fold, its recipe (``python -m app.train``
with the defaults and ``--train-flags``, ``python -m app.mixture`` on that fold's lstm and
markov, or ``python -m app.distill`` with ``--distill-flags`` for ``alumno``, a student of that
fold's ``--teacher``) runs on the other folds' names only, and the fold's names, which it never saw, are scored:
NLL per character, end tokens included, over all the fold's tokens. The same folds
(``app.data.folds``, stratified by state for a CSV) serve every model, so differences between models
are paired. Each fold's files stay in ``runs/cv/<label>/fold<i>/`` (its names, models and logs), so
an interrupted run resumes where it stopped (``--teachers LABEL`` reads the students' teachers
from another run's folds, so students of one teacher are compared without retraining it), and
the summary is written to
``runs/cv/<label>/results.json`` (with ``--publish``, also to ``models/cv.json``, the table the
README and /comparar show).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app.data.corpus import DEFAULT_NAMES, Corpus, DataError, read_corpus
from app.data.folds import MAX_FOLDS, MIN_FOLDS, kfold
from app.flags import SEED, flag, parse_checked
from app.lm.base import load_model, names_nll, scorable
from app.lm.checkpoint import CheckpointError, atomic_write
from app.paths import MODELS_DIR, RUNS_DIR
from app.training.config import RANGES

CV_DIR = RUNS_DIR / "cv"
PUBLISHED = MODELS_DIR / "cv.json"
NEURAL = ("lstm", "rnn", "lstm_estado", "rnn_estado")
RECIPES = (*NEURAL, "markov", "mezcla", "alumno")
TEACHERS = ("mezcla", "lstm", "markov")
STAGE = {"mezcla": 1, "alumno": 2}   # a recipe runs after the ones it is built from
SERVED_AS = {"alumno": "lstm"}       # python -m app.train --model lstm serves the student


@dataclass(frozen=True)
class Fold:
    """One fold's folder: the training names as a file, and what is held out."""

    index: int
    folder: Path
    data: Path                  # the training names, as the recipe reads them
    held_out: list[str]
    held_out_states: list[str] | None
    teachers: Path              # the folder the student's teacher is read from


@dataclass(frozen=True)
class Flags:
    """What shapes the recipes beyond their defaults."""

    train: list[str]                        # for app.train (the neural recipes)
    distill: list[str] = field(default_factory=list)   # for app.distill (alumno)
    teacher: str = "mezcla"                 # the recipe alumno imitates
    mixture: list[str] = field(default_factory=list)   # for app.mixture (mezcla)


def write_fold(corpus: Corpus, split, index: int, folder: Path, csv_input: bool,
               teachers: Path | None = None) -> Fold:
    """The fold's training names in the input's own format (a CSV keeps the states)."""
    folder.mkdir(parents=True, exist_ok=True)
    if csv_input:
        data = folder / "train.csv"
        with open(data, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["cve_ent", "estado", "municipio"])
            for i in split.train_index:
                estado = corpus.states[i]
                writer.writerow([corpus.state_codes.get(estado, ""), estado, corpus.names[i]])
    else:
        data = folder / "train.txt"
        data.write_text("\n".join(split.train) + "\n", encoding="utf-8")
    states = [corpus.states[i] for i in split.val_index] if corpus.states else None
    return Fold(index, folder, data, split.val, states, teachers or folder)


def recipe_command(model: str, fold: Fold, flags: Flags, out: Path) -> list[str]:
    """The command that trains ``model`` on the fold's names into ``out`` (see the module
    docstring)."""
    if model == "alumno":
        return [sys.executable, "-m", "app.distill", "--teacher",
                str(fold.teachers / f"{flags.teacher}.npz"), "--data", str(fold.data),
                "--out", str(out), "--quiet", *flags.distill]
    if model == "mezcla":
        return [sys.executable, "-m", "app.mixture", "--neural", str(fold.folder / "lstm.npz"),
                "--ngram", str(fold.folder / "markov.npz"), "--data", str(fold.data),
                "--out", str(out), *flags.mixture]
    kind = model.removesuffix("_estado")
    command = [sys.executable, "-m", "app.train", "--model", kind, "--data", str(fold.data),
               "--out", str(out), "--quiet"]
    if model.endswith("_estado"):
        command += ["--condition", "estado"]
    # an ensemble's members train one after the other: --jobs here runs folds side by side; the
    # lstm recipe is the ensemble itself (its student is the alumno recipe, built from it)
    return command + (["--jobs", "1", "--no-student", *flags.train] if model in NEURAL else [])


def train_on_fold(model: str, fold: Fold, flags: Flags) -> Path:
    """Run the recipe unless its model is already there; its output goes to a log beside it."""
    out = fold.folder / f"{model}.npz"
    if not out.exists():
        # trained under another name and renamed once the recipe succeeds, so an interrupted
        # run never leaves a model that a resumed one would take as finished
        partial = fold.folder / f"{model}.partial.npz"
        partial.unlink(missing_ok=True)
        log = fold.folder / f"{model}.log"
        with open(log, "w", encoding="utf-8") as f:
            done = subprocess.run(recipe_command(model, fold, flags, partial), stdout=f,
                                  stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0 or not partial.exists():
            raise RuntimeError(f"{model} on fold {fold.index + 1} failed (exit {done.returncode}); "
                               f"see {log}")
        partial.replace(out)
    return out


def held_out_nll(path: Path, fold: Fold) -> dict:
    """Token-weighted NLL of the fold's held-out names under the model at ``path``."""
    model = load_model(path)
    keep, cond = scorable(model, fold.held_out, fold.held_out_states)
    per_name = names_nll(model, [fold.held_out[i] for i in keep], cond)
    n_tokens = sum(len(x) for x in per_name)
    return {"nll": float(sum(x.sum() for x in per_name)) / n_tokens, "n_tokens": n_tokens,
            "skipped": len(fold.held_out) - len(keep)}


def summarise(per_fold: list[dict]) -> dict:
    values = [f["nll"] for f in per_fold]
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "folds": per_fold}


def stages(models: list[str], teacher: str, own_teachers: bool) -> list[list[str]]:
    """The recipes to train, in stages: each after the ones it is built from."""
    needed = list(models)
    if "alumno" in needed and own_teachers:
        needed.append(teacher)
    if "mezcla" in needed:
        needed += ["lstm", "markov"]
    needed = list(dict.fromkeys(needed))
    return [s for s in ([m for m in needed if STAGE.get(m, 0) == i] for i in range(3)) if s]


def run(models: list[str], data: Path, k: int, seed: int, label: str, train_flags: list[str],
        jobs: int, runs_dir: Path = CV_DIR, log=print, distill_flags: list[str] = (),
        teacher: str = "mezcla", teachers: str | None = None,
        mixture_flags: list[str] = ()) -> dict:
    """Cross-validate every recipe in ``models`` on the same k folds; returns the summary.

    ``teachers``: the label of a run whose folds already hold the students' teachers."""
    corpus = read_corpus(data)
    csv_input = corpus.states is not None
    if any(m.endswith("_estado") for m in models) and not csv_input:
        raise DataError(f"{data}: the _estado models need a CSV with an estado column")
    base = runs_dir / label
    folds = [write_fold(corpus, split, i, base / f"fold{i + 1}", csv_input,
                        teachers and runs_dir / teachers / f"fold{i + 1}")
             for i, split in enumerate(kfold(corpus.names, k, seed, corpus.states))]
    if teachers and "alumno" in models:
        missing = [f.teachers / f"{teacher}.npz" for f in folds
                   if not (f.teachers / f"{teacher}.npz").exists()]
        if missing:
            raise DataError(f"--teachers {teachers}: no teacher at {missing[0]}; run that "
                            f"label with --model {teacher} first")
    flags = Flags(list(train_flags), list(distill_flags), teacher, list(mixture_flags))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for stage in stages(models, teacher, own_teachers=not teachers):
            jobs_done = [pool.submit(train_on_fold, m, fold, flags)
                         for m in stage for fold in folds]
            for job in jobs_done:
                job.result()
    results = {}
    for model in models:
        per_fold = [held_out_nll(fold.folder / f"{model}.npz", fold) for fold in folds]
        results[model] = summarise(per_fold)
        values = " ".join(f"{f['nll']:.4f}" for f in per_fold)
        log(f"{model:12s} {results[model]['mean']:.4f} ± {results[model]['sd']:.4f}   folds: {values}")
    summary = {"label": label, "data": str(data), "folds": k, "seed": seed,
               "train_flags": shlex.join([*train_flags, *mixture_flags]), "models": results}
    if "alumno" in models:
        summary.update(distill_flags=shlex.join(distill_flags), teacher=teacher)
    (base / "results.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def publish(summary: dict, path: Path = PUBLISHED, description: str = "",
            served: bool = False) -> None:
    """Add a run's results to ``models/cv.json``, the table /comparar and the README show:
    one row per (label, model), replaced when the same label and model run again; the
    ``description`` says in words what the recipe was, and ``served`` that it is the recipe of
    the models in models/ (the page then quotes these figures for them)."""
    table = json.loads(path.read_text("utf-8")) if path.exists() else {"rows": []}
    rows = [r for r in table["rows"]
            if (r["label"], r["model"]) not in {(summary["label"], m) for m in summary["models"]}]
    if served:   # one recipe makes each served model: the one it replaces is served no more
        names = {SERVED_AS.get(m, m) for m in summary["models"]}
        rows = [{**r, "served": False} if r.get("served_as", r["model"]) in names else r
                for r in rows]
    for model, result in summary["models"].items():
        rows.append({"label": summary["label"], "description": description or summary["label"],
                     "served": served, "served_as": SERVED_AS.get(model, model),
                     "model": model, "data": Path(summary["data"]).name,
                     "folds": summary["folds"], "seed": summary["seed"],
                     "train_flags": summary["train_flags"], "mean": result["mean"],
                     "sd": result["sd"], "fold_nll": [f["nll"] for f in result["folds"]]})
    atomic_write(path, lambda f: f.write((json.dumps({"rows": rows}, ensure_ascii=False, indent=1)
                                          + "\n").encode("utf-8")))


def split_flags(parser: argparse.ArgumentParser, option: str, text: str) -> list[str]:
    """``text`` split into flags as a shell would; parser.error (exit 2) naming ``option`` when
    it cannot be (an unclosed quote)."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        parser.error(f"{option} {text!r}: {str(exc).lower()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", choices=RECIPES, default=["lstm"],
                        help="recipes to cross-validate on the same folds (default: lstm)")
    parser.add_argument("--data", type=Path, default=DEFAULT_NAMES,
                        help="names file or INEGI CSV (default: data/municipios.txt)")
    parser.add_argument("--folds", type=int, default=5,
                        help=f"number of folds, {MIN_FOLDS}..{MAX_FOLDS} (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default: 0)")
    parser.add_argument("--train-flags", default="",
                        help='extra flags for the neural recipes, e.g. "--hidden 192 --dropout 0.3"')
    parser.add_argument("--mixture-flags", default="",
                        help='flags for the mezcla recipe (python -m app.mixture), e.g. "--weight scalar"')
    parser.add_argument("--distill-flags", default="",
                        help='extra flags for alumno\'s python -m app.distill, e.g. '
                             '"--samples 30000 --hidden 192"')
    parser.add_argument("--teacher", choices=TEACHERS, default="mezcla",
                        help="the fold's recipe that alumno imitates (default: mezcla)")
    parser.add_argument("--teachers", metavar="LABEL",
                        help="read alumno's teachers from the folds of this earlier run in "
                             "runs/cv/ (same data, folds and seed) instead of training them")
    parser.add_argument("--label", help="name of this run's folder in runs/cv/ (default: from the "
                                        "seed, folds and flags)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings run at once, each on one core (default: 1)")
    parser.add_argument("--publish", metavar="DESCRIPTION",
                        help="add the results to models/cv.json, the table /comparar shows, "
                             "with this description of the recipe (in Spanish, for the page)")
    parser.add_argument("--served", action="store_true",
                        help="with --publish: these are the recipes of the models in models/")
    args = parse_checked(parser, argv, {"seed": SEED, "jobs": RANGES["jobs"]})
    if args.label is not None and (Path(args.label).name != args.label
                                   or args.label in ("", ".", "..")):   # it names a folder
        parser.error(f"--label must be a plain folder name, got {args.label!r}")   # in runs/cv/
    if args.served and not args.publish:
        parser.error("--served needs --publish: it marks published rows as the served recipes")
    if not MIN_FOLDS <= args.folds <= MAX_FOLDS:   # before the data is read
        parser.error(f"--folds must be from {MIN_FOLDS} to {MAX_FOLDS}, got {args.folds}")
    if args.served and "lstm" in args.model:   # its row would take the student's place
        parser.error("--served: the served lstm is the alumno recipe; the lstm recipe is the "
                     "ensemble it learns from")
    flags, mixture_flags, distill_flags = (split_flags(parser, flag(name), getattr(args, name))
                                           for name in ("train_flags", "mixture_flags",
                                                        "distill_flags"))
    trained = {m for stage in stages(args.model, args.teacher, not args.teachers) for m in stage}
    idle = [(flags, "--train-flags", "a neural recipe", trained & set(NEURAL)),
            (mixture_flags, "--mixture-flags", "the mezcla recipe", "mezcla" in trained),
            (distill_flags, "--distill-flags", "the alumno recipe", "alumno" in trained),
            (args.teachers, "--teachers", "the alumno recipe", "alumno" in trained),
            (args.teacher != parser.get_default("teacher"), "--teacher", "the alumno recipe",
             "alumno" in trained)]
    for given, option, needs, applies in idle:   # refused rather than silently ignored
        if given and not applies:
            parser.error(f"{option} does nothing here: it is for {needs}, and this run "
                         f"trains {', '.join(sorted(trained))}")
    label = args.label or "-".join(["k" + str(args.folds), "s" + str(args.seed), Path(args.data).stem,
                                    *(f.lstrip("-") for f in flags + mixture_flags)])
    try:
        summary = run(args.model, args.data, args.folds, args.seed, label, flags, args.jobs,
                      distill_flags=distill_flags, teacher=args.teacher,
                      teachers=args.teachers, mixture_flags=mixture_flags)
        if args.publish:
            publish(summary, description=args.publish, served=args.served)
    except (DataError, CheckpointError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
