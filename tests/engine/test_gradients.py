"""Every layer, activation and loss against central finite differences in float64."""

import numpy as np
import pytest

from loomnet import (
    ActivationLayer,
    BatchNorm,
    CategoricalEmbedding,
    Dense,
    Dropout,
    LayerNorm,
    PeriodicEmbedding,
    Residual,
    Sequential,
)
from loomnet.engine.activations import ACTIVATIONS, get_activation
from loomnet.engine.losses import LOSSES, get_loss
from tests.gradcheck import numeric_gradient, relative_error

TOL = 1e-6


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name, rng):
    act = get_activation(name)
    z = rng.normal(size=(5, 4)) * 2
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kinks of relu-like units
    upstream = rng.normal(size=z.shape)

    def f(zz):
        return float(np.sum(act.forward(zz.copy()) * upstream))

    a = act.forward(z.copy())
    analytic = act.backward(upstream.copy(), z, a)
    assert relative_error(analytic, numeric_gradient(f, z.copy())) < TOL


def _targets(loss_name, rng, n, k):
    task = get_loss(loss_name).task
    if task == "multiclass":
        return rng.integers(0, k, size=n)
    if task == "binary":
        return rng.integers(0, 2, size=(n, k)).astype(float)
    return rng.normal(size=(n, k))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_finite_differences(name, weighted, rng):
    loss = get_loss(name)
    out = rng.normal(size=(6, 3))
    y = _targets(name, rng, 6, 3)
    if name == "mae":
        out = y + np.where(rng.random(out.shape) < 0.5, -1, 1) * rng.uniform(0.1, 1, out.shape)
    w = rng.uniform(0.2, 2.0, size=6) if weighted else None
    grad = np.empty_like(out)
    value = loss.forward_backward(out, y, w, grad_out=grad)
    assert value == pytest.approx(loss.value(out, y, w), rel=1e-12)
    numeric = numeric_gradient(lambda o: loss.value(o, y, w), out.copy())
    assert relative_error(grad, numeric) < TOL


def _network(layers, loss, l2=0.0):
    model = Sequential(layers, loss=loss, l2=l2, preprocess=None, dtype="float64", seed=3)
    return model


CASES = {
    "dense-relu-tanh-softmaxce": (lambda: [Dense(7, "relu"), Dense(5, "tanh"), Dense(3)], "cross_entropy"),
    "dense-sigmoid-gelu-mse": (lambda: [Dense(6, "sigmoid"), Dense(4, "gelu"), Dense(3)], "mse"),
    "dense-elu-leaky-bce": (lambda: [Dense(6, "elu"), Dense(5, "leaky_relu"), Dense(3)], "binary_cross_entropy"),
    "activation-layers-mae": (lambda: [Dense(6), ActivationLayer("tanh"), Dense(5), ActivationLayer("softmax"),
                                       Dense(3)], "mae"),
    "dropout-fixed-mask": (lambda: [Dense(8, "tanh"), Dropout(0.3), Dense(3)], "cross_entropy"),
    "no-bias": (lambda: [Dense(6, "tanh", use_bias=False), Dense(3)], "cross_entropy"),
    "layer-norm": (lambda: [Dense(6, "tanh"), LayerNorm(), Dense(3)], "cross_entropy"),
    "layer-norm-first-mse": (lambda: [LayerNorm(), Dense(5, "gelu"), Dense(3)], "mse"),
    "residual-blocks": (lambda: [Dense(6, "tanh"), Residual.block(6, 8, dropout=0.3), Residual.block(6, 5),
                                 Dense(3)], "cross_entropy"),
    "periodic-embedding": (lambda: [PeriodicEmbedding(3, 4, sigma=0.5), Dense(5, "tanh"), Dense(3)], "cross_entropy"),
    "periodic-in-residual": (lambda: [PeriodicEmbedding(2, 2), Residual.block(8, 6), Dense(3)], "mse"),
    "categorical-embedding": (lambda: [CategoricalEmbedding([(2, 2), (0, 2)], dims=[3, 2]), Dense(5, "tanh"),
                                       Dense(3)], "cross_entropy"),
    "embedding-passthrough-mse": (lambda: [CategoricalEmbedding([(1, 2)]), LayerNorm(), Dense(3)], "mse"),
    "nested-residual": (lambda: [Dense(5, "elu"), Residual([Residual([Dense(5, "tanh")]), LayerNorm()]),
                                 Dense(3)], "binary_cross_entropy"),
    # batch statistics in training: the gradient flows through the batch mean and variance
    "batch-norm": (lambda: [Dense(6), BatchNorm(), ActivationLayer("tanh"), Dense(3)], "cross_entropy"),
    "batch-norm-first-mse": (lambda: [BatchNorm(), Dense(5, "gelu"), Dense(3)], "mse"),
    "batch-norm-in-residual": (lambda: [Dense(6, "tanh"), Residual([BatchNorm(), Dense(6, "tanh"), Dropout(0.3)]),
                                        BatchNorm(), Dense(3)], "binary_cross_entropy"),
}


@pytest.mark.parametrize("l2", [0.0, 0.05], ids=["no_l2", "l2"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_network_gradient_matches_finite_differences(case, weighted, l2, rng):
    build, loss_name = CASES[case]
    model = _network(build(), loss_name, l2)
    model.build(4)
    X = rng.normal(size=(9, 4))
    y = _targets(loss_name, rng, 9, 3)
    if loss_name == "cross_entropy":
        y = np.arange(9) % 3
    Xp = model.prepare_X(X)
    yp = model.prepare_y(y, fit=True) if loss_name != "mse" and loss_name != "mae" else model.prepare_y(y)
    w = rng.uniform(0.2, 2.0, size=9) if weighted else None
    seed = 7

    def loss_at(theta):
        # Same dropout mask on every call: the rng is re-created from the same seed.
        return model.loss_and_grad(theta, Xp, yp, w, rng=np.random.default_rng(seed))[0]

    theta = model.params.copy()
    _, grad = model.loss_and_grad(theta, Xp, yp, w, rng=np.random.default_rng(seed))
    numeric = numeric_gradient(loss_at, theta.copy())
    assert relative_error(grad, numeric) < TOL


def test_input_gradient_matches_finite_differences(rng):
    model = _network([Dense(5, "tanh"), Dense(2, "sigmoid")], "mse")
    model.build(3)
    X = rng.normal(size=(4, 3))
    upstream = rng.normal(size=(4, 2))
    out, backward = model.forward(X)
    dX = backward(upstream.copy(), np.empty_like(model.params), need_dx=True)
    numeric = numeric_gradient(lambda x: float(np.sum(model.forward(x)[0] * upstream)), X.copy())
    assert relative_error(dX, numeric) < TOL


def test_batch_norm_at_inference_is_an_affine_map_with_exact_input_gradients(rng):
    model = _network([Dense(5, "tanh"), BatchNorm(), Dense(2, "sigmoid")], "mse")
    model.build(3)
    views = model.layer_params[1]
    views["running_mean"][:] = rng.normal(size=5)
    views["running_var"][:] = rng.uniform(0.5, 2.0, size=5)
    views["gamma"][:], views["beta"][:] = rng.normal(size=5), rng.normal(size=5)
    X = rng.normal(size=(4, 3))
    upstream = rng.normal(size=(4, 2))
    out, backward = model.forward(X)
    dX = backward(upstream.copy(), np.empty_like(model.params), need_dx=True)
    numeric = numeric_gradient(lambda x: float(np.sum(model.forward(x)[0] * upstream)), X.copy())
    assert relative_error(dX, numeric) < TOL
    # row by row or all at once: inference does not tie rows together
    np.testing.assert_allclose(np.vstack([model.forward(X[i:i + 1])[0] for i in range(4)]), out, rtol=1e-12)


def test_micro_batch_gradients_sum_to_the_batch_gradient(rng):
    model = _network([Dense(6, "relu"), Dense(3)], "cross_entropy", l2=0.01)
    model.build(4)
    X = model.prepare_X(rng.normal(size=(12, 4)))
    y = model.prepare_y(np.arange(12) % 3, fit=True)
    w = rng.uniform(0.5, 1.5, size=12)
    loss, full = model.loss_and_grad(model.params, X, y, w)
    total = np.zeros_like(full)
    parts = 0.0
    for i, sl in enumerate([slice(0, 5), slice(5, 12)]):
        part_loss, g = model.loss_and_grad(model.params, X[sl], y[sl], w[sl], normalizer=w.sum(),
                                           include_l2=(i == 0))
        total += g
        parts += part_loss
    assert parts == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(total, full, rtol=1e-12, atol=1e-14)


def test_float32_is_the_default_and_gradients_stay_float32(rng):
    model = Sequential([Dense(4, "relu"), Dense(2)], preprocess=None)
    model.build(3)
    assert model.params.dtype == np.float32
    X = model.prepare_X(rng.normal(size=(5, 3)))
    _, g = model.loss_and_grad(model.params, X, model.prepare_y(np.arange(5) % 2, fit=True))
    assert g.dtype == np.float32
