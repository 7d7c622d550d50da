"""The documents say what the code does: the README's example names are what the committed
models print, its cross-validation figures and sampling rates are those of the committed
tables, and no document carries a control character (a lost backslash in LaTeX)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app import sample
from app.paths import ROOT

README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_MODELS = {"LSTM": "lstm", "RNN": "rnn", "mezcla": "mezcla"}


def readme_examples() -> dict[str, list[str]]:
    """{label: names} from the README's list of invented names (temperature 0.8, seed 7)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("Algunos nombres inventados (temperatura 0.8, semilla 7", 1)[1]
    return {label: names.split(", ")
            for label, names in re.findall(r"^- (\w+): (.+)$", section.split("\n\n")[1], re.M)}


def test_the_readme_lists_an_example_for_every_model():
    assert set(readme_examples()) == set(EXAMPLE_MODELS)


@pytest.mark.parametrize("label", EXAMPLE_MODELS)
def test_the_readme_examples_are_what_the_committed_models_print(label, capsys):
    path = ROOT / "models" / f"{EXAMPLE_MODELS[label]}.npz"
    expected = readme_examples()[label]
    assert sample.main(["--model", str(path), "-n", str(len(expected)), "--temperature", "0.8",
                        "--seed", "7"]) == 0
    assert capsys.readouterr().out.splitlines() == expected


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_no_document_has_control_characters(document: Path):
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
        assert not re.search(r"[\x00-\x1f\x7f]", line), f"{document.name}:{number}: {line!r}"


def test_every_cross_validation_row_in_the_readme_is_one_of_models_cv_json():
    rows = json.loads((ROOT / "models" / "cv.json").read_text(encoding="utf-8"))["rows"]
    published = {(f"{r['mean']:.3f}", f"{r['sd']:.3f}", " · ".join(f"{f:.3f}" for f in r["fold_nll"]))
                 for r in rows}
    quoted = re.findall(r"(\d\.\d{3}) ± (\d\.\d{3})\**\s*\|\s*([\d. ·]+?)\s*\|",
                        README.read_text(encoding="utf-8"))
    assert len(quoted) >= 15
    assert [row for row in quoted if row not in published] == []


def test_the_readmes_sampling_table_is_models_report_json():
    report = json.loads((ROOT / "models" / "report.json").read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    for model in report["models"]:
        line = re.search(rf"^\| `{model['name']}`:.*$", text, re.M).group(0)
        quoted = re.search(r"\| ([\d.]+) % / ([\d.]+) % / ([\d.]+) % / ([\d.]+) % \|", line).groups()
        rates = [100 * s["novelty_rate"] for s in model["sampling"]]
        # each as many decimals as written, rounded from the report's figure
        assert [f"{rate:.{len(q.partition('.')[2])}f}" for rate, q in zip(rates, quoted, strict=True)] \
            == list(quoted), model["name"]
