"""Score a trained model on a list of names: NLL per character, bits per character, perplexity.

    python -m app.evaluate --model models/lstm.npz --names data/municipios.txt
    python -m app.evaluate --report    # every model in models/ -> models/report.json

Prints one JSON object. Every name counts its end token, so a model is also judged on knowing
where names stop. Names with characters outside the model's vocabulary are skipped and listed.
A model conditioned on the state scores each name under its own state, so --names must then be
a CSV with an estado column (data/municipios_por_estado.csv); names of a state the model was
not trained on are skipped too.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from app.console import write_lines
from app.data.corpus import DataError, read_corpus
from app.lm.base import load_model, names_nll, scorable
from app.lm.checkpoint import CheckpointError


def evaluate_names(model, names: list[str], states: list[str] | None = None) -> dict:
    """NLL statistics of ``model`` on ``names`` (repeats count as often as they appear), each
    under its state in ``states`` when the model is conditioned on it."""
    keep, cond = scorable(model, names, states)
    known, kept = [names[i] for i in keep], set(keep)
    skipped = [name for i, name in enumerate(names) if i not in kept]
    per_name = names_nll(model, known, cond)
    n_tokens = sum(len(x) for x in per_name)
    total = float(sum(x.sum() for x in per_name))
    nll = total / n_tokens if n_tokens else math.nan
    return {
        "nll_per_char": nll,
        "bits_per_char": nll / math.log(2),
        "perplexity": math.exp(nll) if nll < 700 else math.inf,  # beyond: a float overflow
        "n_names": len(known),
        "n_tokens": n_tokens,
        "skipped": {"count": len(skipped), "names": skipped},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint (.npz) to score with")
    parser.add_argument("--names", type=Path,
                        help="UTF-8 file, one name per line, or a CSV with a municipio column "
                             "(as training reads it)")
    parser.add_argument("--report", action="store_true",
                        help="compare every model in models/ (NLL, cost, samples at several "
                             "temperatures); writes models/report.json and prints Markdown")
    args = parser.parse_args(argv)
    if args.report and (args.model or args.names):
        parser.error("--report compares every model in models/: omit --model and --names")
    if args.report:
        from app.eval import report  # samples through the service's sampler: only loaded when asked
        report.run()
        return 0
    if args.model is None or args.names is None:
        parser.error("--model and --names are required (or give --report)")
    try:
        model = load_model(args.model)
        corpus = read_corpus(args.names)
    except (CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if model.conditions and corpus.states is None:
        print(f"error: {args.model} is conditioned on the state and scores each name under its "
              f"own: --names must be a CSV with an estado column, such as "
              f"data/municipios_por_estado.csv", file=sys.stderr)
        return 2
    scores = evaluate_names(model, corpus.names, corpus.states)
    if not scores["n_tokens"]:
        print(f"error: {args.names}: no name can be scored: every one has characters outside "
              f"the model's vocabulary"
              + (" or a state it was not trained on" if model.conditions else ""), file=sys.stderr)
        return 2
    if not math.isfinite(scores["perplexity"]):
        print(f"error: {args.model} gives a NLL of {scores['nll_per_char']} on these names: its "
              f"weights are broken (NaN or infinite); retrain it", file=sys.stderr)
        return 2
    return write_lines([json.dumps(scores, ensure_ascii=False, indent=2, allow_nan=False)],
                       "the scores")


if __name__ == "__main__":
    sys.exit(main())
