"""The optimisers: textbook updates, decoupled weight decay on matrices only, clipping, averaging."""

import numpy as np
import pytest

from app.nn.optim import Adagrad, Adam, WeightAverage, clip_global_norm
from app.nn.recurrent import Workspace


def _params(rng):
    return {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}


def test_adam_matches_the_textbook_update_and_leaves_gradients_alone():
    rng = np.random.default_rng(0)
    params = _params(rng)
    expected = {k: v.copy() for k, v in params.items()}
    m = {k: 0.0 for k in params}
    v = {k: 0.0 for k in params}
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    opt = Adam(params, lr)
    for t in range(1, 5):
        grads = {k: rng.normal(size=p.shape) for k, p in params.items()}
        sent = {k: g.copy() for k, g in grads.items()}
        opt.step(params, sent)
        for k in params:
            np.testing.assert_array_equal(sent[k], grads[k])
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            m_hat, v_hat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
            # eps is added to sqrt(v), before bias correction, as in the implementation
            expected[k] -= lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - b2 ** t))
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-14)
    assert int(opt.state["t"]) == 4


def test_weight_decay_shrinks_matrices_but_not_biases():
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    zero = {k: np.zeros_like(p) for k, p in params.items()}
    Adam(params, lr=0.1, weight_decay=0.5).step(params, zero)
    np.testing.assert_allclose(params["W"], 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(params["b"], 1.0)


def test_adagrad_steps_shrink_as_squared_gradients_accumulate():
    params = {"b": np.zeros(1)}
    opt = Adagrad(params, lr=1.0)
    steps = []
    for _ in range(3):
        before = params["b"].copy()
        opt.step(params, {"b": np.ones(1)})
        steps.append(float(before[0] - params["b"][0]))
    assert steps == pytest.approx([1.0, 1 / np.sqrt(2), 1 / np.sqrt(3)], rel=1e-6)


def test_clipping_scales_all_gradients_together():
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert clip_global_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose([grads["a"][0], grads["b"][0]], [0.6, 0.8])
    small = {"a": np.array([0.1])}
    clip_global_norm(small, 1.0)
    assert small["a"][0] == 0.1


def test_weight_average_follows_the_exponential_moving_average_and_owns_its_arrays():
    rng = np.random.default_rng(1)
    params = _params(rng)
    start = {k: p.copy() for k, p in params.items()}
    average = WeightAverage(params, decay=0.9)
    expected = {k: p.copy() for k, p in params.items()}
    for _ in range(3):
        for p in params.values():
            p += rng.normal(size=p.shape)          # a training step moves the weights in place
        average.update(params)
        for k in params:
            expected[k] = 0.9 * expected[k] + 0.1 * params[k]
            np.testing.assert_allclose(average.params[k], expected[k], rtol=1e-12)
    assert not np.allclose(average.params["W"], start["W"])
    assert not np.shares_memory(average.params["W"], params["W"])


@pytest.mark.parametrize("make", [lambda p: Adam(p, lr=0.01, weight_decay=0.1),
                                  lambda p: Adagrad(p, lr=0.1, weight_decay=0.1)],
                         ids=["adam", "adagrad"])
def test_a_helper_thread_updates_half_of_each_matrix_to_the_same_numbers(make):
    rng = np.random.default_rng(0)
    shapes = {"W": (7, 5), "row": (1, 4), "b": (5,)}
    start = {name: rng.normal(size=shape).astype(np.float32) for name, shape in shapes.items()}
    alone, helped = ({name: p.copy() for name, p in start.items()} for _ in range(2))
    optimisers = make(alone), make(helped)
    averages = WeightAverage(alone, 0.9), WeightAverage(helped, 0.9)
    work = Workspace(threads=2)
    for _ in range(3):
        grads = {name: rng.normal(size=p.shape).astype(np.float32) for name, p in start.items()}
        for params, optimiser, average, with_work in zip((alone, helped), optimisers, averages,
                                                          (None, work), strict=True):
            optimiser.step(params, {n: g.copy() for n, g in grads.items()}, work=with_work)
            average.update(params, with_work)
    for name in start:
        np.testing.assert_array_equal(helped[name], alone[name])
        np.testing.assert_array_equal(averages[1].params[name], averages[0].params[name])
    assert not np.array_equal(helped["W"], start["W"])
