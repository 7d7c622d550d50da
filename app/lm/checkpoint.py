"""Self-contained checkpoints: ``models/*.npz`` with the arrays and one JSON metadata entry.

Metadata (format version, model kind and hyperparameters, vocabulary, data hash, split, metrics,
history) is stored as a plain string array, so loading never needs pickle. Files are written
atomically: a temp file in the same folder, then a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
METADATA_KEY = "metadata"
OPTIMIZER_PREFIX = "optimizer/"
MAX_ARRAY_BYTES = 256 * 2**20   # all arrays of a checkpoint together; the served ones hold ~2 MB
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


class CheckpointError(ValueError):
    """A checkpoint cannot be loaded; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """Arrays by name plus metadata; ``kind`` picks the code that understands the arrays."""

    kind: str
    arrays: dict[str, np.ndarray]
    metadata: dict
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete the temp files of ``path`` whose writer has died (kill -9 mid-save).

    A temp file is named ``.<name>.<pid>.<random>.tmp``; one whose process still runs is
    another save in progress and is left alone.
    """
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write(path: str | Path, write) -> None:
    """Call write(file) on a temp file beside ``path``, fsync it, rename it over ``path``, and
    fsync the folder, so that the rename itself survives a power cut.

    Temp files left by a writer killed mid-save are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; weights are not secrets
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    metadata = {"format_version": FORMAT_VERSION, "kind": checkpoint.kind, **checkpoint.metadata}
    arrays = dict(checkpoint.arrays)
    arrays.update({OPTIMIZER_PREFIX + k: v for k, v in checkpoint.optimizer_state.items()})
    arrays[METADATA_KEY] = np.array(json.dumps(metadata, ensure_ascii=False))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def check_archive(path: Path) -> None:
    """Refuse a file that is not an npz archive, or whose arrays would take more than
    MAX_ARRAY_BYTES, from the sizes its zip and .npy headers declare: before any is allocated."""
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    try:   # opened here: is_zipfile would call a file it cannot open "not a zip"
        file = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    with file:
        if not zipfile.is_zipfile(file):
            raise CheckpointError(f"{path}: not an npz archive (a zip file of .npy arrays)")
        with zipfile.ZipFile(file) as archive:
            _check_arrays(path, archive)


def _check_arrays(path: Path, archive: zipfile.ZipFile) -> None:
    """The sizes and headers of ``check_archive``'s arrays, read without loading any."""
    members = archive.infolist()
    declared = sum(member.file_size for member in members)
    if declared > MAX_ARRAY_BYTES:
        raise CheckpointError(f"{path}: its arrays would take {declared:,} bytes, more than "
                              f"the {MAX_ARRAY_BYTES:,} a checkpoint may hold")
    for member in members:
        with archive.open(member) as f:
            read_header = NPY_HEADERS.get(np.lib.format.read_magic(f))
            if read_header is None:
                raise CheckpointError(f"{path}: '{member.filename}' is not a .npy array of "
                                      "format 1.0 or 2.0")
            shape, _, dtype = read_header(f)
            data = member.file_size - f.tell()
        if dtype.hasobject:
            raise CheckpointError(f"{path}: '{member.filename}' holds Python objects, which "
                                  "would need pickle")
        needed = math.prod(shape) * dtype.itemsize
        if needed != data:
            raise CheckpointError(f"{path}: '{member.filename}' declares a {shape} {dtype} "
                                  f"array ({needed:,} bytes) but holds {data:,} bytes")


def load(path: str | Path, expected_shapes=None) -> Checkpoint:
    """Read and validate a checkpoint.

    expected_shapes(kind, metadata) -> {name: shape} gives the arrays the model kind needs;
    every one must be present with that shape and finite. Raises CheckpointError naming file
    and problem.
    """
    path = Path(path)
    try:
        check_archive(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{path}: not a valid .npz checkpoint ({exc})") from None
    if not isinstance(arrays, dict) or METADATA_KEY not in arrays:
        raise CheckpointError(f"{path}: missing key '{METADATA_KEY}'")
    try:
        metadata = json.loads(str(arrays.pop(METADATA_KEY)))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: metadata must be a JSON object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unknown format version {version!r} (this code reads version {FORMAT_VERSION})"
        )
    kind = metadata.get("kind")
    optimizer_state = {k[len(OPTIMIZER_PREFIX):]: arrays.pop(k)
                       for k in list(arrays) if k.startswith(OPTIMIZER_PREFIX)}
    if expected_shapes is not None:
        try:
            shapes = expected_shapes(kind, metadata)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: bad metadata ({exc})") from None
        for name, shape in shapes.items():
            if name not in arrays:
                raise CheckpointError(f"{path}: missing key '{name}'")
            if arrays[name].shape != tuple(shape):
                raise CheckpointError(
                    f"{path}: wrong shape for '{name}': {arrays[name].shape}, expected {tuple(shape)}"
                )
        extra = sorted(set(arrays) - set(shapes))
        if extra:
            raise CheckpointError(f"{path}: unexpected arrays {extra}")
        for name in shapes:   # the weights a model would compute with
            if arrays[name].dtype.kind in "fc" and not np.isfinite(arrays[name]).all():
                bad = int(arrays[name].size - np.isfinite(arrays[name]).sum())
                raise CheckpointError(f"{path}: array '{name}' has {bad} non-finite value(s) "
                                      "(NaN or infinity): a diverged run, not a model to use")
    return Checkpoint(kind=kind, arrays=arrays, metadata=metadata, optimizer_state=optimizer_state)
