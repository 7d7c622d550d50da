"""LSTM layer: one fused gate matrix, batched forward and backward through time.

Gates are stacked in the order input, forget, output, candidate (i, f, o, g):

    a_t = [x_t, h_{t-1}] W + b                  (B, 4H)
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

W has shape (D + H, 4H): rows [:D] read the input, rows [D:] read the previous hidden state.
Training's forward takes each step's pre-activations from one matmul, [x_t, h_{t-1}, 1] @ [W; b];
sampling's ``step`` looks the input's share up in tables (``network.StepWeights``).
"""

from __future__ import annotations

import functools

import numpy as np

from app.nn.recurrent import AffineGrads, Cache, Workspace, input_rows


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


# training's forward pass and sampling's step run every gate through one tanh, with
# s(a) = (1 + tanh(a/2)) / 2 for i, f, o: the 1/2 is folded into the weights (exact: a power of
# two). Fewer numpy calls than a logistic 1 / (1 + exp(-a)) with tanh(a) = 2 s(2a) - 1 for g,
# and tanh never overflows, so no np.errstate is needed (at 10 rows it costs as much as a call).
FORWARD_SCALE = (0.5, 0.5, 0.5, 1.0)
STEP_SCALE = FORWARD_SCALE   # step() takes its weights pre-multiplied by this


@functools.cache
def _gate_scale(dtype: np.dtype) -> np.ndarray:
    """(4, 1, 1): ``FORWARD_SCALE`` per gate block of the (4, D+H+1, H) stacked weights."""
    scale = np.array(FORWARD_SCALE, dtype)[:, None, None]
    scale.flags.writeable = False   # shared by every call
    return scale


def step(Wh, a_in, state):
    """One time step for sampling, gate-major (see ``network.StepWeights``).

    Wh (4, ..., H, H): the recurrent rows of W, one block per gate i, f, o, g; a_in (4, ..., B, H):
    the input's share of the pre-activations, bias included; both scaled by ``STEP_SCALE``.
    state (h, c) each (..., B, H) -> h, new state. Axes after the gate's, if any, are ensemble
    members run as one computation (``app.lm.stacked``). With each gate a contiguous block,
    every elementwise operation runs on contiguous memory. Few rows make a step mostly numpy
    call overhead, so the state is never copied and each gate is one view.
    """
    h, c = state
    gates = np.matmul(h[None], Wh)             # (4, ..., B, H): a/2 for i, f, o and a for g
    gates += a_in
    np.tanh(gates, out=gates)                  # tanh(a/2) for i, f, o; g = tanh(a)
    sigmoid = gates[:3]
    sigmoid *= 0.5
    sigmoid += 0.5                             # s(a) = (1 + tanh(a/2)) / 2 for i, f, o
    i, f, o, g = gates
    c = f * c                                  # c_t = f * c_{t-1} + i * g
    i *= g
    c += i
    h = np.tanh(c)                             # h_t = o * tanh(c_t)
    h *= o
    return h, (h, c)


def forward(params, x, state, work: Workspace | None = None):
    """Run a whole (padded) sequence.

    x (T, B, D), state (h0, c0) each (B, H) -> hs (T, B, H), final state, cache for backward.
    With a workspace, the outputs and the cache live in its buffers until its next use.
    """
    work = work or Workspace()
    W, b = params["W"], params["b"]
    T, B, D = x.shape
    H = W.shape[1] // 4
    h0, c0 = state
    # [x_t, h_{t-1}, 1] @ [W; b]: input, recurrent and bias terms in one matmul per step, gate-major
    # (one (D+H+1, H) block per gate, so each gate's values are a contiguous (B, H) array for the
    # elementwise work) and scaled by FORWARD_SCALE
    Wb = work.get("Wb", (4, D + H + 1, H), W.dtype)
    scale = _gate_scale(W.dtype)
    np.multiply(W.reshape(D + H, 4, H).transpose(1, 0, 2), scale, out=Wb[:, :D + H])
    np.multiply(b.reshape(4, 1, H), scale, out=Wb[:, D + H:])
    xh = input_rows(work, x, h0)                          # (T+1, B, D+H+1), h_t goes to row t+1
    gates = work.get("gates", (T, 4, B, H), W.dtype)      # gate values i, f, o, g
    cs = work.get("cs", (T + 1, B, H), W.dtype)           # cs[t+1] = c_t, cs[0] = c0
    cs[0] = c0
    tanh_cs = work.get("tanh_cs", (T, B, H), W.dtype)
    ig = work.get("ig", (B, H), W.dtype)
    for t in range(T):
        g = np.matmul(xh[t], Wb, out=gates[t])            # (4, B, H): a/2 for i, f, o; a for g
        np.tanh(g, out=g)
        sigmoid = g[:3]
        sigmoid *= 0.5
        sigmoid += 0.5                                    # s(a) = (1 + tanh(a/2)) / 2
        i, f, o, gg = g
        c = cs[t + 1]
        np.multiply(f, cs[t], out=c)                      # c_t = f * c_{t-1} + i * g
        c += np.multiply(i, gg, out=ig)
        np.tanh(c, out=tanh_cs[t])
        np.multiply(o, tanh_cs[t], out=xh[t + 1, :, D:D + H])  # h_t = o * tanh(c_t)
    hs = xh[1:, :, D:D + H]                               # (T, B, H) view
    return hs, (hs[-1], cs[T]), Cache(work, (xh, gates, cs, tanh_cs), _local_derivatives)


def _local_derivatives(work, _xh, gates, cs, tanh_cs):
    """Each step's local derivatives, for all steps at once: only dh and dc need the time loop.

    da_t = Lg_t * (dc, dc, dh, dc) per gate; dc = dh * K + dc_{t+1} f_{t+1}. Returns Lg
    (T, 4, B, H), gate-major like the forward's gates, and K (T, B, H).
    """
    T, B, H = tanh_cs.shape
    i, o, gg = gates[:, 0], gates[:, 2], gates[:, 3]  # each (T, B, H)
    Lg = work.get("Lg", (T, 4, B, H), gates.dtype)
    K = work.get("K", (T, B, H), gates.dtype)
    sig, Ls = gates[:, :3], Lg[:, :3]                 # (T, 3, B, H): sigmoid gates i, f, o
    np.multiply(sig, np.subtract(1.0, sig, out=Ls), out=Ls)                 # s (1-s) for i, f, o
    Lg[:, 0] *= gg                                                          # g i (1-i)
    Lg[:, 1] *= cs[:T]                                                      # c_{t-1} f (1-f)
    Lg[:, 2] *= tanh_cs                                                     # tanh(c) o (1-o)
    np.multiply(i, np.subtract(1.0, np.square(gg, out=Lg[:, 3]), out=Lg[:, 3]), out=Lg[:, 3])  # i (1-g^2)
    np.multiply(o, np.subtract(1.0, np.square(tanh_cs, out=K), out=K), out=K)      # o (1-tanh(c)^2)
    return Lg, K


def backward(params, dhs, cache: Cache, dstate=None):
    """Backpropagate through time.

    dhs (T, B, H): loss gradient w.r.t. each step's output h_t (from the layer above).
    dstate: optional gradient w.r.t. the final (h, c).
    Returns dx (T, B, D), parameter gradients, and the gradient w.r.t. the initial (h0, c0);
    in the forward's workspace, valid until its next use.
    """
    W = params["W"]
    work, (xh, gates, _, tanh_cs) = cache.work, cache.arrays
    T, B, H = tanh_cs.shape
    D = W.shape[0] - H
    f = gates[:, 1]                                   # (T, B, H)
    Lg, K = cache.derivatives()
    Wh_T = work.get("Wh_T", (4 * H, H), W.dtype)
    np.copyto(Wh_T, W[D:].T)                           # contiguous: the step's matmul runs ~1.6x faster
    # da for every step in the (B, 4H) layout of the matmuls, and each step's (dc, dc, dh, dc)
    # gate-major: one product writes da_t, and all its operands are contiguous
    da = work.get("da", (T, B, 4, H), W.dtype)
    weight_grads = AffineGrads(work, xh, da.reshape(T, B, 4 * H), W, D)
    m = work.get("m", (4, B, H), W.dtype)
    dc, dh = m[0], m[2]
    dh_next, dc_next = work.get("dh_next", (B, H), W.dtype), work.get("dc_next", (B, H), W.dtype)
    if dstate is None:
        dh_next[:], dc_next[:] = 0.0, 0.0
    else:
        dh_next[:], dc_next[:] = dstate
    for t in reversed(range(T)):
        np.add(dhs[t], dh_next, out=dh)
        np.multiply(dh, K[t], out=dc)
        dc += dc_next
        m[1] = dc
        m[3] = dc
        np.multiply(Lg[t], m, out=da[t].transpose(1, 0, 2))
        np.multiply(dc, f[t], out=dc_next)
        weight_grads.finished(t)
        np.matmul(da[t].reshape(B, 4 * H), Wh_T, out=dh_next)
    dx, grads = weight_grads.result()
    return dx, grads, (dh_next, dc_next)
