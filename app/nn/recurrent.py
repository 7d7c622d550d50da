"""What both recurrent cells share: reusable work buffers and their optional helper thread, the
forward's cache for the backward, and the rows [x_t, h_{t-1}, 1] that one GEMM turns into all
of a layer's weight gradients.

Both cells compute a_t = [x_t, h_{t-1}] W + b for every step. Stacking those rows for all steps,
with a column of ones for the bias, gives one (T*B, D+H+1) matrix XH, and then
[dW; db] = XH^T da in a single matrix product instead of three. The time loops cannot be split
between cores, but what needs no loop can run beside them (``Workspace.aside``): each step's
local derivatives, dx of steps already backpropagated, half of that GEMM's columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

_BLAS = ThreadpoolController()
R = TypeVar("R")


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

    def __init__(self, threads: int = 1):
        self._arrays: dict[str, np.ndarray] = {}
        self._children: dict[str, Workspace] = {}
        # threads > 1: one helper thread for work off the time loops' path (``aside``); a
        # training step has no use for more
        self._helper = (ThreadPoolExecutor(1, thread_name_prefix="workspace-helper")
                        if threads > 1 else None)

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of this shape, reusing the storage of earlier calls."""
        size = math.prod(shape)
        flat = self._arrays.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = self._arrays[name] = np.empty(size, dtype)
        return flat[:size].reshape(shape)

    def child(self, name: str) -> Workspace:
        """A separate namespace (one per layer), so two layers never share a buffer; it shares
        the helper thread."""
        if name not in self._children:
            child = self._children[name] = Workspace()
            child._helper = self._helper
        return self._children[name]

    @property
    def helped(self) -> bool:
        """Whether ``aside`` runs its jobs on a helper thread."""
        return self._helper is not None

    def aside(self, job: Callable[[], R]) -> Callable[[], R]:
        """Start job on the helper thread, or run it now without one; returns a call that waits
        for it and gives its result. numpy releases the GIL in its loops and BLAS, so the job
        runs beside the caller's numpy calls on a second core."""
        if self._helper is None:
            result = job()
            return lambda: result
        return self._helper.submit(job).result


@dataclass
class Cache:
    """What a cell's forward keeps for its backward: its workspace, its arrays, and how to get
    each step's local derivatives from them (all the backward needs before the gradient of
    the outputs arrives)."""

    work: Workspace
    arrays: tuple[np.ndarray, ...]
    derive: Callable[..., tuple[np.ndarray, ...]]   # derive(work, *arrays) -> derivatives
    _derivatives: Callable[[], tuple[np.ndarray, ...]] | None = field(default=None, init=False,
                                                                      repr=False)

    def start_backward(self) -> None:
        """Compute the local derivatives aside (``Workspace.aside``), while the caller works out
        the gradient w.r.t. the outputs."""
        self._derivatives = self.work.aside(lambda: self.derive(self.work, *self.arrays))

    def derivatives(self) -> tuple[np.ndarray, ...]:
        """The local derivatives: waited for if started aside, else computed now."""
        if self._derivatives is None:
            self.start_backward()
        return self._derivatives()


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


class AffineGrads:
    """Gradients of a_t = [x_t, h_{t-1}] W + b given da (T, B, G): dx (T, B, D) and {W, b}.

    dx = da W[:D]^T, and [dW; db] = XH^T da over all steps (the ones column of xh sums da
    into db). The backward loop reports every step it has finished (``finished``): once it is
    past the later half of the steps, their dx starts beside it (``Workspace.aside``); then
    ``result`` computes the earlier steps' dx and the first half of [dW; db]'s columns aside,
    the other half here. Always these parts (without a helper, one after the other): BLAS may
    round a part differently from the whole, and the gradients must not depend on the helper.
    """

    def __init__(self, work: Workspace, xh: np.ndarray, da: np.ndarray, W: np.ndarray, D: int):
        T, B, G = da.shape
        self.work, self.W_in, self.B = work, W[:D], B
        self.split = T // 2                                        # the later half is [split:]
        self.rows = xh[:T].reshape(T * B, -1)                     # (T*B, D+H+1)
        self.da = da.reshape(T * B, G)
        self.dWb = work.get("dWb", (W.shape[0] + 1, G), W.dtype)  # (D+H+1, G)
        self.dx = work.get("dx", (T * B, D), W.dtype)
        self._later: Callable[[], None] | None = None

    def _inputs(self, steps: slice) -> None:
        np.matmul(self.da[steps], self.W_in.T, out=self.dx[steps])

    def _weights(self, columns: slice) -> None:
        np.matmul(self.rows.T, self.da[:, columns], out=self.dWb[:, columns])

    def finished(self, t: int) -> None:
        """The loop has written da[t] (it runs from the last step to the first)."""
        if t == self.split:
            self._later = self.work.aside(lambda: self._inputs(slice(t * self.B, None)))

    def result(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        earlier, half = slice(None, self.split * self.B), self.dWb.shape[1] // 2
        first = self.work.aside(lambda: (self._inputs(earlier), self._weights(slice(None, half))))
        self._weights(slice(half, None))
        first()
        self._later()
        return (self.dx.reshape(-1, self.B, self.dx.shape[1]),
                {"W": self.dWb[:-1], "b": self.dWb[-1]})
