"""Training never hurts what is served: run files, promotion, interruption, flags checked first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app import mixture, train
from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.ensemble import MixtureLM
from app.training import memory, promote, trainer
from tests.conftest import TINY_TRAIN_FLAGS as TINY
from tests.conftest import train_tiny as _train

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture
def served(names_file, tmp_path):
    """A served checkpoint trained for 4 epochs: better than any 1-epoch run."""
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "4") == 0
    return out


def test_a_new_worse_run_never_touches_the_served_model(names_file, served, capsys):
    before = served.read_bytes()
    capsys.readouterr()
    assert _train(names_file, served, "--epochs", "1") == 0
    out = capsys.readouterr().out
    run = promote.run_path(served)
    assert served.read_bytes() == before
    assert f"kept {served}: its " in out and f"the run is in {run}" in out
    assert load_model(run).metadata["metrics"]["best_epoch"] == 1


def test_force_replaces_the_served_model(names_file, served, capsys):
    assert _train(names_file, served, "--epochs", "1", "--force") == 0
    assert load_model(served).metadata["metrics"]["best_epoch"] == 1
    assert "--force" in capsys.readouterr().out
    assert not promote.run_path(served).exists()


def test_a_better_run_replaces_the_served_model(names_file, tmp_path, capsys):
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "1") == 0
    assert _train(names_file, out, "--epochs", "4") == 0
    assert f"replaced {out}: this run's" in capsys.readouterr().out
    assert load_model(out).metadata["metrics"]["best_epoch"] > 1


def test_interrupting_a_new_run_leaves_the_served_model_and_a_resumable_run(
        names_file, served, monkeypatch, capsys):
    before = served.read_bytes()
    real_loss = trainer.network.loss_and_grads
    calls = {"n": 0}

    def interrupted_in_epoch_2(*args, **kwargs):  # ~8 batches an epoch
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer.network, "loss_and_grads", interrupted_in_epoch_2)
    assert _train(names_file, served, "--epochs", "3") == 130
    run = promote.run_path(served)
    err = capsys.readouterr().err
    assert served.read_bytes() == before
    assert f"{run} holds this run's best so far (epoch 1" in err and "--resume" in err
    monkeypatch.setattr(trainer.network, "loss_and_grads", real_loss)
    assert _train(names_file, served, "--epochs", "2", "--resume", "--force") == 0
    history = load_model(served).metadata["history"]
    assert [r["epoch"] for r in history] == [1, 2]  # the run went on, not the served model


def test_the_interrupt_message_names_what_the_file_holds_when_a_save_is_cut(
        names_file, tmp_path, monkeypatch, capsys):
    real_save = trainer.checkpoint.save

    def save_cut_at_epoch_2(path, ckpt):
        if ckpt.metadata["metrics"]["best_epoch"] == 2:
            raise KeyboardInterrupt  # as SIGINT inside atomic_write: the old file stays
        real_save(path, ckpt)

    monkeypatch.setattr(trainer.checkpoint, "save", save_cut_at_epoch_2)
    out = tmp_path / "lstm.npz"
    assert _train(names_file, out, "--epochs", "3", "--lr", "0.01") == 130
    held = load_model(promote.run_path(out)).metadata["metrics"]
    assert held["best_epoch"] == 1
    assert f"(epoch 1, validation NLL {held['val_nll']:.4f})" in capsys.readouterr().err


def test_a_disk_full_at_a_save_is_a_message_and_the_last_save_is_kept(
        names_file, served, monkeypatch, capsys):
    before = served.read_bytes()
    real_save = trainer.checkpoint.save

    def disk_full_at_epoch_2(path, ckpt):
        if ckpt.metadata["metrics"]["best_epoch"] == 2:
            raise OSError(28, "No space left on device", str(path))
        real_save(path, ckpt)

    monkeypatch.setattr(trainer.checkpoint, "save", disk_full_at_epoch_2)
    assert _train(names_file, served, "--epochs", "3", "--lr", "0.01") == 1
    run = promote.run_path(served)
    err = capsys.readouterr().err
    assert f"error: No space left on device: {run}; {run} holds the last checkpoint" in err
    assert "Traceback" not in err and served.read_bytes() == before
    assert load_model(run).metadata["metrics"]["best_epoch"] == 1


def test_ctrl_c_while_the_cli_starts_is_a_message_not_a_traceback(names_file, tmp_path):
    """SIGINT while numpy is being imported (its C extension mapped, the import not done)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # as from a terminal: a suite started in the background (`cmd &` in a script) hands its
    # children SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "app.train", "--data", str(names_file),
                             "--out", str(tmp_path / "x.npz"), *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 30
    while "_multiarray_umath" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "x.npz").exists()


def test_a_save_killed_mid_write_leaves_no_temp_file_after_the_next_save(names_file, tmp_path):
    out = tmp_path / "lstm.npz"
    run = promote.run_path(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid no process has: the writer of the stale temp files
    run.parent.mkdir()
    stale = [run.parent / f".{run.name}.{dead.pid}.x1y2z3.tmp",
             tmp_path / f".{out.name}.{dead.pid}.q8w9e0.tmp"]
    alive = run.parent / f".{run.name}.{os.getpid()}.a1b2c3.tmp"  # a save in progress
    for tmp in (*stale, alive):
        tmp.write_bytes(b"half a checkpoint")
    assert _train(names_file, out, "--epochs", "1") == 0
    assert not any(tmp.exists() for tmp in stale) and alive.exists()


@pytest.mark.parametrize("where, message", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "names.txt" / "x.npz", "cannot write in"),
])
def test_an_unusable_out_is_refused_before_training(names_file, tmp_path, capsys, where, message):
    assert _train(names_file, where(tmp_path), "--epochs", "1") == 2
    captured = capsys.readouterr()
    assert message in captured.err and "epoch" not in captured.out


def test_resume_refuses_flags_that_would_change_the_model(names_file, served, capsys):
    assert _train(names_file, served, "--resume", "--hidden", "32", "--epochs", "6") == 2
    err = capsys.readouterr().err
    assert "drop --hidden 32 (it has 12)" in err
    assert load_model(served).config.hidden == 12


def test_resume_takes_the_run_config_it_was_not_given(names_file, served):
    assert train.main(["--data", str(names_file), "--out", str(served), "--quiet",
                       "--resume", "--epochs", "6"]) == 0
    recorded = load_model(served).metadata["train_config"]
    assert (recorded["hidden"], recorded["embed"], recorded["epochs"]) == (12, 6, 6)


def test_a_model_too_large_for_the_memory_is_refused_before_allocating(
        names_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory, "physical_memory", lambda: 64 * 2**20)  # 64 MiB
    assert _train(names_file, tmp_path / "x.npz", "--hidden", "1024") == 2
    assert "GiB, more than this machine's 0.1 GiB" in capsys.readouterr().err


def test_markov_keeps_a_served_model_it_does_not_beat(names_file, tmp_path, capsys):
    out = tmp_path / "markov.npz"
    argv = ["--model", "markov", "--data", str(names_file), "--out", str(out)]
    assert train.main(argv) == 0
    before = out.read_bytes()
    assert train.main(argv) == 0
    assert out.read_bytes() == before and f"kept {out}: its" in capsys.readouterr().out
    assert train.main([*argv, "--seed", "-1"]) == 2


def test_mixture_replaces_the_served_mixture_only_when_it_wins(names_file, tmp_path, capsys,
                                                               monkeypatch):
    neural, ngram, out = tmp_path / "lstm.npz", tmp_path / "markov.npz", tmp_path / "mezcla.npz"
    assert _train(names_file, neural, "--epochs", "4") == 0
    assert train.main(["--model", "markov", "--data", str(names_file), "--out", str(ngram),
                       "--members", "1"]) == 0   # the single neural run's split
    argv = ["--neural", str(neural), "--ngram", str(ngram), "--data", str(names_file),
            "--out", str(out)]
    assert mixture.main(argv) == 0
    best = load_model(out)
    assert mixture.main(argv) == 0
    assert f"kept {out}: its" in capsys.readouterr().out  # a tie is not a win
    worse = MixtureLM(best.components, [0.02, 0.98], best.metadata)
    checkpoint.save(out, worse.checkpoint(best.metadata))
    assert mixture.main(argv) == 0
    assert f"replaced {out}" in capsys.readouterr().out
    np.testing.assert_allclose(load_model(out).weights, best.weights)
    served = out.read_bytes()

    def disk_full(path, ckpt):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(mixture.checkpoint, "save", disk_full)
    assert mixture.main([*argv, "--force"]) == 1
    assert f"error: No space left on device: {promote.run_path(out)}; {out} unchanged" in (
        capsys.readouterr().err)
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mixture, "build", ctrl_c)
    assert mixture.main(argv) == 130
    assert f"interrupted: {out} unchanged" in capsys.readouterr().err
    assert out.read_bytes() == served
