"""Activation values, stability at extreme inputs, and name lookup."""

import warnings

import numpy as np
import pytest

from loomnet.engine.activations import ACTIVATIONS, get_activation, log_softmax, softmax


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_warnings_and_finite_values_for_huge_inputs(name, dtype):
    act = get_activation(name)
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.forward(z.copy())
        d = act.backward(np.ones_like(z), z, a)
    if name not in ("identity", "relu", "leaky_relu", "elu", "gelu"):
        assert np.all(np.isfinite(a))
    assert np.all(np.isfinite(d))
    assert a.dtype == dtype


def test_sigmoid_and_tanh_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(get_activation("sigmoid").forward(z), 1 / (1 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(get_activation("tanh").forward(z), np.tanh(z))
    assert get_activation("sigmoid").forward(np.array([[1e4, -1e4]])).tolist() == [[1.0, 0.0]]


def test_relu_family_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    assert get_activation("relu").forward(z).tolist() == [[0.0, 0.0, 3.0]]
    np.testing.assert_allclose(get_activation("leaky_relu").forward(z), [[-0.02, 0.0, 3.0]])
    np.testing.assert_allclose(get_activation("elu").forward(z), [[np.expm1(-2.0), 0.0, 3.0]])


def test_gelu_matches_tanh_formula():
    z = np.linspace(-4, 4, 9)[None, :]
    ref = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    np.testing.assert_allclose(get_activation("gelu").forward(z), ref, rtol=1e-12)


def test_softmax_is_stable_and_sums_to_one():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(np.exp(log_softmax(z)), p, atol=1e-300)


def test_activations_compute_in_place_when_given_out():
    z = np.array([[-1.0, 2.0]])
    out = get_activation("relu").forward(z, out=z)
    assert out is z and z.tolist() == [[0.0, 2.0]]


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'rellu'.*relu.*tanh"):
        get_activation("rellu")
    with pytest.raises(TypeError):
        get_activation(3)
