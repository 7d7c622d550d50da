"""Teacher forcing through any model's step interface: its full next-character distribution at
every position of a batch, not only the target's probability (what a gate or a student needs)."""

from __future__ import annotations

import numpy as np

from app.data.corpus import Batch
from app.nn.network import log_softmax
from app.nn.recurrent import one_blas_thread


def forced_log_probs(model, batch: Batch) -> np.ndarray:
    """(T, B, V) float64 log P(next token) at every step, reading the batch's true inputs.

    Names that have ended leave the batch (``model.select``), so a batch costs its names'
    lengths, not its longest name's times its size; their padding rows stay 0. The per-step
    matmuls run on one BLAS thread, as in training (``one_blas_thread``).
    """
    with one_blas_thread():
        return _forced_log_probs(model, batch)


def _forced_log_probs(model, batch: Batch) -> np.ndarray:
    T, B = batch.inputs.shape
    state, rows, out = model.initial_state(B, batch.cond), np.arange(B), None
    for t in range(T):
        alive = batch.mask[t, rows] > 0
        if not alive.all():                  # a name ends for good: its mask stays 0
            keep = np.flatnonzero(alive)
            state, rows = model.select(state, keep), rows[keep]
        if not len(rows):
            break
        logits, state = model.next_logits(batch.inputs[t, rows], state)      # (rows, V)
        if out is None:
            out = np.zeros((T, B, logits.shape[1]))
        out[t, rows] = log_softmax(np.asarray(logits, np.float64))
    return out
