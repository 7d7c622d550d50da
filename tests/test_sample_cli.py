"""``python -m app.sample``: one name per line, same options as the API, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.sample import main


@pytest.fixture
def lstm_file(tiny_models_folder):
    return str(tiny_models_folder / "lstm.npz")


def run(capsys, *argv) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_prints_n_names_reproducibly(capsys, lstm_file):
    code, names, _ = run(capsys, "--model", lstm_file, "-n", "6", "--seed", "3",
                         "--temperature", "1.0", "--prefix", "Ma", "--max-length", "30")
    assert code == 0 and len(names) == 6
    assert all(n.startswith("Ma") and len(n) <= 30 for n in names)
    assert run(capsys, "--model", lstm_file, "-n", "6", "--seed", "3", "--temperature", "1.0",
               "--prefix", "Ma", "--max-length", "30")[1] == names


def test_top_k_and_no_novel_flags(capsys, lstm_file):
    code, names, _ = run(capsys, "--model", lstm_file, "-n", "3", "--seed", "1", "--top-k", "3",
                         "--no-novel")
    assert code == 0 and len(names) == 3


@pytest.mark.parametrize(("argv", "expected"), [
    (["--temperature", "0"], "--temperature: temperature must be > 0"),
    (["--temperature", "nan"], "--temperature"),
    (["--prefix", "T<b>"], "never saw: '<', '>'"),
    (["--max-length", "65"], "--max-length"),
    (["-n", "0"], "-n must be between 1"),
    (["--seed", "-4"], "--seed must be in [0, 4294967295], got -4"),
    (["--seed", "4294967296"], "--seed must be in [0, 4294967295]"),
    (["--top-k", "1001"], "--top-k must be from 1 to 1000, got 1001"),
    (["--prefix=-Ma"], "--prefix: prefix must start with a capital letter"),
    (["--prefix", "¿Ma"], "--prefix: prefix must start with a capital letter"),
    (["--deadline", "0"], "--deadline must be > 0 and <= 3600 seconds"),
    (["--deadline", "nan"], "--deadline must be > 0"),
])
def test_bad_options_exit_2_with_a_message(capsys, lstm_file, argv, expected):
    with pytest.raises(SystemExit) as caught:
        main(["--model", lstm_file, *argv])
    assert caught.value.code == 2
    assert expected in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app.sample", "--model",
                             str(tmp_path / "nope.npz")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "nope.npz: file not found" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_deadline_prints_what_was_found_and_says_so(capsys, lstm_file):
    # 10,000 names at T=0.01 would take minutes; 10 ms of compute cannot find them
    code, names, err = run(capsys, "--model", lstm_file, "-n", "10000", "--temperature", "0.01",
                           "--seed", "1", "--deadline", "0.01")
    assert code == 0 and len(names) < 10000
    assert f"found {len(names)} of 10000 names" in err and "the 0.01 s deadline passed" in err


@pytest.mark.parametrize(("shell", "expected"), [
    ("| head -1", ""),                                   # a reader that stops: a quiet end
    ("> /dev/full", "error: cannot write the names: "),  # a full disk: one line, no traceback
])
def test_output_that_cannot_be_written_is_no_traceback(lstm_file, shell, expected):
    command = f"{sys.executable} -m app.sample --model {lstm_file} -n 3000 --seed 1 {shell}"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                            text=True, timeout=120)
    assert "Traceback" not in result.stderr and expected in result.stderr
    assert result.returncode == (0 if expected == "" else 1)
