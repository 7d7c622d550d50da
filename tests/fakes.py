"""Stand-in models for tests: their names are known in advance, so a test can say what must come out."""

from __future__ import annotations

import numpy as np

from app.data.corpus import Vocabulary


class ListModel:
    """A model that spells, uniformly at random, one of a few given names (app.lm.base interface)."""

    kind = "list"
    n_params = 0
    metadata: dict = {}

    def __init__(self, names: list[str]):
        self.vocab = Vocabulary.from_names(names)
        self.names = [self.vocab.encode(n) + [0] for n in names]

    def initial_state(self, n, cond=None):
        return np.zeros((n, 0), dtype=np.int64)          # tokens read so far, boundary excluded

    def next_logits(self, ids, state):
        if state.shape[1] or ids.any():
            state = np.concatenate([state, ids[:, None]], axis=1)
        logits = np.full((len(ids), len(self.vocab)), -50.0, dtype=np.float32)
        for row, history in enumerate(state.tolist()):
            for name in self.names:
                if name[:len(history)] == history and len(name) > len(history):
                    logits[row, name[len(history)]] = 0.0
        return logits, state

    def select(self, state, keep):
        return state[keep]

    def token_nll(self, batch, cond=None):
        """(T, B) NLL of each target, stepping through the batch (for app.lm.base.names_nll)."""
        state = self.initial_state(batch.inputs.shape[1])
        nll = np.zeros(batch.inputs.shape)
        for t, (ids, targets) in enumerate(zip(batch.inputs, batch.targets, strict=True)):
            logits, state = self.next_logits(ids, state)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            nll[t] = -logp[np.arange(len(ids)), targets] * batch.mask[t]
        return nll
