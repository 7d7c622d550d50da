"""The real municipality names: novelty check and nearest real name (with its state).

    load_gazetteer().nearest([fold("Tepicc")])  # [Nearest(name='Tepic', estado='Nayarit', distance=1)]
    load_gazetteer().find_estado("yucatan")     # Estado(code='31', name='Yucatán', municipios=106)

The real list is the union of ``data/municipios_por_estado.csv`` and ``data/municipios.txt``,
keyed by ``corpus.fold`` (case and accents ignored), so "ACAMBARO" and "Acámbaro" are one name.
Distances are Levenshtein edits between folded keys: 0 exactly when a name is not novel.
The states come from the CSV (INEGI order, with their two-digit codes); a name generated for a
state is compared with that state's municipalities first.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from app.data.corpus import DATA_DIR, fold, normalize, read_names

PARALLEL_QUERIES = 500   # nearest-name searches this big use every core (see _closest)

@dataclass(frozen=True)
class Nearest:
    name: str
    estado: str | None
    distance: int


@dataclass(frozen=True)
class Estado:
    code: str        # two-digit INEGI code, "01".."32"
    name: str        # as the CSV spells it: "Yucatán", "Veracruz de Ignacio de la Llave"
    municipios: int  # municipalities the CSV lists for it


# common short names for the states whose official name is longer (folded, see estado_key)
ESTADO_ALIASES = {
    "coahuila": "05", "cdmx": "09", "df": "09", "distrito federal": "09", "edomex": "15",
    "estado de mexico": "15", "michoacan": "16", "veracruz": "30",
}


def estado_key(text: str) -> str:
    """How a state is looked up: folded, dots dropped, runs of spaces and hyphens as one space."""
    return re.sub(r"[\s\-]+", " ", fold(text).replace(".", "")).strip()


class Gazetteer:
    """Distinct real names (first spelling seen, CSV first) with their state, by folded key,
    and the states with their municipalities (every CSV row, repeats across states kept)."""

    def __init__(self, entries: Sequence[tuple[str, str | None]],
                 codes: dict[str, str] | None = None):
        by_key: dict[str, tuple[str, str | None]] = {}
        by_state: dict[str, dict[str, str]] = {}    # state -> folded key -> name
        rows: dict[str, int] = {}
        for name, estado in entries:
            key = fold(name)
            by_key.setdefault(key, (name, estado))
            if estado is not None:
                by_state.setdefault(estado, {}).setdefault(key, name)
                rows[estado] = rows.get(estado, 0) + 1
        self.keys = list(by_key)
        self.names = [name for name, _ in by_key.values()]
        self.states = [estado for _, estado in by_key.values()]
        self.key_set = frozenset(self.keys)
        self._spellings = dict(zip(self.keys, self.names, strict=True))
        self.by_state = {estado: (list(names), list(names.values()))
                         for estado, names in by_state.items()}
        codes = codes or {}
        self.estados = [Estado(codes.get(estado) or f"{i:02d}", estado, count)
                        for i, (estado, count) in enumerate(rows.items(), start=1)]
        lookup = {estado_key(e.name): e for e in self.estados}
        lookup.update({e.code: e for e in self.estados})
        by_code = {e.code: e for e in self.estados}
        lookup.update({alias: by_code[code] for alias, code in ESTADO_ALIASES.items()
                       if code in by_code and alias not in lookup})
        self._estado_lookup = lookup

    def __len__(self) -> int:
        return len(self.keys)

    def spelling(self, name: str) -> str | None:
        """How the real name that ``name`` folds to is written ("tepic" -> "Tepic"), or None."""
        return self._spellings.get(fold(name))

    def find_estado(self, text: str) -> Estado | None:
        """The state named by ``text``: its name or two-digit INEGI code ("31", "1" too), case,
        accents and extra spaces ignored ("yucatan", "CIUDAD DE MEXICO"), or a common short name
        ("Veracruz", "CDMX"). None when nothing matches."""
        key = estado_key(text)
        if key.isdigit():
            key = key.zfill(2)
        return self._estado_lookup.get(key)

    def nearest(self, keys: Sequence[str],
                estados: Sequence[str | None] | None = None) -> list[Nearest]:
        """The closest real name to each folded key (``corpus.fold``), in one distance matrix.

        With ``estados`` (one state or None per key), a key with a state gets the closest of
        that state's municipalities instead, unless it is exactly a real name of another state
        only (a real name of that state is that state's, wherever else it is real too).
        """
        if not keys:
            return []
        found = _closest(keys, self.keys, self.names, self.states)
        for estado in set(estados or ()) & self.by_state.keys():
            rows = [i for i, e in enumerate(estados) if e == estado]
            state_keys, state_names = self.by_state[estado]
            near = _closest([keys[i] for i in rows], state_keys, state_names,
                            [estado] * len(state_keys))
            for i, nearest in zip(rows, near, strict=True):
                if nearest.distance == 0 or found[i].distance > 0:
                    found[i] = nearest
        return found


def _closest(queries: Sequence[str], keys: Sequence[str], names: Sequence[str],
             states: Sequence[str | None]) -> list[Nearest]:
    """For each query, the first of ``keys`` at the smallest edit distance."""
    # a big batch (the CLI, 1,000 names: ~55 ms on one core) uses every core; a web request
    # (at most 100 names) stays on its thread, so concurrent requests do not fight for cores
    workers = -1 if len(queries) >= PARALLEL_QUERIES else 1
    distances = process.cdist(queries, keys, scorer=Levenshtein.distance, dtype=np.int32,
                              workers=workers)
    best = distances.argmin(axis=1)
    return [Nearest(names[j], states[j], int(distances[i, j])) for i, j in enumerate(best)]


def read_codes(data_dir: Path = DATA_DIR) -> dict[str, str]:
    """State name -> two-digit INEGI code, from the CSV."""
    with open(data_dir / "municipios_por_estado.csv", encoding="utf-8", newline="") as f:
        return {normalize(row["estado"]): row["cve_ent"].strip().zfill(2)
                for row in csv.DictReader(f)}


def read_entries(data_dir: Path = DATA_DIR) -> list[tuple[str, str | None]]:
    """(name, state) from the CSV, then names only in municipios.txt (state None)."""
    with open(data_dir / "municipios_por_estado.csv", encoding="utf-8", newline="") as f:
        entries: list[tuple[str, str | None]] = [
            (normalize(row["municipio"]), normalize(row["estado"])) for row in csv.DictReader(f)
        ]
    entries += [(name, None) for name in read_names(data_dir / "municipios.txt")]
    return entries


@functools.cache
def load_gazetteer(data_dir: Path = DATA_DIR) -> Gazetteer:
    """The real list, read once per process."""
    return Gazetteer(read_entries(data_dir), read_codes(data_dir))
