"""Self-contained checkpoints: ``models/*.npz`` with the arrays and one JSON metadata entry.

Metadata (format version, model kind and hyperparameters, vocabulary, data hash, split, metrics,
history) is stored as a plain string array, so loading never needs pickle. Files are written
atomically: a temp file in the same folder, then a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
METADATA_KEY = "metadata"
OPTIMIZER_PREFIX = "optimizer/"


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
    """Call write(file) on a temp file beside ``path``, fsync it, then rename it over ``path``.

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


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    metadata = {"format_version": FORMAT_VERSION, "kind": checkpoint.kind, **checkpoint.metadata}
    arrays = dict(checkpoint.arrays)
    arrays.update({OPTIMIZER_PREFIX + k: v for k, v in checkpoint.optimizer_state.items()})
    arrays[METADATA_KEY] = np.array(json.dumps(metadata, ensure_ascii=False))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | Path, expected_shapes=None) -> Checkpoint:
    """Read and validate a checkpoint.

    expected_shapes(kind, metadata) -> {name: shape} gives the arrays the model kind needs;
    every one must be present with that shape. Raises CheckpointError naming file and problem.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
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
    return Checkpoint(kind=kind, arrays=arrays, metadata=metadata, optimizer_state=optimizer_state)
