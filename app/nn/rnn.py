"""Elman RNN layer (the course notebook's model), batched forward and backward through time.

    h_t = tanh([x_t, h_{t-1}] W + b)

W has shape (D + H, H): rows [:D] play the notebook's Wxh, rows [D:] its Whh.
The input half is applied to every step in one matmul before the time loop.
"""

from __future__ import annotations

import numpy as np

from app.nn.recurrent import AffineGrads, Cache, Workspace, input_rows


def init_params(input_size: int, hidden_size: int, rng: np.random.Generator,
                dtype=np.float32) -> dict[str, np.ndarray]:
    """Xavier-scaled input weights; orthogonal recurrent weights keep early gradients alive."""
    Wx = rng.standard_normal((input_size, hidden_size)) / np.sqrt(input_size)
    Wh, _ = np.linalg.qr(rng.standard_normal((hidden_size, hidden_size)))
    W = np.concatenate([Wx, Wh])
    return {"W": W.astype(dtype), "b": np.zeros(hidden_size, dtype)}


def zero_state(batch_size: int, hidden_size: int, dtype=np.float32) -> tuple[np.ndarray, ...]:
    return (np.zeros((batch_size, hidden_size), dtype),)


STEP_SCALE = (1.0,)   # step() takes its weights as they are (see lstm.STEP_SCALE)


def step(Wh, a_in, state):
    """One time step for sampling, gate-major like the LSTM's (one block: see
    ``network.StepWeights``).

    Wh (1, ..., H, H): the recurrent rows of W; a_in (1, ..., B, H): the input's share of the
    pre-activation, bias included (x_t W[:D] + b); state (h,) with h (..., B, H) -> h, new state.
    Axes after the first, if any, are ensemble members run as one computation (``app.lm.stacked``).
    """
    a = np.matmul(state[0], Wh[0])
    a += a_in[0]
    h = np.tanh(a, out=a)
    return h, (h,)


def forward(params, x, state, work: Workspace | None = None):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for backward.

    With a workspace, the outputs and the cache live in its buffers until its next use.
    """
    work = work or Workspace()
    W, b = params["W"], params["b"]
    T, B, D = x.shape
    H = W.shape[1]
    a = work.get("a", (T, B, H), W.dtype)              # pre-activations
    np.matmul(x.reshape(T * B, D), W[:D], out=a.reshape(T * B, H))  # input part, all steps at once
    a += b
    xh = input_rows(work, x, state[0])                 # (T+1, B, D+H+1), h_t goes to row t+1
    recurrent = work.get("recurrent", (B, H), W.dtype)
    for t in range(T):
        a[t] += np.matmul(xh[t, :, D:D + H], W[D:], out=recurrent)
        np.tanh(a[t], out=xh[t + 1, :, D:D + H])
    hs = xh[1:, :, D:D + H]                            # (T, B, H) view
    return hs, (hs[-1],), Cache(work, (xh, hs, a), _local_derivatives)


def _local_derivatives(_work, _xh, hs, a):
    """tanh' = 1 - h_t^2 of every step (T, B, H), written over the pre-activations a, which
    the backward pass does not need."""
    return (np.subtract(1.0, np.square(hs, out=a), out=a),)


def backward(params, dhs, cache: Cache, dstate=None):
    """dhs (T, B, H) -> dx (T, B, D), parameter gradients, gradient w.r.t. the initial (h0,);
    in the forward's workspace, valid until its next use."""
    W = params["W"]
    work, xh = cache.work, cache.arrays[0]
    da, = cache.derivatives()                          # (T, B, H), times dh below
    T, B, H = da.shape
    D = W.shape[0] - H
    Wh_T = work.get("Wh_T", (H, H), W.dtype)
    np.copyto(Wh_T, W[D:].T)                           # contiguous: the step's matmul runs ~1.6x faster
    dh, dh_next = work.get("dh", (B, H), W.dtype), work.get("dh_next", (B, H), W.dtype)
    dh_next[:] = 0.0 if dstate is None else dstate[0]
    weight_grads = AffineGrads(work, xh, da, W, D)
    for t in reversed(range(T)):
        da[t] *= np.add(dhs[t], dh_next, out=dh)      # (B, H) through tanh
        weight_grads.finished(t)
        np.matmul(da[t], Wh_T, out=dh_next)
    dx, grads = weight_grads.result()
    return dx, grads, (dh_next,)
