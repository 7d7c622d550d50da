"""Checkpoints round-trip, validate on load, and are written atomically."""

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.lm import checkpoint
from app.lm.base import load_model
from app.lm.checkpoint import CheckpointError
from tests.conftest import make_tiny_model


def _save_tiny(path, kind="lstm"):
    model = make_tiny_model(kind)
    checkpoint.save(path, model.checkpoint(model.metadata))
    return model


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_round_trip_keeps_weights_vocabulary_and_metadata(tmp_path, kind):
    model = _save_tiny(tmp_path / "m.npz", kind)
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.config == model.config
    assert loaded.vocab.chars == model.vocab.chars
    assert loaded.metadata["metrics"] == model.metadata["metrics"]
    for name, p in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], p)


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(path, **arrays)


def _set_meta(arrays, **changes):
    meta = json.loads(str(arrays["metadata"]))
    meta.update(changes)
    arrays["metadata"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.pop("layer1.W"), "missing key 'layer1.W'"),
    (lambda a: a.pop("metadata"), "missing key 'metadata'"),
    (lambda a: a.__setitem__("out.b", np.zeros(3, np.float32)), "wrong shape for 'out.b'"),
    (lambda a: _set_meta(a, format_version=99), "unknown format version 99"),
    (lambda a: _set_meta(a, kind="transformer"), "unknown model kind 'transformer'"),
    (lambda a: a.__setitem__("metadata", np.array("{not json")), "metadata is not valid JSON"),
])
def test_load_errors_name_the_file_and_the_problem(tmp_path, mutate, message):
    path = tmp_path / "broken.npz"
    _save_tiny(path)
    _rewrite(path, mutate)
    with pytest.raises(CheckpointError, match=message) as err:
        load_model(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04broken",
                                     b"Tepic\nColima\n"])
def test_a_file_that_is_not_an_npz_is_a_clear_error(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not an npz archive") as err:
        load_model(path)
    assert "pickle" not in str(err.value)


def test_a_folder_or_an_unreadable_file_says_so_not_that_it_is_no_npz(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_model(tmp_path)
    path = tmp_path / "locked.npz"
    _save_tiny(path)
    real_open = open

    def denied(file, *args, **kwargs):   # as a file of mode 000 for a user who is not root
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(CheckpointError, match="cannot read it: Permission denied"):
        load_model(path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_checkpoint_with_a_non_finite_weight_is_refused_with_the_reason(tmp_path, value):
    path = tmp_path / "diverged.npz"
    _save_tiny(path)

    def spoil(arrays):
        arrays["layer1.W"] = arrays["layer1.W"].copy()
        arrays["layer1.W"][0, 0] = value

    _rewrite(path, spoil)
    with pytest.raises(CheckpointError, match="'layer1.W' has 1 non-finite value"):
        load_model(path)


def _npy_header(shape, dtype="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()   # magic string included


def test_an_array_declaring_a_huge_shape_is_refused_before_allocating_it(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.npy", _npy_header((), "<U2") + "{}".encode("utf-32-le"))
        archive.writestr("layer1.W.npy", _npy_header((2**28,)) + bytes(64))   # says 1 GiB
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"declares a \(268435456,\) float32 array"):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_archives_declaring_more_than_the_limit_are_refused_from_the_zip_headers(tmp_path,
                                                                                 monkeypatch):
    path = tmp_path / "lstm.npz"
    _save_tiny(path)
    monkeypatch.setattr(checkpoint, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(CheckpointError, match="more than the 1,000 a checkpoint may hold"):
        load_model(path)


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "pickled.npz"
    _save_tiny(path)
    _rewrite(path, lambda a: a.__setitem__("extra", np.array([{"x": 1}], dtype=object)))
    with pytest.raises(CheckpointError):
        load_model(path)


def test_a_failure_mid_write_leaves_the_old_file_untouched(tmp_path):
    path = tmp_path / "lstm.npz"
    _save_tiny(path)
    before = path.read_bytes()

    def explode(f):
        f.write(b"half a checkpoint")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        checkpoint.atomic_write(path, explode)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["lstm.npz"]  # no temp file left behind


def test_written_checkpoints_are_readable_by_others(tmp_path):
    path = tmp_path / "lstm.npz"
    _save_tiny(path)
    assert path.stat().st_mode & 0o044  # group/other can read, e.g. a non-root service user


def test_a_save_syncs_the_file_then_its_folder_after_the_rename(tmp_path, monkeypatch):
    synced, real_fsync = [], os.fsync

    def recording(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", recording)
    path = tmp_path / "lstm.npz"
    _save_tiny(path)
    assert len(synced) == 2 and Path(synced[0]).name.endswith(".tmp")
    assert synced[1] == os.path.realpath(tmp_path)
