"""LSTM layer: one fused gate matrix, batched forward and backward through time.

Gates are stacked in the order input, forget, output, candidate (i, f, o, g):

    a_t = [x_t, h_{t-1}] W + b                  (B, 4H)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

W has shape (D + H, 4H): rows [:D] read the input, rows [D:] read the previous hidden state.
The input half is applied to every step in one matmul before the time loop.
"""

from __future__ import annotations

import functools

import numpy as np


def init_params(input_size: int, hidden_size: int, rng: np.random.Generator,
                forget_bias: float = 1.0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Xavier-scaled fused weights; a positive forget bias so memory is kept early in training."""
    W = rng.standard_normal((input_size + hidden_size, 4 * hidden_size))
    W /= np.sqrt(input_size + hidden_size)
    b = np.zeros(4 * hidden_size)
    b[hidden_size:2 * hidden_size] = forget_bias
    return {"W": W.astype(dtype), "b": b.astype(dtype)}


def zero_state(batch_size: int, hidden_size: int, dtype=np.float32) -> tuple[np.ndarray, ...]:
    return (np.zeros((batch_size, hidden_size), dtype), np.zeros((batch_size, hidden_size), dtype))


# per gate i, f, o, g: sigmoid(x) = (1 + tanh(x / 2)) / 2, so the sigmoid gates' pre-activations
# are halved before one tanh runs over all four. step() takes its weights pre-multiplied by this
# (halving is exact in floating point), which saves that pass at every sampling step.
STEP_SCALE = (0.5, 0.5, 0.5, 1.0)


@functools.cache
def _gate_scale(H: int, dtype: np.dtype) -> np.ndarray:
    """(4H,): ``STEP_SCALE`` per column of a (B, 4H) pre-activation (see ``_activate``)."""
    scale = np.repeat(np.array(STEP_SCALE, dtype), H)
    scale.flags.writeable = False   # shared by every call
    return scale


def _activate(a: np.ndarray, H: int) -> np.ndarray:
    """(B, 4H) pre-activations -> gate values, in place: sigmoid on i, f, o and tanh on g.

    sigmoid(x) = (1 + tanh(x / 2)) / 2 never overflows, unlike 1 / (1 + exp(-x)); halving the
    i, f, o columns first lets a single tanh run over the whole contiguous array (~30% faster
    than activating the column blocks one by one).
    """
    np.multiply(a, _gate_scale(H, a.dtype), out=a)
    np.tanh(a, out=a)
    _half_tanh_to_sigmoid(a[:, :3 * H])
    return a


def _half_tanh_to_sigmoid(t: np.ndarray) -> None:
    """tanh(x / 2) -> sigmoid(x), in place."""
    t += 1.0
    t *= 0.5


def step(Wh, a_in, state):
    """One time step for sampling, gate-major (see ``network.StepWeights``).

    Wh (..., 4, H, H): the recurrent rows of W, one block per gate i, f, o, g; a_in (..., 4, B, H):
    the input's share of the pre-activations, bias included; both scaled by ``STEP_SCALE``.
    state (h, c) each (..., B, H) -> h, new state. Leading axes, if any, are ensemble members run
    as one computation (``app.stacked``). With each gate a contiguous block, the matmul is four
    small ones and every elementwise operation runs on contiguous memory: ~25% faster than
    (B, 4H) for a few rows.
    """
    h, c = state
    gates = np.matmul(h[..., None, :, :], Wh)  # (..., 4, B, H), i, f, o halved already
    gates += a_in
    np.tanh(gates, out=gates)
    _half_tanh_to_sigmoid(gates[..., :3, :, :])
    i, f, o, g = (gates[..., k, :, :] for k in range(4))
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, (h, c)


def forward(params, x, state):
    """Run a whole (padded) sequence.

    x (T, B, D), state (h0, c0) each (B, H) -> hs (T, B, H), final state, cache for backward.
    """
    W, b = params["W"], params["b"]
    T, B, D = x.shape
    H = W.shape[1] // 4
    Wh = W[D:]
    pre = (x.reshape(T * B, D) @ W[:D]).reshape(T, B, 4 * H) + b  # input part, all steps at once
    gates = np.empty_like(pre)                 # (T, B, 4H) after the nonlinearities
    cs = np.empty((T, B, H), dtype=pre.dtype)  # cell states
    tanh_cs = np.empty_like(cs)
    hs = np.empty_like(cs)
    h, c = state
    for t in range(T):
        g = gates[t]
        np.matmul(h, Wh, out=g)
        g += pre[t]
        _activate(g, H)
        c = g[:, H:2 * H] * c + g[:, :H] * g[:, 3 * H:]
        tanh_cs[t] = np.tanh(c)
        h = g[:, 2 * H:3 * H] * tanh_cs[t]
        cs[t], hs[t] = c, h
    return hs, (h, c), (x, state, gates, cs, tanh_cs, hs)


def backward(params, dhs, cache, dstate=None):
    """Backpropagate through time.

    dhs (T, B, H): loss gradient w.r.t. each step's output h_t (from the layer above).
    dstate: optional gradient w.r.t. the final (h, c).
    Returns dx (T, B, D), parameter gradients, and the gradient w.r.t. the initial (h0, c0).
    """
    W = params["W"]
    x, (h0, c0), gates, cs, tanh_cs, hs = cache
    T, B, D = x.shape
    H = W.shape[1] // 4
    Wh_T = np.ascontiguousarray(W[D:].T)  # contiguous: the per-step matmul runs ~1.6x faster
    da = np.empty_like(gates)  # (T, B, 4H) gradient w.r.t. the pre-activations
    dh_next, dc_next = (np.zeros_like(h0), np.zeros_like(c0)) if dstate is None else dstate
    for t in reversed(range(T)):
        g = gates[t]
        i, f, o, gg = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        c_prev = cs[t - 1] if t > 0 else c0
        dh = dhs[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_cs[t] ** 2)
        d = da[t]
        d[:, :H] = dc * gg * i * (1.0 - i)
        d[:, H:2 * H] = dc * c_prev * f * (1.0 - f)
        d[:, 2 * H:3 * H] = dh * tanh_cs[t] * o * (1.0 - o)
        d[:, 3 * H:] = dc * i * (1.0 - gg ** 2)
        dc_next = dc * f
        dh_next = d @ Wh_T
    h_prev = np.concatenate([h0[None], hs[:-1]])  # (T, B, H)
    da_flat = da.reshape(T * B, 4 * H)
    dW = np.empty_like(W)
    dW[:D] = x.reshape(T * B, D).T @ da_flat
    dW[D:] = h_prev.reshape(T * B, H).T @ da_flat
    dx = (da_flat @ W[:D].T).reshape(T, B, D)
    return dx, {"W": dW, "b": da_flat.sum(axis=0)}, (dh_next, dc_next)
