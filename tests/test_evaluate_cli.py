"""``python -m app.evaluate``: the NLL of a model on a list of names, as JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys


def evaluate(model, names, shell: str = "") -> subprocess.CompletedProcess:
    command = f"{sys.executable} -m app.evaluate --model {model} --names {names} {shell}"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)


def test_scores_come_out_as_json_and_a_full_disk_is_one_line(tiny_models_folder, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Ma\nMar\n", encoding="utf-8")
    done = evaluate(tiny_models_folder / "lstm.npz", names)
    assert done.returncode == 0 and json.loads(done.stdout)["nll_per_char"] > 0
    full = evaluate(tiny_models_folder / "lstm.npz", names, "> /dev/full")
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert "error: cannot write the scores: " in full.stderr
