"""The cells' shared parts: work buffers reused across calls, and the one-GEMM weight gradients."""

import numpy as np

from app.nn.recurrent import Workspace, affine_grads, input_rows


def test_a_workspace_reuses_its_storage_and_keeps_layers_apart():
    work = Workspace()
    big = work.get("a", (4, 5), np.float32)
    small = work.get("a", (3, 2), np.float32)
    assert np.shares_memory(big, small)                       # no new allocation for a smaller ask
    assert work.get("a", (5, 5), np.float32).shape == (5, 5)  # a larger one grows it
    assert not np.shares_memory(work.child("layer0").get("a", (2,), np.float32),
                                work.child("layer1").get("a", (2,), np.float32))
    assert work.child("layer0") is work.child("layer0")


def test_one_gemm_gives_the_input_weight_and_bias_gradients():
    rng = np.random.default_rng(0)
    T, B, D, H, G = 3, 2, 4, 5, 6
    x, h0 = rng.normal(size=(T, B, D)), rng.normal(size=(B, H))
    W, da = rng.normal(size=(D + H, G)), rng.normal(size=(T, B, G))
    work = Workspace()
    xh = input_rows(work, x, h0)
    hs = rng.normal(size=(T, B, H))
    xh[1:, :, D:D + H] = hs                                   # what the forward pass writes
    dx, grads = affine_grads(work, xh, da, W, D)
    h_prev = np.concatenate([h0[None], hs[:-1]])
    inputs = np.concatenate([x, h_prev], axis=-1).reshape(T * B, D + H)
    np.testing.assert_allclose(grads["W"], inputs.T @ da.reshape(T * B, G), rtol=1e-12)
    np.testing.assert_allclose(grads["b"], da.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(dx, da @ W[:D].T, rtol=1e-12)
