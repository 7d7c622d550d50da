"""Mixtures and ensembles: weighted averages of models' next-character distributions.

    MixtureLM([ensemble, ngram], [0.51, 0.49])     # mezcla: built by python -m app.mixture
    MixtureLM([ensemble, ngram], [0.51, 0.49], gate=Gate(...))   # the weight set per step
    MixtureLM([ensemble, ngram], [0.51, 0.49], gate=Gate(...), product=Product(...))  # and a product term
    EnsembleLM(members)                             # uniform weights: built by app.training.crossfit

A mixture is self-contained: each component's arrays are stored under a prefix (``c0/``,
``c1/``) with its own metadata, so loading rebuilds the components with their own classes.
"""

from __future__ import annotations

import numpy as np

from app.data.corpus import Batch
from app.lm import checkpoint, stacked
from app.lm.forced import forced_log_probs
from app.lm.gate import Gate
from app.lm.markov import MarkovLM
from app.lm.neural import NeuralLM
from app.lm.product import Product


class MixtureLM:
    """A weighted mixture of models sharing one vocabulary; same interface as NeuralLM.

    A component that is itself a mixture (an ensemble) is flattened into its members. Members
    of one architecture are stepped as one batched computation (``app.lm.stacked``), so sampling
    M such members costs far less than M models one after the other.

    With a ``gate`` (``app.lm.gate``) the mixture has two sides, the first component and the
    second (``sides[i]`` says which side flat component i is on): each side averages its own
    members with their weights, and the gate weighs the two sides anew at every step. A
    ``product`` (``app.lm.product``, gated mixtures only) adds a share of the two sides multiplied.
    """

    kind = "mezcla"

    def __init__(self, components: list, weights, metadata: dict | None = None,
                 gate: Gate | None = None, sides=None, product: Product | None = None):
        weights = np.asarray(weights, dtype=np.float64)
        if len(weights) != len(components) or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"need one weight per component, summing to 1: {weights}")
        flat, flat_weights = [], []
        for c, w in zip(components, weights, strict=True):
            inner = c.components if isinstance(c, MixtureLM) else [c]
            flat += inner
            flat_weights += list(w * (c.weights if isinstance(c, MixtureLM) else np.ones(1)))
        self.components, self.weights = flat, np.array(flat_weights)
        self.vocab = flat[0].vocab
        if any(c.vocab.chars != self.vocab.chars for c in flat):
            raise ValueError("mixture components must share one vocabulary")
        self.metadata = metadata or {}
        # a state-conditioned component makes the mixture conditioned (the others ignore it)
        self.conditions: list[str] = next((c.conditions for c in flat if c.conditions), [])
        self._log_w = np.log(np.maximum(self.weights, 1e-300))
        self._groups = stacked.group(flat)
        order = stacked.member_order(flat, self._groups)
        self._log_w_grouped = self._log_w[order].astype(np.float32)[:, None, None]   # (M, 1, 1)
        self.gate = gate
        if gate is not None:
            self._split_sides(components, sides, order)
        elif product is not None:
            raise ValueError("a product term needs a gated mixture (two sides)")
        self.product = product

    def _split_sides(self, components: list, sides, order: np.ndarray) -> None:
        """Which side each flat component is on (``sides`` if given, else from the two
        unflattened ``components``), and each member's log weight within its side, in group order."""
        if sides is None:
            if len(components) != 2:
                raise ValueError("a gated mixture has two components, the neural and the n-gram")
            sides = [i for i, c in enumerate(components)
                     for _ in (c.components if isinstance(c, MixtureLM) else [c])]
        self.sides = np.asarray(sides, dtype=np.int64)
        if self.sides.shape != (len(self.components),) or set(self.sides.tolist()) != {0, 1}:
            raise ValueError(f"a gated mixture needs a side, 0 or 1, per component: {sides}")
        side_total = np.bincount(self.sides, weights=self.weights)
        inner = self._log_w - np.log(side_total[self.sides])
        self._grouped_sides = self.sides[order]
        self._inner_log_w_grouped = inner[order][:, None, None]                    # (M, 1, 1)

    @property
    def n_params(self) -> int:
        gate = 0 if self.gate is None else len(self.gate.theta)
        product = 0 if self.product is None else 3
        return int(sum(c.n_params for c in self.components)) + len(self.weights) + gate + product

    def initial_state(self, n: int, cond: np.ndarray | None = None):
        return tuple(g.initial_state(n, cond) for g in self._groups)

    def next_logits(self, ids: np.ndarray, state):
        """log P of the next token under the mixture (usable as logits)."""
        outputs = [g.next_log_probs(ids, s) for g, s in zip(self._groups, state, strict=True)]
        # an ensemble of one architecture is one group: no copy then (each logp is fresh)
        logp = (outputs[0][0] if len(outputs) == 1
                else np.concatenate([lp for lp, _ in outputs]))                 # (M, B, V)
        states = tuple(s for _, s in outputs)
        if self.gate is None:
            logp += self._log_w_grouped
            return np.logaddexp.reduce(logp, axis=0), states
        inner = logp + self._inner_log_w_grouped
        neural, ngram = (np.logaddexp.reduce(inner[self._grouped_sides == side], axis=0)
                         for side in (0, 1))                                      # (B, V) each
        mixed = self.gate.mix(neural, ngram)
        if self.product is not None:
            mixed = self.product.mix(mixed, neural, ngram)
        return mixed.astype(np.float32), states

    def select(self, state, keep: np.ndarray):
        return tuple(g.select(s, keep) for g, s in zip(self._groups, state, strict=True))

    def token_nll(self, batch: Batch) -> np.ndarray:
        """(T, B) NLL in nats of every target in a batch (0 on padding)."""
        if self.gate is not None:     # the gate needs every step's full distributions
            logp = forced_log_probs(self, batch)                                  # (T, B, V)
            picked = np.take_along_axis(logp, batch.targets[..., None], axis=-1)[..., 0]
            return -picked * batch.mask
        nll = np.stack([c.token_nll(batch).astype(np.float64) for c in self.components])
        return -np.logaddexp.reduce(self._log_w[:, None, None] - nll, axis=0) * batch.mask

    def checkpoint(self, metadata: dict, optimizer_state=None) -> checkpoint.Checkpoint:
        arrays, parts = {}, []
        for i, c in enumerate(self.components):
            ckpt = c.checkpoint(c.metadata)
            arrays.update({f"c{i}/{k}": v for k, v in ckpt.arrays.items()})
            parts.append({**ckpt.metadata, "kind": c.kind})
        meta = {**{k: v for k, v in metadata.items() if k not in ("gate", "product")},   # only ours
                "weights": self.weights.tolist(), "components": parts, "vocab": self.vocab.chars[1:]}
        if self.gate is not None:
            meta["gate"] = {**self.gate.to_dict(), "sides": self.sides.tolist()}
        if self.product is not None:
            meta["product"] = self.product.to_dict()
        return checkpoint.Checkpoint(kind=self.kind, arrays=arrays, metadata=meta)

    @classmethod
    def from_checkpoint(cls, ckpt: checkpoint.Checkpoint) -> MixtureLM:
        classes, components = COMPONENT_CLASSES, []
        for i, meta in enumerate(ckpt.metadata["components"]):
            prefix = f"c{i}/"
            arrays = {k[len(prefix):]: v for k, v in ckpt.arrays.items() if k.startswith(prefix)}
            part = checkpoint.Checkpoint(kind=meta["kind"], arrays=arrays, metadata=meta)
            components.append(classes[meta["kind"]].from_checkpoint(part))
        saved_gate = ckpt.metadata.get("gate")
        if saved_gate is None:
            return cls(components, ckpt.metadata["weights"], ckpt.metadata)
        saved_product = ckpt.metadata.get("product")
        return cls(components, ckpt.metadata["weights"], ckpt.metadata,
                   gate=Gate.from_dict(saved_gate), sides=saved_gate.get("sides"),
                   product=None if saved_product is None else Product.from_dict(saved_product))

    @staticmethod
    def expected_shapes(metadata: dict) -> dict[str, tuple[int, ...]]:
        classes, shapes = COMPONENT_CLASSES, {}
        if "gate" in metadata:          # refused at load, with the reason, if it cannot serve
            Gate.from_dict(metadata["gate"])
            if len(metadata["gate"].get("sides", [])) != len(metadata["components"]):
                raise ValueError("the gate does not give a side to every component")
        if "product" in metadata:
            if "gate" not in metadata:
                raise ValueError("a product term needs a gated mixture (two sides)")
            Product.from_dict(metadata["product"])
        for i, meta in enumerate(metadata["components"]):
            if meta["kind"] not in classes or meta["kind"] in MIXTURE_KINDS:
                raise ValueError(f"component {i} has unsupported kind {meta['kind']!r}")
            shapes.update({f"c{i}/{k}": s
                           for k, s in classes[meta["kind"]].expected_shapes(meta).items()})
        return shapes


class EnsembleLM(MixtureLM):
    """The plain average of several models' next-character distributions (uniform weights by
    default): members trained on different parts of the names err in different places."""

    kind = "ensemble"

    def __init__(self, components: list, weights=None, metadata: dict | None = None):
        n = len(components)
        super().__init__(components, [1.0 / n] * n if weights is None else weights, metadata)

    @property
    def family(self) -> str:
        """The members' kind when they share one (an ensemble of LSTMs is an lstm), else ours."""
        kinds = {c.kind for c in self.components}
        return kinds.pop() if len(kinds) == 1 else self.kind


MIXTURE_KINDS = (MixtureLM.kind, EnsembleLM.kind)   # flattened, never stored as components


# the kinds a mixture's checkpoint may hold: mixtures are flattened, so never a mixture itself
COMPONENT_CLASSES: dict[str, type] = {"rnn": NeuralLM, "lstm": NeuralLM, "markov": MarkovLM}
