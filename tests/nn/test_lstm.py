"""The LSTM layer: step-by-step equals whole-sequence, carried state, and the final-state gradient."""

import numpy as np
import pytest

from app.nn import lstm, network, rnn

CELLS = {"lstm": lstm, "rnn": rnn}


def _layer(cell, D=3, H=4, seed=0):
    rng = np.random.default_rng(seed)
    params = cell.init_params(D, H, rng, dtype=np.float64)
    params["b"] += rng.normal(0, 0.5, params["b"].shape)
    state = tuple(rng.normal(0, 0.5, s.shape) for s in cell.zero_state(2, H, np.float64))
    x = rng.normal(size=(6, 2, D))
    return params, state, x


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_step_by_step_matches_whole_sequence(kind):
    cell = CELLS[kind]
    params, state, x = _layer(cell)
    hs, final, _ = cell.forward(params, x, state)
    D = x.shape[2]
    s = state
    for t in range(x.shape[0]):
        H = s[0].shape[1]
        scale = np.array(cell.STEP_SCALE)[:, None, None]
        a_in = network.gate_major(x[t] @ params["W"][:D] + params["b"], H) * scale
        h, s = cell.step(network.gate_major(params["W"][D:], H) * scale, a_in, s)
        np.testing.assert_allclose(h, hs[t], rtol=1e-12)
    for a, b in zip(s, final, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_running_in_two_halves_carrying_state_gives_same_outputs_and_gradients(kind):
    cell = CELLS[kind]
    params, state, x = _layer(cell, seed=1)
    rng = np.random.default_rng(2)
    dhs = rng.normal(size=(6, 2, 4))
    hs, _, cache = cell.forward(params, x, state)
    dx, grads, dstate0 = cell.backward(params, dhs, cache)

    hs1, mid, cache1 = cell.forward(params, x[:3], state)
    hs2, _, cache2 = cell.forward(params, x[3:], mid)
    np.testing.assert_allclose(np.concatenate([hs1, hs2]), hs, rtol=1e-12)
    dx2, grads2, dmid = cell.backward(params, dhs[3:], cache2)
    dx1, grads1, dstate0_split = cell.backward(params, dhs[:3], cache1, dstate=dmid)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx, rtol=1e-10, atol=1e-12)
    for name in grads:
        np.testing.assert_allclose(grads1[name] + grads2[name], grads[name], rtol=1e-10, atol=1e-12)
    for a, b in zip(dstate0_split, dstate0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_initial_state_gradient_matches_finite_differences():
    params, state, x = _layer(lstm, seed=3)
    rng = np.random.default_rng(4)
    dhs = rng.normal(size=(6, 2, 4))
    _, _, cache = lstm.forward(params, x, state)
    _, _, (dh0, dc0) = lstm.backward(params, dhs, cache)
    h0, c0 = state
    eps = 1e-6
    for arr, grad in ((h0, dh0), (c0, dc0)):
        idx = (1, 2)
        saved = arr[idx]
        arr[idx] = saved + eps
        plus = float((lstm.forward(params, x, state)[0] * dhs).sum())
        arr[idx] = saved - eps
        minus = float((lstm.forward(params, x, state)[0] * dhs).sum())
        arr[idx] = saved
        assert grad[idx] == pytest.approx((plus - minus) / (2 * eps), rel=1e-6)


def test_forget_bias_starts_positive():
    params = lstm.init_params(3, 4, np.random.default_rng(0), forget_bias=1.0)
    np.testing.assert_array_equal(params["b"][4:8], 1.0)
    np.testing.assert_array_equal(params["b"][:4], 0.0)
