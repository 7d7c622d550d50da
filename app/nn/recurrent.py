"""What both recurrent cells share: reusable work buffers, and the rows [x_t, h_{t-1}, 1] that
one GEMM turns into all of a layer's weight gradients.

Both cells compute a_t = [x_t, h_{t-1}] W + b for every step. Stacking those rows for all steps,
with a column of ones for the bias, gives one (T*B, D+H+1) matrix XH, and then
[dW; db] = XH^T da in a single matrix product instead of three.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import ThreadpoolController

_BLAS = ThreadpoolController()


def one_blas_thread():
    """Context for a time loop: its per-step matmuls ((B, H) @ (H, 4H), a few MFLOP) run on one
    BLAS thread whatever the caller allows. Split across cores they cost more in synchronisation
    than they save (on shared cores 5-10x more); the once-per-batch GEMMs keep every thread."""
    return _BLAS.limit(limits=1, user_api="blas")


class Workspace:
    """Named arrays reused from call to call, so a training step allocates (almost) nothing.

    An array asked for again with a shape that fits its storage is the same memory, so whatever
    a call returned from it is overwritten by the next call with the same workspace. Without a
    workspace (``None``), the cells use a fresh one: every array is new, nothing is shared.
    """

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}
        self._children: dict[str, Workspace] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of this shape, reusing the storage of earlier calls."""
        size = math.prod(shape)
        flat = self._arrays.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = self._arrays[name] = np.empty(size, dtype)
        return flat[:size].reshape(shape)

    def child(self, name: str) -> Workspace:
        """A separate namespace (one per layer), so two layers never share a buffer."""
        if name not in self._children:
            self._children[name] = Workspace()
        return self._children[name]


def input_rows(work: Workspace, x: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """xh (T+1, B, D+H+1) with xh[t] = [x_t, h_{t-1}, 1]; the forward pass writes h_t into
    xh[t+1, :, D:D+H], so xh[1:, :, D:D+H] are the layer's outputs (x part of row T unused)."""
    T, B, D = x.shape
    H = h0.shape[1]
    xh = work.get("xh", (T + 1, B, D + H + 1), x.dtype)
    xh[:T, :, :D] = x
    xh[0, :, D:D + H] = h0
    xh[:, :, D + H] = 1.0
    return xh


def affine_grads(work: Workspace, xh: np.ndarray, da: np.ndarray, W: np.ndarray, D: int):
    """Gradients of a_t = [x_t, h_{t-1}] W + b given da (T, B, G): dx (T, B, D) and {W, b}.

    [dW; db] = XH^T da is one GEMM over all steps (the ones column of xh sums da into db).
    """
    T, B, G = da.shape
    da_flat = da.reshape(T * B, G)
    dWb = work.get("dWb", (W.shape[0] + 1, G), W.dtype)                 # (D+H+1, G)
    np.matmul(xh[:T].reshape(T * B, -1).T, da_flat, out=dWb)
    dx = work.get("dx", (T, B, D), W.dtype)
    np.matmul(da_flat, W[:D].T, out=dx.reshape(T * B, D))
    return dx, {"W": dWb[:-1], "b": dWb[-1]}
