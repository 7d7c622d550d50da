"""What a state-conditioned model records about its condition: the states, their codes and counts."""

from __future__ import annotations

from collections import Counter

from app.data.corpus import Corpus


def condition_metadata(corpus: Corpus) -> dict:
    """Checkpoint metadata naming the condition values (states in INEGI order) and counts."""
    states = sorted(corpus.state_codes, key=lambda s: (corpus.state_codes[s], s))
    counts = Counter(corpus.states)
    return {"condition": "estado", "conditions": states,
            "condition_codes": [corpus.state_codes[s] for s in states],
            "condition_counts": [counts[s] for s in states]}


def condition_ids(conditions: dict, corpus: Corpus) -> list[int] | None:
    """Each name's condition id, in corpus order (None for an unconditioned model)."""
    if not conditions:
        return None
    index = {s: i for i, s in enumerate(conditions["conditions"])}
    return [index[s] for s in corpus.states]
