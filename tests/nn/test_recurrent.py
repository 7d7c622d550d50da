"""The cells' shared parts: work buffers reused across calls, the helper thread, and the weight
gradients computed while the backward loop runs."""

import threading

import numpy as np
import pytest

from app.nn.recurrent import AffineGrads, Workspace, input_rows


def test_a_workspace_reuses_its_storage_and_keeps_layers_apart():
    work = Workspace()
    big = work.get("a", (4, 5), np.float32)
    small = work.get("a", (3, 2), np.float32)
    assert np.shares_memory(big, small)                       # no new allocation for a smaller ask
    assert work.get("a", (5, 5), np.float32).shape == (5, 5)  # a larger one grows it
    assert not np.shares_memory(work.child("layer0").get("a", (2,), np.float32),
                                work.child("layer1").get("a", (2,), np.float32))
    assert work.child("layer0") is work.child("layer0")


def test_a_helped_workspace_runs_jobs_on_another_thread_and_its_children_share_it():
    work = Workspace(threads=2)
    assert work.helped and work.child("layer0").helped and not Workspace().helped
    wait = work.child("layer0").aside(threading.get_ident)
    assert wait() != threading.get_ident()
    assert Workspace().aside(threading.get_ident)() == threading.get_ident()   # run right away


def _affine_grads(work, xh, da, W, D):
    """What a cell's backward does with AffineGrads: report every step, last to first."""
    grads = AffineGrads(work, xh, da, W, D)
    for t in reversed(range(len(da))):
        grads.finished(t)
    return grads.result()


@pytest.mark.parametrize("T", [1, 2, 3, 7])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_input_weight_and_bias_gradients_with_and_without_a_helper(T, threads):
    rng = np.random.default_rng(T)
    B, D, H, G = 2, 4, 5, 6
    x, h0 = rng.normal(size=(T, B, D)), rng.normal(size=(B, H))
    W, da = rng.normal(size=(D + H, G)), rng.normal(size=(T, B, G))
    work = Workspace(threads=threads)
    xh = input_rows(work, x, h0)
    hs = rng.normal(size=(T, B, H))
    xh[1:, :, D:D + H] = hs                                   # what the forward pass writes
    dx, grads = _affine_grads(work, xh, da, W, D)
    h_prev = np.concatenate([h0[None], hs[:-1]])
    inputs = np.concatenate([x, h_prev], axis=-1).reshape(T * B, D + H)
    np.testing.assert_allclose(grads["W"], inputs.T @ da.reshape(T * B, G), rtol=1e-12)
    np.testing.assert_allclose(grads["b"], da.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(dx, da @ W[:D].T, rtol=1e-12)
