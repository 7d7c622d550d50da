"""Elman RNN layer (the course notebook's model), batched forward and backward through time.

    h_t = tanh([x_t, h_{t-1}] W + b)

W has shape (D + H, H): rows [:D] play the notebook's Wxh, rows [D:] its Whh.
The input half is applied to every step in one matmul before the time loop.
"""

from __future__ import annotations

import numpy as np


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

    Wh (..., 1, H, H): the recurrent rows of W; a_in (..., 1, B, H): the input's share of the
    pre-activation, bias included (x_t W[:D] + b); state (h,) with h (..., B, H) -> h, new state.
    Leading axes, if any, are ensemble members run as one computation (``app.stacked``).
    """
    a = np.matmul(state[0], Wh[..., 0, :, :])
    a += a_in[..., 0, :, :]
    h = np.tanh(a, out=a)
    return h, (h,)


def forward(params, x, state):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for backward."""
    W, b = params["W"], params["b"]
    T, B, D = x.shape
    H = W.shape[1]
    Wh = W[D:]
    pre = (x.reshape(T * B, D) @ W[:D]).reshape(T, B, H) + b  # input part, all steps at once
    hs = np.empty_like(pre)
    h = state[0]
    for t in range(T):
        h = hs[t] = np.tanh(pre[t] + h @ Wh)
    return hs, (h,), (x, state[0], hs)


def backward(params, dhs, cache, dstate=None):
    """dhs (T, B, H) -> dx (T, B, D), parameter gradients, gradient w.r.t. the initial (h0,)."""
    W = params["W"]
    x, h0, hs = cache
    T, B, D = x.shape
    H = W.shape[1]
    Wh_T = np.ascontiguousarray(W[D:].T)  # contiguous: the per-step matmul runs ~1.6x faster
    da = np.empty_like(hs)  # (T, B, H) gradient w.r.t. the pre-activations
    dh_next = np.zeros_like(h0) if dstate is None else dstate[0]
    for t in reversed(range(T)):
        da[t] = (dhs[t] + dh_next) * (1.0 - hs[t] ** 2)  # through tanh
        dh_next = da[t] @ Wh_T
    h_prev = np.concatenate([h0[None], hs[:-1]])
    da_flat = da.reshape(T * B, H)
    dW = np.empty_like(W)
    dW[:D] = x.reshape(T * B, D).T @ da_flat
    dW[D:] = h_prev.reshape(T * B, H).T @ da_flat
    dx = (da_flat @ W[:D].T).reshape(T, B, D)
    return dx, {"W": dW, "b": da_flat.sum(axis=0)}, (dh_next,)
