"""The name list, its vocabulary, the train/validation split and padded minibatches.

Every name is one sequence framed by a boundary token: the model reads ``<> A b a l á`` and
predicts ``A b a l á <>``, starting from a fresh state for each name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.paths import DATA_DIR

BOUNDARY = "\n"  # token 0: starts every name (as input) and ends it (as target)
DEFAULT_NAMES = DATA_DIR / "municipios.txt"
DEFAULT_STATES_CSV = DATA_DIR / "municipios_por_estado.csv"
MIN_NAMES_TO_SPLIT = 10
# longest real name: 76 characters ("Heroica Villa Tezoatlán de Segura y Luna, Cuna de la
# Independencia de Oaxaca"), so sampling's 64 would refuse the INEGI list itself
MAX_NAME_LENGTH = 100
SHOWN_PROBLEMS = 5     # bad lines quoted in an error; the rest are counted


class DataError(ValueError):
    """The names file cannot be used; the message says why, for people."""


# a validation set of names all with a character no training name has cannot measure a model
NO_SCORABLE_VALIDATION = ("no validation name can be scored: every one has characters that no "
                          "training name has; use more names or another --val-fraction")


def normalize(name: str) -> str:
    """NFC with surrounding whitespace removed; accents, ñ, ü, punctuation and case kept."""
    return unicodedata.normalize("NFC", name.strip())


class _FoldTable(dict):
    """A str.translate table that folds each character once, the first time it is seen."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFD", chr(code).casefold())
        self[code] = folded = "".join(c for c in decomposed if not unicodedata.combining(c))
        return folded


_FOLD_TABLE = _FoldTable()


def fold(name: str) -> str:
    """Case- and accent-insensitive key: 'Acámbaro' and 'ACAMBARO' fold alike (ñ folds to n).

    Character by character through a cached table: the sampler folds every name it draws.
    """
    return name.strip().translate(_FOLD_TABLE)


def _read_text(path: Path) -> str:
    """The file's text, a leading byte-order mark dropped. Raises DataError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a text file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (bad byte at offset {exc.start})") from None


def _problem(name: str) -> str | None:
    """Why a name (already normalised) cannot be used, or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"{len(name):,} characters"
    hidden = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf")), None)
    return None if hidden is None else f"control character U+{ord(hidden):04X}"


def _checked(path: Path, numbered: list[tuple[int, str]]) -> list[str]:
    """The names of (line number, name) pairs, or a DataError listing the first bad lines."""
    bad = [(line, why) for line, name in numbered if (why := _problem(name))]
    if bad:
        shown = "; ".join(f"line {line}: {why}" for line, why in bad[:SHOWN_PROBLEMS])
        more = f"; and {len(bad) - SHOWN_PROBLEMS} more" if len(bad) > SHOWN_PROBLEMS else ""
        raise DataError(f"{path}: {len(bad)} line(s) cannot be used (a name has at most "
                        f"{MAX_NAME_LENGTH} characters and no control characters): {shown}{more}")
    return [name for _, name in numbered]


def read_names(path: str | Path) -> list[str]:
    """One name per line from a UTF-8 file; blank lines skipped. Raises DataError."""
    path = Path(path)
    lines = _read_text(path).split("\n")  # not splitlines: \x0b or \x1c are no line break
    names = _checked(path, [(i, name) for i, line in enumerate(lines, 1) if (name := normalize(line))])
    if not names:
        raise DataError(f"{path}: contains no names (one name per line expected)")
    return names


def data_sha256(names: Sequence[str]) -> str:
    """Fingerprint of the training data as read (order and repeats included)."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


def first_occurrences(names: Sequence[str]) -> list[int]:
    """Positions of each distinct name's first occurrence, in order: what a model trains on so
    that a name shared by several municipalities (Benito Juárez, Ocampo, Hidalgo) counts once.

    Measured with 5-fold CV (README): the n-gram counted this way scores every held-out fold
    better and copies fewer real names, since no held-out name is ever one of the repeated
    training names a model would otherwise learn to favour."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        first.setdefault(name, i)
    return sorted(first.values())


def learned_rows(names: Sequence[str], repeats: bool = False) -> Sequence[int]:
    """The positions of ``names`` a model learns from: all of them with ``repeats``, else each
    distinct name's first (``first_occurrences``)."""
    return range(len(names)) if repeats else first_occurrences(names)


def split_key(name: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for a name: same name, same side of the split."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    description: str
    train_index: list[int]  # positions in the input list, to pick parallel data (e.g. states)
    val_index: list[int]


def split_names(names: Sequence[str], val_fraction: float = 0.1, seed: int = 0,
                strata: Sequence[str] | None = None) -> Split:
    """Deterministic split over distinct names: repeats of a name never straddle it.

    A name goes to validation when a hash of (seed, name) falls below ``val_fraction``, so the
    split does not depend on file order and a different seed gives a different split.
    With ``strata`` (e.g. each name's state), every stratum instead sends its own share of
    names to validation: the ones with the smallest hashes. A name shared by several states is
    held out from all of them, so a few states may give slightly more than their share.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    distinct = sorted(set(names))
    if len(distinct) < MIN_NAMES_TO_SPLIT:
        raise DataError(
            f"too few distinct names to split: {len(distinct)} (at least {MIN_NAMES_TO_SPLIT})"
        )
    if strata is None:
        val_set = {name for name in distinct if split_key(name, seed) < val_fraction}
        how = f"sha256(seed:name) < {val_fraction} over distinct names"
    else:
        by_stratum: dict[str, set[str]] = {}
        for name, stratum in zip(names, strata, strict=True):
            by_stratum.setdefault(stratum, set()).add(name)
        val_set = set()
        for members in by_stratum.values():
            quota = round(val_fraction * len(members))
            val_set.update(sorted(members, key=lambda n: split_key(n, seed))[:quota])
        how = f"the {val_fraction:.0%} of each stratum with the smallest sha256(seed:name)"
    if not val_set or len(val_set) == len(distinct):
        raise DataError(
            f"--val-fraction {val_fraction} leaves an empty side with {len(distinct)} distinct names"
        )
    train_index = [i for i, name in enumerate(names) if name not in val_set]
    val_index = [i for i, name in enumerate(names) if name in val_set]
    description = (
        f"{how}, seed {seed}: "
        f"{len(distinct) - len(val_set)} train / {len(val_set)} validation distinct names"
    )
    return Split(train=[names[i] for i in train_index], val=[names[i] for i in val_index],
                 description=description, train_index=train_index, val_index=val_index)


@dataclass(frozen=True)
class Corpus:
    """Names as read, with each one's state when the file gives it (the INEGI CSV)."""

    names: list[str]
    states: list[str] | None = None
    state_codes: dict[str, str] | None = None  # state name -> two-digit INEGI code


def read_corpus(path: str | Path) -> Corpus:
    """A .csv with ``estado`` and ``municipio`` columns, or a text file with one name per line."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return Corpus(read_names(path))
    reader = csv.DictReader(io.StringIO(_read_text(path)))
    missing = {"estado", "municipio"} - set(reader.fieldnames or [])
    if missing:
        raise DataError(f"{path}: CSV needs the columns estado and municipio (missing {sorted(missing)})")
    try:
        rows = [(reader.line_num, row) for row in reader if (row["municipio"] or "").strip()]
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV (line {reader.line_num}: {exc})") from None
    if not rows:
        raise DataError(f"{path}: contains no names")
    names = _checked(path, [(n, normalize(r["municipio"])) for n, r in rows])
    states = _checked(path, [(n, normalize(r["estado"] or "")) for n, r in rows])
    codes = {state: (r.get("cve_ent") or "").strip() for state, (_, r) in zip(states, rows, strict=True)}
    return Corpus(names=names, states=states, state_codes=codes)


class Vocabulary:
    """Characters <-> integer ids; id 0 is the boundary token."""

    def __init__(self, chars: Sequence[str]):
        if BOUNDARY in chars:
            raise ValueError("the boundary token is implicit; do not list it")
        self.chars = [BOUNDARY, *chars]
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_names(cls, names: Sequence[str]) -> Vocabulary:
        return cls(sorted(set("".join(names))))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` the vocabulary lacks, in order of first appearance; the
        boundary token is one of them: it is no character of a name."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.index or ch == BOUNDARY))

    def encode(self, text: str) -> list[int]:
        return [self.index[ch] for ch in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)


@dataclass(frozen=True)
class Batch:
    """A padded minibatch, time-major.

    inputs  (T, B) int  -- boundary, then the name's characters, then padding (0)
    targets (T, B) int  -- the name's characters, then boundary, then padding (0)
    mask    (T, B) float -- 1 where a target is real, 0 on padding
    cond    (B,) int or None -- each name's condition id (its state) for conditioned models
    soft    (T, B, V) float or None -- a teacher's next-character distribution at every step,
            learned instead of the one-hot targets (distillation, ``app.distill``)
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    cond: np.ndarray | None = None
    soft: np.ndarray | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


def make_batch(encoded: Sequence[Sequence[int]], dtype=np.float32,
               cond: Sequence[int] | None = None,
               soft: Sequence[np.ndarray] | None = None) -> Batch:
    """Pad encoded names (lists of ids) into one time-major batch, with optional condition ids
    and, per name, a (len + 1, V) array of soft targets."""
    T = max(len(ids) for ids in encoded) + 1
    B = len(encoded)
    inputs = np.zeros((T, B), dtype=np.int64)
    targets = np.zeros((T, B), dtype=np.int64)
    mask = np.zeros((T, B), dtype=dtype)
    soft_targets = None if soft is None else np.zeros((T, B, soft[0].shape[1]), dtype)
    for b, ids in enumerate(encoded):
        n = len(ids)
        inputs[1 : n + 1, b] = ids
        targets[:n, b] = ids
        mask[: n + 1, b] = 1.0
        if soft is not None:
            soft_targets[: n + 1, b] = soft[b]
    return Batch(inputs, targets, mask, None if cond is None else np.asarray(cond, np.int64),
                 soft_targets)


def length_bucketed_batches(
    encoded: Sequence[Sequence[int]],
    batch_size: int,
    rng: np.random.Generator | None = None,
    cond: Sequence[int] | None = None,
    soft: Sequence[np.ndarray] | None = None,
) -> list[Batch]:
    """Batches of names of similar length (little padding), in shuffled order when rng is given.

    Names are sorted by length with random tie-breaking, cut into batches, and the batches are
    shuffled, so each epoch sees different neighbours without paying for long padding.
    """
    order = np.arange(len(encoded))
    if rng is not None:
        order = rng.permutation(len(encoded))
    lengths = np.array([len(encoded[i]) for i in order])
    order = order[np.argsort(lengths, kind="stable")]
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    return [make_batch([encoded[i] for i in chunk],
                       cond=None if cond is None else [cond[i] for i in chunk],
                       soft=None if soft is None else [soft[i] for i in chunk])
            for chunk in chunks]
