"""A trained RNN or LSTM as the rest of the product sees it: vocabulary + next-token logits.

Every model kind offers the same small interface (see ``app.lm.base``), so sampling, scoring,
evaluation and the web service never ask which kind it is:

    state = model.initial_state(n, cond)          # n sequences, each at the boundary token
    logits, state = model.next_logits(ids, state) # ids (n,) -> logits (n, V)
"""

from __future__ import annotations

import numpy as np

from app.data.corpus import Batch, Vocabulary
from app.lm import checkpoint
from app.nn import network
from app.nn.network import ModelConfig


class NeuralLM:
    """An RNN or LSTM with its vocabulary and training metadata."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray], vocab: Vocabulary,
                 metadata: dict | None = None):
        self.config, self.params, self.vocab = config, params, vocab
        self.metadata = metadata or {}
        self.conditions: list[str] = self.metadata.get("conditions", [])
        self._cached_step_weights: network.StepWeights | None = None

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def initial_state(self, n: int, cond: np.ndarray | None = None):
        # the step tables travel with the state, so a batch keeps the weights it started with
        layers = network.zero_state(self.config, n, self.params["out.W"].dtype)
        return self._step_weights(), layers, cond

    def _step_weights(self) -> network.StepWeights:
        """``network.step_weights``, built once if the weights are read-only (loaded from a
        checkpoint), else per batch: training updates its weights in place."""
        if self._cached_step_weights is not None:
            return self._cached_step_weights
        weights = network.step_weights(self.config, self.params)
        if not any(p.flags.writeable for p in self.params.values()):
            self._cached_step_weights = weights
        return weights

    def next_logits(self, ids: np.ndarray, state):
        weights, layers, cond = state
        logits, layers = network.step(self.config, weights, ids, layers, cond)
        return logits, (weights, layers, cond)

    def select(self, state, keep: np.ndarray):
        """The state of the sequences at indices ``keep`` (to drop finished ones mid-batch)."""
        weights, layers, cond = state
        layers = [tuple(s[..., keep, :] for s in layer) for layer in layers]
        return weights, layers, (None if cond is None else cond[keep])

    def token_nll(self, batch: Batch) -> np.ndarray:
        """(T, B) NLL in nats of every target in a batch (0 on padding), dropout off."""
        return network.loss_and_grads(self.config, self.params, batch, want_grads=False)[2]

    def checkpoint(self, metadata: dict, optimizer_state=None) -> checkpoint.Checkpoint:
        meta = {**metadata, "config": self.config.to_dict(), "vocab": self.vocab.chars[1:]}
        return checkpoint.Checkpoint(kind=self.kind, arrays=self.params, metadata=meta,
                                     optimizer_state=optimizer_state or {})

    @classmethod
    def from_checkpoint(cls, ckpt: checkpoint.Checkpoint) -> NeuralLM:
        config = ModelConfig(**ckpt.metadata["config"])
        vocab = Vocabulary(ckpt.metadata["vocab"])
        params = {k: v.astype(np.float32) for k, v in ckpt.arrays.items()}
        for p in params.values():
            p.flags.writeable = False   # a loaded model is for scoring and sampling
        return cls(config, params, vocab, ckpt.metadata)

    @staticmethod
    def expected_shapes(metadata: dict) -> dict[str, tuple[int, ...]]:
        config = ModelConfig(**metadata["config"])
        if config.vocab_size != len(metadata["vocab"]) + 1:
            raise ValueError(f"config.vocab_size {config.vocab_size} does not match the vocabulary "
                             f"({len(metadata['vocab'])} characters + boundary)")
        return network.param_shapes(config)
