"""Optimisers over a flat dict of parameters: Adam with decoupled weight decay, and Adagrad;
and a moving average of the weights.

Their state (moments, step count) is a dict of arrays too, so it goes into the checkpoint and
``--resume`` continues exactly where training stopped.
"""

from __future__ import annotations

import numpy as np

Params = dict[str, np.ndarray]


def clip_global_norm(grads: Params, max_norm: float) -> float:
    """Scale all gradients together so their joint L2 norm is at most max_norm; returns the norm."""
    # BLAS dot products: 3x faster than einsum's loop, which spent its time parsing and iterating
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm


class Adam:
    """Adam; weight decay is decoupled (AdamW) and applies to matrices only, not biases."""

    def __init__(self, params: Params, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.state: Params = {"t": np.zeros((), np.int64)}
        for name, p in params.items():
            self.state[f"m.{name}"] = np.zeros_like(p)
            self.state[f"v.{name}"] = np.zeros_like(p)
        self._scratch = {name: np.empty_like(p) for name, p in params.items()}  # not state

    def step(self, params: Params, grads: Params, lr_scale: float = 1.0) -> None:
        b1, b2 = self.betas
        self.state["t"] = t = self.state["t"] + 1
        lr = float(self.lr * lr_scale)
        # python floats: a numpy float64 scalar would make every in-place product on a float32
        # array a float64 loop with casts in and out
        step = lr * float(np.sqrt(1 - b2 ** t) / (1 - b1 ** t))
        for name, p in params.items():
            g, tmp = grads[name], self._scratch[name]
            m, v = self.state[f"m.{name}"], self.state[f"v.{name}"]
            m *= b1                                     # m = b1 m + (1 - b1) g
            m += np.multiply(g, 1 - b1, out=tmp)
            v *= b2                                     # v = b2 v + (1 - b2) g^2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            if self.weight_decay and p.ndim >= 2:
                p *= 1 - lr * self.weight_decay
            np.sqrt(v, out=tmp)                         # p -= lr_t m / (sqrt(v) + eps)
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp


class Adagrad:
    """The notebook's optimiser: per-parameter steps shrink with the sum of squared gradients."""

    def __init__(self, params: Params, lr: float, weight_decay: float = 0.0, eps: float = 1e-8):
        self.lr, self.weight_decay, self.eps = lr, weight_decay, eps
        self.state: Params = {"t": np.zeros((), np.int64)}
        for name, p in params.items():
            self.state[f"g2.{name}"] = np.zeros_like(p)

    def step(self, params: Params, grads: Params, lr_scale: float = 1.0) -> None:
        self.state["t"] = self.state["t"] + 1
        lr = self.lr * lr_scale
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            g2 = self.state[f"g2.{name}"]
            g2 += g * g
            p -= lr * g / np.sqrt(g2 + self.eps)


OPTIMIZERS = {"adam": Adam, "adagrad": Adagrad}


class WeightAverage:
    """Exponential moving average of the weights (Polyak averaging), updated after every step.

    Evaluated and saved in place of the raw weights, it smooths out the noise of the last
    steps of a high learning rate without changing how training itself moves.
    """

    def __init__(self, params: Params, decay: float):
        self.decay = decay
        self.params: Params = {name: p.copy() for name, p in params.items()}
        self._scratch = {name: np.empty_like(p) for name, p in params.items()}

    def update(self, params: Params) -> None:
        for name, p in params.items():
            average = self.params[name]
            average *= self.decay
            average += np.multiply(p, 1 - self.decay, out=self._scratch[name])
