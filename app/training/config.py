"""The flags of ``python -m app.train``: one table of ranges serves --help and the checks.

Standard library only, so ``--help`` and Ctrl-C while the CLI starts never wait for numpy.
Every flag is checked before any data is read or any weight allocated.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from app.flags import SEED, FlagError, Range, check_range, flag

NEURAL_KINDS = ("lstm", "rnn")           # app.nn.network.CELLS (a test keeps them equal)
OPTIMIZER_NAMES = ("adagrad", "adam")    # app.nn.optim.OPTIMIZERS


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run; defaults are the best found for each kind."""

    model: str = "lstm"
    hidden: int = 160
    layers: int = 1
    embed: int = 64
    dropout: float = 0.4
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-2
    optimizer: str = "adam"
    clip: float = 5.0
    weight_decay: float = 0.0
    lr_decay: float = 0.5
    ema: float = 0.998        # decay of the weight average evaluated and saved; 0 = raw weights
    patience: int = 4
    val_fraction: float = 0.1
    seed: int = 0
    condition: str = "none"   # "estado": the model is told each name's state
    cond_embed: int = 16
    # > 1: an ensemble cross-fitted on this many folds (app.training.crossfit); 7 members (each on
    # 6/7 of the names) beat 5 in every fold for both kinds (app.cv labels lstm-7, rnn-7)
    members: int = 7
    student: bool = False     # serve one network distilled from the ensemble's mezcla (app.training.student)
    locked_dropout: bool = False  # AWD-LSTM regularisers (see network.ModelConfig), off by default
    weight_drop: float = 0.0
    embed_dropout: float = 0.0
    repeats: bool = False     # train on a shared name once per municipality (else once: corpus.first_occurrences)


# per-kind defaults, applied where the user gave no flag
KIND_DEFAULTS: dict[str, dict] = {
    "lstm": {},
    # counting each name once did not help it (1.618 against 1.608, worse in 4 of 5 folds), so it
    # keeps repeats
    "rnn": {"layers": 2, "hidden": 192, "embed": 32, "dropout": 0.3, "lr": 6e-3, "ema": 0.995,
            "repeats": True},
}

# what a checkpoint is: --resume refuses a flag that would change one of these
FIXED_ON_RESUME = ("hidden", "layers", "embed", "dropout", "condition", "cond_embed",
                   "val_fraction", "seed", "members", "locked_dropout", "weight_drop",
                   "embed_dropout", "student")


# with members, each holds out its own fold: a validation fraction would split nothing
VAL_FRACTION_IDLE = "with --members > 1 (each member holds out its own fold; use --members 1)"

# flags that shape nothing unless another setting is on: refused (as --model markov refuses the
# neural ones) rather than ignored; each with when it applies and why
APPLIES: dict[str, tuple[Callable[[TrainConfig], bool], str]] = {
    "cond_embed": (lambda cfg: cfg.condition != "none",
                   "without --condition estado (it is the size of the state embedding)"),
    "locked_dropout": (lambda cfg: cfg.dropout > 0,
                       "with --dropout 0 (it shares the dropout masks across time steps)"),
    "val_fraction": (lambda cfg: cfg.members == 1, VAL_FRACTION_IDLE),
}

# the maxima keep a model within what numpy can train on one machine (a larger one would
# need tens of GiB before its first step); the memory check in app.training.trainer is the final word
RANGES: dict[str, Range] = {
    "hidden": Range(1, 4096),
    "layers": Range(1, 8),
    "embed": Range(0, 1024),
    "cond_embed": Range(1, 256),
    "dropout": Range(0, 1, high_open=True),
    "weight_drop": Range(0, 1, high_open=True),
    "embed_dropout": Range(0, 1, high_open=True),
    "epochs": Range(1, 10_000),
    "batch_size": Range(1, 4096),
    "lr": Range(0, 10, low_open=True),
    "clip": Range(0, 1000),
    "weight_decay": Range(0, 1),
    "lr_decay": Range(0, 1, low_open=True),
    "ema": Range(0, 1, high_open=True),
    "patience": Range(1, 1000),
    "val_fraction": Range(0, 1, low_open=True, high_open=True),
    "seed": SEED,
    "members": Range(1, 20),
    "jobs": Range(1, 64),
}


def _help(name: str, text: str) -> str:
    """``text``, the flag's range and its default (per kind where the kinds differ)."""
    lstm = getattr(TrainConfig(), name)
    rnn = KIND_DEFAULTS["rnn"].get(name, lstm)
    default = f"default: {lstm}" if lstm == rnn else f"default: {lstm} for lstm, {rnn} for rnn"
    allowed = f"in {RANGES[name]}; " if name in RANGES else ""
    return f"{text} ({allowed}{default})".replace("%", "%%")


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.train", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted([*NEURAL_KINDS, "markov"]), default="lstm",
                   help="recurrent cell, or markov for the n-gram baseline (default: %(default)s)")
    p.add_argument("--data", type=Path,
                   help="UTF-8 text file, one name per line, or a CSV with estado and municipio "
                        "columns (default: data/municipios.txt; with --condition estado, "
                        "data/municipios_por_estado.csv)")
    p.add_argument("--condition", choices=["none", "estado"],
                   help="'estado' trains a model told each name's state (default: none)")
    p.add_argument("--cond-embed", type=int,
                   help=_help("cond_embed", "size of the state embedding, with --condition estado"))
    p.add_argument("--out", type=Path,
                   help="the served checkpoint: replaced at the end only if this run beats it "
                        "on the same validation names (default: models/<model>.npz)")
    p.add_argument("--force", action="store_true",
                   help="replace --out at the end even if it scores better than this run")
    p.add_argument("--hidden", type=int, help=_help("hidden", "hidden units per layer"))
    p.add_argument("--layers", type=int, help=_help("layers", "recurrent layers"))
    p.add_argument("--embed", type=int, help=_help("embed", "character embedding size, 0 = one-hot"))
    p.add_argument("--dropout", type=float, help=_help("dropout", "dropout rate"))
    p.add_argument("--locked-dropout", action="store_const", const=True,
                   help=_help("locked_dropout", "one dropout mask per name, shared by all its "
                                                "time steps (variational dropout), instead of a "
                                                "new one at every step; needs --dropout > 0"))
    p.add_argument("--weight-drop", type=float,
                   help=_help("weight_drop", "DropConnect on the recurrent weights: each one "
                                             "zeroed with this probability, one mask per batch"))
    p.add_argument("--embed-dropout", type=float,
                   help=_help("embed_dropout", "drop whole characters from a batch's input with "
                                               "this probability"))
    p.add_argument("--epochs", type=int, help=_help("epochs", "maximum epochs"))
    p.add_argument("--batch-size", type=int, help=_help("batch_size", "names per minibatch"))
    p.add_argument("--lr", type=float, help=_help("lr", "learning rate"))
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help=_help("optimizer", "optimiser"))
    p.add_argument("--clip", type=float, help=_help("clip", "max global gradient norm, 0 = off"))
    p.add_argument("--weight-decay", type=float, help=_help("weight_decay", "decoupled weight decay"))
    p.add_argument("--lr-decay", type=float,
                   help=_help("lr_decay", "multiply the learning rate by this after an epoch "
                                          "without improvement; 1 = constant"))
    p.add_argument("--ema", type=float,
                   help=_help("ema", "evaluate and save a moving average of the weights with "
                                     "this decay per step, 0 = the raw weights"))
    p.add_argument("--patience", type=int,
                   help=_help("patience", "epochs without improvement before stopping"))
    p.add_argument("--val-fraction", type=float,
                   help=_help("val_fraction", "share of distinct names held out"))
    p.add_argument("--seed", type=int,
                   help=_help("seed", "seed for init, split, shuffling and dropout"))
    p.add_argument("--members", type=int,
                   help=_help("members", "1: one model, early-stopped on --val-fraction of the "
                                         "names; K > 1: an ensemble of K members, member i "
                                         "trained on all names but fold i of K and early-stopped "
                                         "on it, so that together they see every name"))
    p.add_argument("--student", action=argparse.BooleanOptionalAction,
                   help="serve one LSTM distilled from the mezcla of the cross-fitted ensemble "
                        "and an n-gram, trained here too; the student keeps python -m "
                        "app.distill's defaults, the other flags shape the ensemble (default: on "
                        "for lstm without --condition; needs --members > 1)")
    p.add_argument("--repeats", action=argparse.BooleanOptionalAction,
                   help="train on a name that several municipalities share once per "
                        "municipality (default: off, once, for lstm and markov; on for rnn, "
                        "which counted once did worse in cross-validation); held out, it counts "
                        "every time either way")
    p.add_argument("--jobs", type=int,
                   help=f"members trained at once, one process and one core each; a single "
                        f"model or the student takes a second core for a helper thread when "
                        f"this is 2 or more (in {RANGES['jobs']}; default: this machine's "
                        f"{os.cpu_count()} cores)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run toward --out (or --out itself) with its "
                        "optimizer state and epoch counter; for the lstm student, keep its "
                        "ensemble's finished members and train the rest again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def given_flags(args: argparse.Namespace) -> dict:
    """The TrainConfig fields set on the command line, each checked against its range."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.name != "model" and getattr(args, f.name, None) is not None}
    for name, value in given.items():
        if name in RANGES:
            check_range(name, value, RANGES[name])
    return given


def check_jobs(args: argparse.Namespace) -> int:
    """--jobs, checked; by default one job per core. Ensembles train members at once; a single
    model uses two for its helper thread."""
    jobs = (os.cpu_count() or 1) if args.jobs is None else args.jobs
    check_range("jobs", jobs, RANGES["jobs"])
    if args.jobs is not None and args.model == "markov":
        raise FlagError("--jobs does not apply to --model markov (it counts in one pass)")
    return jobs


def student_by_default(model: str, condition: str | None, members: int | None) -> bool:
    """The served lstm is a student of the mezcla, unless told the state or made of one model."""
    members = TrainConfig.members if members is None else members
    return model == "lstm" and condition in (None, "none") and members > 1


def wants_student(args: argparse.Namespace) -> bool:
    """Whether these flags ask for the student recipe (``--student``, or its default)."""
    if args.student is not None:
        return args.student
    return student_by_default(args.model, args.condition, args.members)


def resolve_config(args: argparse.Namespace, resumed: dict | None = None) -> TrainConfig:
    """Flags given on the command line win; then the resumed run's config (with --resume);
    then the kind's defaults; then TrainConfig's. A flag that would change what the resumed
    checkpoint is (its size, its split), or that would shape nothing (``APPLIES``), is refused
    rather than silently ignored."""
    given = given_flags(args)
    values = {**KIND_DEFAULTS[args.model], **(resumed or {}), **given, "model": args.model}
    if resumed is not None:
        if resumed.get("model", args.model) != args.model:   # its hyperparameters are its kind's
            raise FlagError(f"--resume continues a {resumed['model']} run, not {args.model}: "
                            f"give --model {resumed['model']} or start a new run without --resume")
        conflicts = [f"{flag(k)} {given[k]} (it has {resumed[k]})" for k in FIXED_ON_RESUME
                     if k in given and k in resumed and given[k] != resumed[k]]
        if conflicts:
            raise FlagError(f"--resume continues a run as it was built; drop "
                            f"{', '.join(conflicts)} or start a new run without --resume")
    if "student" not in given and "student" not in (resumed or {}):
        values["student"] = student_by_default(values["model"], values.get("condition"),
                                               values.get("members"))
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in values.items() if k in known})
    idle = [f"{flag(name)} does not apply {why}" for name, (applies, why) in APPLIES.items()
            if name in given and not applies(cfg)]
    if idle:
        raise FlagError("; ".join(idle))
    if cfg.student and (cfg.model != "lstm" or cfg.condition != "none" or cfg.members == 1):
        raise FlagError(f"--student distils an unconditioned LSTM ensemble: it needs --model lstm, "
                        f"--members > 1 and no --condition (got --model {cfg.model}, --members "
                        f"{cfg.members}, --condition {cfg.condition})")
    return cfg


def check_writable(out: Path, run: Path) -> None:
    """Fail now, not after the training, if ``out`` or the run file ``run`` cannot be written."""
    if out.is_dir():
        raise FlagError(f"--out {out} is a directory; give a file such as {out / 'model.npz'}")
    for folder in (out.parent, run.parent):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            why = "a file, not a folder" if isinstance(exc, FileExistsError) else exc.strerror
            raise FlagError(f"--out {out}: cannot write in {folder} ({why})") from None
    if out.exists() and not os.access(out, os.R_OK):
        raise FlagError(f"--out {out}: cannot read the served checkpoint to compare with it")
