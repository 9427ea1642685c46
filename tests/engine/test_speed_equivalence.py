"""The fast training step computes the same math as a plain implementation, and allocates nothing
significant once warm.

The reference below is the textbook MLP written the obvious way (float64, fresh arrays
everywhere); the fast step reuses workspace buffers, writes in place, takes the bias gradient as a
GEMV and the cross-entropy through flat indices. Timing is the benchmarks' job, not the tests'.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from loomnet.engine.layers import Dense, Dropout
from loomnet.engine.network import Sequential
from loomnet.engine.optimizers import SGD, Adam
from loomnet.engine.params import StepWorkspace
from loomnet.training import Trainer
from tests.gradcheck import numeric_gradient, relative_error

ACTIVATIONS = ["relu", "sigmoid", "tanh", "identity", "leaky_relu", "elu", "gelu"]


def _reference_activation(name, z):
    """(a, da/dz) written from the definitions."""
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    if name == "sigmoid":
        a = 1 / (1 + np.exp(-z))
        return a, a * (1 - a)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1 - a**2
    if name == "identity":
        return z, np.ones_like(z)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(z)), np.where(z > 0, 1.0, np.exp(z))
    if name == "gelu":
        c = np.sqrt(2 / np.pi)
        t = np.tanh(c * (z + 0.044715 * z**3))
        return 0.5 * z * (1 + t), 0.5 * (1 + t) + 0.5 * z * (1 - t**2) * c * (1 + 3 * 0.044715 * z**2)
    raise AssertionError(name)


def _reference_loss(loss, out, y, w):
    """(L, dL/dout) with L = Σ wᵢ lᵢ / Σ wᵢ."""
    n = out.shape[0]
    w = np.ones(n) if w is None else w.astype(float)
    if loss == "softmax_cross_entropy":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        per = -np.log(p[np.arange(n), y])
        g = p.copy()
        g[np.arange(n), y] -= 1
    elif loss == "mse":
        per = ((out - y) ** 2).mean(axis=1)
        g = 2 * (out - y) / out.shape[1]
    else:  # binary cross-entropy from logits
        s = 1 / (1 + np.exp(-out))
        per = (np.maximum(out, 0) - out * y + np.log1p(np.exp(-np.abs(out)))).mean(axis=1)
        g = (s - y) / out.shape[1]
    return float(per @ w / w.sum()), g * (w / w.sum())[:, None]


def _reference_loss_and_grad(model, X, y, w):
    """Forward and backward through the Dense layers with fresh float64 arrays; flat gradient in
    the model's layout."""
    dense = [(layer, p) for layer, p in zip(model.layers, model.layer_params, strict=True)]
    h, cache = X.astype(float), []
    for layer, p in dense:
        z = h @ p["W"].astype(float) + p["b"].astype(float)
        a, da_dz = _reference_activation(layer.activation.name, z)
        cache.append((h, da_dz))
        h = a
    loss, d = _reference_loss(model.loss.name, h, y, w)
    grads = [None] * len(dense)
    for i in range(len(dense) - 1, -1, -1):
        x_in, da_dz = cache[i]
        dz = d * da_dz
        grads[i] = {"W": x_in.T @ dz, "b": dz.sum(axis=0)}
        d = dz @ dense[i][1]["W"].astype(float).T
    flat = np.zeros(model.layout.size)
    views = model.layout.views(flat)
    for i, g in enumerate(grads):
        for name, value in g.items():
            views[i][name][...] = value
    return loss, flat


def _model(activation, loss="softmax_cross_entropy", n_out=3, dtype="float64", seed=0):
    model = Sequential([Dense(7, activation), Dense(5, activation), Dense(n_out)], loss=loss, optimizer="sgd",
                       preprocess=None, dtype=dtype, seed=seed)
    return model.build(4)


def _targets(loss, n, n_out, rng):
    if loss == "softmax_cross_entropy":
        return rng.integers(0, n_out, n)
    if loss == "mse":
        return rng.standard_normal((n, n_out))
    return rng.integers(0, 2, (n, n_out)).astype(float)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse", "binary_cross_entropy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_step_equals_plain_reference(activation, loss, weighted):
    rng = np.random.default_rng(1)
    model = _model(activation, loss)
    X = rng.standard_normal((11, 4))
    y = _targets(loss, 11, 3, rng)
    w = rng.random(11) + 0.1 if weighted else None
    ws = StepWorkspace()
    for _ in range(2):  # the second call runs on reused buffers
        loss_fast, grad_fast = model.loss_and_grad(model.params, X, y, w, ws=ws)
    loss_ref, grad_ref = _reference_loss_and_grad(model, X, y, w)
    assert loss_fast == pytest.approx(loss_ref, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad_fast, grad_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "gelu"])
def test_workspace_step_passes_finite_differences(activation):
    rng = np.random.default_rng(2)
    model = _model(activation)
    X = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    ws = StepWorkspace()
    model.loss_and_grad(model.params, X, y, ws=ws)
    _, grad = model.loss_and_grad(model.params, X, y, ws=ws)
    params = model.params.copy()
    numeric = numeric_gradient(lambda p: model.loss_and_grad(p, X, y, ws=ws)[0], params)
    assert relative_error(grad, numeric) < 1e-6


def test_reused_workspace_matches_fresh_one_across_batch_shapes():
    rng = np.random.default_rng(3)
    model = _model("relu", dtype="float32")
    ws = StepWorkspace()
    for n in (8, 3, 8, 1, 8):
        X = rng.standard_normal((n, 4)).astype(np.float32)
        y = rng.integers(0, 3, n)
        loss_reused, grad_reused = model.loss_and_grad(model.params, X, y, ws=ws)
        loss_fresh, grad_fresh = model.loss_and_grad(model.params, X, y)
        assert loss_reused == loss_fresh
        np.testing.assert_array_equal(grad_reused, grad_fresh)


def test_float32_step_matches_float64_reference():
    rng = np.random.default_rng(4)
    model = _model("relu", dtype="float32")
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    loss32, grad32 = model.loss_and_grad(model.params, X, y, ws=StepWorkspace())
    assert grad32.dtype == np.float32
    loss_ref, grad_ref = _reference_loss_and_grad(model, X, y, None)
    assert loss32 == pytest.approx(loss_ref, rel=1e-5)
    np.testing.assert_allclose(grad32, grad_ref, rtol=1e-4, atol=1e-6)


def test_train_step_equals_reference_momentum_sgd_update():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((32, 4))
    y = rng.integers(0, 3, 32)
    model = Sequential([Dense(7, "relu"), Dense(3)], optimizer=SGD(0.1, momentum=0.9), preprocess=None,
                       dtype="float64", seed=0)
    trainer = Trainer(model, X, y, epochs=1, batch_size=8, shuffle=False)
    params, velocity = model.params.copy(), np.zeros_like(model.params)
    for step in range(4):
        idx = np.arange(step * 8, step * 8 + 8)
        model_copy = Sequential.from_config(model.get_config(), params)
        _, grad = _reference_loss_and_grad(model_copy, X[idx], y[idx], None)
        velocity = 0.9 * velocity + grad
        params = params - 0.1 * velocity
        trainer.train_step(0, step, idx)
    np.testing.assert_allclose(model.params, params, rtol=1e-12, atol=1e-12)


def _steady_state_peak(trainer: Trainer, steps: int = 6) -> int:
    """Peak bytes traced (tracemalloc) while running ``steps`` warm training steps."""
    order = trainer.epoch_order(0)
    bs = trainer.batch_size
    for step in range(3):
        trainer.train_step(0, step, order[step * bs:(step + 1) * bs])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for step in range(3, 3 + steps):
            trainer.train_step(0, step, order[step * bs:(step + 1) * bs])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("optimizer", [SGD(0.01, momentum=0.9), Adam()], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("weighted", [False, True])
def test_steady_state_step_allocates_nothing_significant(activation, optimizer, weighted):
    # One (batch × units) activation is 512·512·4 = 1 MiB here; a per-step temporary of that size
    # would show. What remains is O(batch) bookkeeping (indices, per-row losses) and NumPy's
    # fixed-size (8192-element) ufunc buffers for broadcast operands.
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8192, 64)).astype(np.float32)
    y = rng.integers(0, 10, 8192)
    w = rng.random(8192) + 0.5 if weighted else None
    model = Sequential([Dense(512, activation), Dense(512, activation), Dense(10)], optimizer=optimizer,
                       preprocess=None, seed=0)
    trainer = Trainer(model, X, y, epochs=1, batch_size=512, sample_weight=w)
    assert _steady_state_peak(trainer) < 128 * 1024


def test_steady_state_step_with_dropout_allocates_nothing_significant():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8192, 64)).astype(np.float32)
    y = rng.integers(0, 10, 8192)
    model = Sequential([Dense(512, "relu"), Dropout(0.2), Dense(10)], optimizer="adam", preprocess=None, seed=0)
    trainer = Trainer(model, X, y, epochs=1, batch_size=512)
    assert _steady_state_peak(trainer) < 128 * 1024


def test_gradient_scale_multiplies_the_gradient_not_the_loss():
    """``grad_scale`` (the training loop passes SGD's learning rate) scales dL/dθ, L2 term
    included, and leaves the loss alone."""
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    model = Sequential([Dense(7, "tanh"), Dense(3)], preprocess=None, dtype="float64", l2=0.01, seed=0)
    model.build(5)
    loss, grad = model.loss_and_grad(model.params, X, y)
    loss_s, grad_s = model.loss_and_grad(model.params, X, y, grad_scale=0.25)
    assert loss_s == loss
    np.testing.assert_allclose(grad_s, 0.25 * grad, rtol=1e-13, atol=1e-16)


def test_softmax_cross_entropy_takes_integer_valued_float_labels():
    from loomnet.engine.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(2)
    out, y = rng.standard_normal((6, 3)), rng.integers(0, 3, 6)
    loss = SoftmaxCrossEntropy()
    g_int, g_float = np.empty_like(out), np.empty_like(out)
    from_ints = loss.forward_backward(out, y, grad_out=g_int)
    assert loss.forward_backward(out, y.astype(float), grad_out=g_float) == from_ints
    np.testing.assert_array_equal(g_int, g_float)
