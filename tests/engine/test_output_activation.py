"""The output activation a Keras user writes first is understood, never applied twice; a mismatched one is refused."""

import numpy as np
import pytest

import loomnet as ln


@pytest.fixture(scope="module")
def cancer():
    data = ln.datasets.load("breast_cancer")
    return ln.train_test_split(data.X, data.y, test_size=0.2, stratify=data.y, seed=0)


@pytest.mark.parametrize("activation, loss, units", [("sigmoid", "binary_cross_entropy", 1),
                                                     ("softmax", "cross_entropy", 2)])
def test_a_final_sigmoid_or_softmax_is_taken_into_the_loss(cancer, activation, loss, units):
    X_train, X_test, y_train, y_test = cancer
    fused = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(units, activation)], loss=loss, seed=0)
    plain = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(units)], loss=loss, seed=0)
    assert fused.fused_output == activation and plain.fused_output is None
    for model in (fused, plain):
        model.fit(X_train, y_train, epochs=20, batch_size=32)
    np.testing.assert_array_equal(fused.params, plain.params)  # the same network: logits into the loss
    proba = fused.predict_proba(X_test)
    assert proba.min() < 0.01 and proba.max() > 0.99  # not squashed into [0.27, 0.73] by a second sigmoid
    assert fused.evaluate(X_test, y_test)["accuracy"] > 0.95
    again = ln.Sequential.from_config(fused.get_config(), fused.params)
    np.testing.assert_array_equal(again.predict_proba(X_test), proba)


@pytest.mark.parametrize("activation, loss", [("softmax", "binary_cross_entropy"), ("sigmoid", "cross_entropy")])
def test_the_other_losses_output_function_is_refused(activation, loss):
    with pytest.raises(ValueError, match=f"applies {activation}, but the loss"):
        ln.Sequential([ln.Dense(8, "relu"), ln.Dense(3, activation)], loss=loss)


def test_other_final_activations_are_left_alone():
    model = ln.Sequential([ln.Dense(4, "relu"), ln.Dense(1, "tanh")], loss="mse")
    assert model.fused_output is None and model.layers[-1].activation.name == "tanh"
