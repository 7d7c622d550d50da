"""Optimisers over a flat dict of parameters: Adam with decoupled weight decay, and Adagrad;
and a moving average of the weights.

Their state (moments, step count) is a dict of arrays too, so it goes into the checkpoint and
``--resume`` continues exactly where training stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.nn.recurrent import Workspace

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


def in_halves(update: Callable[[str, slice], None], params: Params,
              work: Workspace | None) -> None:
    """``update(name, rows)`` over the rows of every parameter; with a helper thread
    (``Workspace.aside``), the first half of each matrix's rows beside the rest. The updates
    are elementwise, so the numbers are the same either way."""
    if work is None or not work.helped:
        for name in params:
            update(name, slice(None))
        return
    first = [(name, slice(len(p) // 2)) for name, p in params.items() if p.ndim >= 2]
    done = work.aside(lambda: [update(name, rows) for name, rows in first])
    for name, p in params.items():
        update(name, slice(len(p) // 2, None) if p.ndim >= 2 else slice(None))
    done()


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

    def step(self, params: Params, grads: Params, lr_scale: float = 1.0,
             work: Workspace | None = None) -> None:
        b1, b2 = self.betas
        self.state["t"] = t = self.state["t"] + 1
        lr = float(self.lr * lr_scale)
        # python floats: a numpy float64 scalar would make every in-place product on a float32
        # array a float64 loop with casts in and out
        step = lr * float(np.sqrt(1 - b2 ** t) / (1 - b1 ** t))

        def update(name: str, rows: slice) -> None:
            p, g, tmp = params[name][rows], grads[name][rows], self._scratch[name][rows]
            m, v = self.state[f"m.{name}"][rows], self.state[f"v.{name}"][rows]
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

        in_halves(update, params, work)


class Adagrad:
    """The notebook's optimiser: per-parameter steps shrink with the sum of squared gradients."""

    def __init__(self, params: Params, lr: float, weight_decay: float = 0.0, eps: float = 1e-8):
        self.lr, self.weight_decay, self.eps = lr, weight_decay, eps
        self.state: Params = {"t": np.zeros((), np.int64)}
        for name, p in params.items():
            self.state[f"g2.{name}"] = np.zeros_like(p)

    def step(self, params: Params, grads: Params, lr_scale: float = 1.0,
             work: Workspace | None = None) -> None:
        self.state["t"] = self.state["t"] + 1
        lr = self.lr * lr_scale

        def update(name: str, rows: slice) -> None:
            p, g, g2 = params[name][rows], grads[name][rows], self.state[f"g2.{name}"][rows]
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            g2 += g * g
            p -= lr * g / np.sqrt(g2 + self.eps)

        in_halves(update, params, work)


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

    def update(self, params: Params, work: Workspace | None = None) -> None:
        def update(name: str, rows: slice) -> None:
            average = self.params[name][rows]
            average *= self.decay
            average += np.multiply(params[name][rows], 1 - self.decay, out=self._scratch[name][rows])

        in_halves(update, params, work)
