"""The replace-if-better policy: a run replaces the served checkpoint only when it wins fairly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.lm import checkpoint
from app.training import promote

SAME = {"data_sha256": "a" * 64, "split": "seed 0", "vocab": ["a", "b"]}


def _write(path, val_nll, **metadata):
    ckpt = checkpoint.Checkpoint(kind="lstm", arrays={"w": np.full(3, val_nll)},
                                 metadata={**SAME, **metadata})
    checkpoint.save(path, ckpt)
    return path.read_bytes()


def _score(path):
    """The score a real scorer would compute; here the weights carry it."""
    return float(checkpoint.load(path).arrays["w"][0])


@pytest.fixture
def paths(tmp_path):
    served = tmp_path / "lstm.npz"
    return promote.run_path(served), served


def test_the_run_file_is_beside_the_served_one_but_not_where_the_service_looks(paths):
    run, served = paths
    assert run.parent.parent == served.parent and run.name == served.name
    assert run not in served.parent.glob("*.npz")


def test_a_missing_served_file_is_simply_written(paths):
    run, served = paths
    written = _write(run, 2.0)
    outcome = promote.replace_if_better(run, served, _score)
    assert outcome.replaced and served.read_bytes() == written and not run.exists()
    assert f"wrote {served}" in outcome.message


def test_a_better_run_replaces_the_served_file(paths):
    run, served = paths
    _write(served, 1.6)
    better = _write(run, 1.5)
    outcome = promote.replace_if_better(run, served, _score)
    assert outcome.replaced and served.read_bytes() == better
    assert "this run's 1.5000 beats its 1.6000" in outcome.message
    _write(run, 1.49999)   # a win too small for four decimals is shown with six
    assert "this run's 1.499990 beats its 1.500000" in promote.replace_if_better(
        run, served, _score).message


@pytest.mark.parametrize("new", [1.6, 1.5])
def test_a_run_that_does_not_win_leaves_both_files(paths, new):
    run, served = paths
    kept, candidate = _write(served, 1.5), _write(run, new)
    outcome = promote.replace_if_better(run, served, _score)
    assert not outcome.replaced
    assert served.read_bytes() == kept and run.read_bytes() == candidate
    assert f"kept {served}: its 1.5000" in outcome.message and f"the run is in {run}" in outcome.message


def test_force_replaces_a_better_served_file(paths):
    run, served = paths
    _write(served, 1.0)
    forced = _write(run, 3.0)
    outcome = promote.replace_if_better(run, served, _score, force=True)
    assert outcome.replaced and served.read_bytes() == forced and "--force" in outcome.message


@pytest.mark.parametrize("key", ["data_sha256", "split", "vocab", "conditions"])
def test_a_served_file_built_on_other_names_is_kept(paths, key):
    run, served = paths
    kept = _write(served, 9.0, **{key: "other"})
    _write(run, 1.0)
    outcome = promote.replace_if_better(run, served, _score)
    assert not outcome.replaced and served.read_bytes() == kept
    assert f"built on other {key}" in outcome.message and "--force" in outcome.message


def test_an_unreadable_served_file_is_kept(paths):
    run, served = paths
    served.write_bytes(b"not a checkpoint, maybe a newer format")
    _write(run, 1.0)
    outcome = promote.replace_if_better(run, served, _score)
    assert not outcome.replaced and "cannot be read to compare" in outcome.message


def test_a_nan_served_model_is_replaced_and_a_nan_run_never_replaces(paths):
    run, served = paths
    _write(served, math.nan)
    _write(run, 2.0)
    assert promote.replace_if_better(run, served, _score).replaced
    kept = served.read_bytes()
    _write(run, math.nan)
    outcome = promote.replace_if_better(run, served, _score)
    assert not outcome.replaced and served.read_bytes() == kept and "nan" in outcome.message
