"""Several models as one computation: the members of a mixture or ensemble, grouped for sampling.

Neural members of one architecture (same ``ModelConfig`` and vocabulary) form a ``Stack``: their
step weights gain a member axis (after the gate axis, see ``network.stack_step_weights``), so one
step of M members is one batched matmul per layer instead of M separate ones. Any other model is
a ``Single``. Both answer the same two questions a mixture asks of its members:

    state = group.initial_state(n, cond)
    logp, state = group.next_log_probs(ids, state)   # (members, n, V) log-probabilities
"""

from __future__ import annotations

import numpy as np

from app.nn import network
from app.nn.network import log_softmax


class Single:
    """One member of any kind, behind the group interface."""

    def __init__(self, model):
        self.model = model
        self.size = 1

    def initial_state(self, n: int, cond: np.ndarray | None = None):
        return self.model.initial_state(n, cond)

    def next_log_probs(self, ids: np.ndarray, state):
        logits, state = self.model.next_logits(ids, state)
        return log_softmax(logits)[None], state

    def select(self, state, keep: np.ndarray):
        return self.model.select(state, keep)


class Stack:
    """Neural members sharing one architecture, stepped together (see the module docstring)."""

    def __init__(self, members: list):
        self.members = members
        self.size = len(members)
        self.config = members[0].config
        self._weights: network.StepWeights | None = None

    def _step_weights(self) -> network.StepWeights:
        # built once: members of a mixture are loaded read-only (see NeuralLM._step_weights)
        if self._weights is None:
            self._weights = network.stack_step_weights([m._step_weights() for m in self.members])
        return self._weights

    def initial_state(self, n: int, cond: np.ndarray | None = None):
        dtype = self.members[0].params["out.W"].dtype
        layers = [tuple(np.zeros((self.size, *s.shape), dtype) for s in layer)
                  for layer in network.zero_state(self.config, n, dtype)]   # (M, n, H) each
        return self._step_weights(), layers, cond

    def next_log_probs(self, ids: np.ndarray, state):
        weights, layers, cond = state
        logits, layers = network.step(self.config, weights, ids, layers, cond)   # (M, n, V)
        return log_softmax(logits), (weights, layers, cond)

    def select(self, state, keep: np.ndarray):
        return self.members[0].select(state, keep)


def group(models: list) -> list[Single | Stack]:
    """Models grouped for stepping: neural ones by architecture, in order of first appearance;
    the groups, read in order, list the members in that same order (see ``member_order``)."""
    stacks: dict[tuple, list] = {}
    groups: list[Single | Stack | list] = []
    for model in models:
        config = getattr(model, "config", None)
        key = (repr(config), tuple(model.vocab.chars)) if hasattr(model, "params") else None
        if key is None:
            groups.append(Single(model))
        elif key in stacks:
            stacks[key].append(model)
        else:
            stacks[key] = [model]
            groups.append(stacks[key])
    return [g if isinstance(g, Single) else (Stack(g) if len(g) > 1 else Single(g[0]))
            for g in groups]


def member_order(models: list, groups: list[Single | Stack]) -> list[int]:
    """Index in ``models`` of each member as the groups list them."""
    flat = [m for g in groups for m in (g.members if isinstance(g, Stack) else [g.model])]
    return [next(i for i, m in enumerate(models) if m is f) for f in flat]
