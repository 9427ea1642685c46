"""Bad input raises ValueError/TypeError with a message that names the problem."""

import numpy as np
import pytest

from loomnet import Adam, Dense, Dropout, Sequential
from loomnet.engine.losses import get_loss


@pytest.fixture
def data(rng):
    return rng.normal(size=(20, 3)), np.arange(20) % 2


@pytest.fixture
def fitted(data):
    model = Sequential([Dense(4, "relu"), Dense(2)])
    model.fit(*data, epochs=1)
    return model


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_rejected(data, bad):
    X, y = data
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 3, column 1\)"):
        Sequential([Dense(2)]).fit(X, y, epochs=1)


def test_non_finite_y_is_rejected(data):
    X, _ = data
    y = np.ones(20)
    y[0] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        Sequential([Dense(1)], loss="mse").fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="NaN"):
        Sequential([Dense(2)]).fit(X, y, epochs=1)


def test_wrong_number_of_features_at_predict(fitted, rng):
    with pytest.raises(ValueError, match="X has 5 features, but the model was built for 3"):
        fitted.predict(rng.normal(size=(2, 5)))


def test_empty_data_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        Sequential([Dense(2)]).fit(np.empty((0, 3)), np.empty(0), epochs=1)


def test_one_dimensional_X_is_rejected_with_a_hint(data):
    X, y = data
    with pytest.raises(ValueError, match=r"must be 2-D.*reshape"):
        Sequential([Dense(2)]).fit(X[:, 0], y, epochs=1)


def test_labels_that_do_not_fit_the_output_layer(data):
    X, _ = data
    with pytest.raises(ValueError, match="3 classes, but the output layer has 2 units"):
        Sequential([Dense(2)]).fit(X, np.arange(20) % 3, epochs=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        Sequential([Dense(2)]).fit(X, np.zeros(20), epochs=1)
    with pytest.raises(ValueError, match="2 target columns, but the output layer has 1"):
        Sequential([Dense(1)], loss="mse").fit(X, np.ones((20, 2)), epochs=1)


def test_unseen_label_at_evaluate(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="not seen in training"):
        fitted.evaluate(X, np.full(20, 7))


def test_mismatched_lengths(data):
    X, y = data
    with pytest.raises(ValueError, match="X has 20 samples but y has 19"):
        Sequential([Dense(2)]).fit(X, y[:19], epochs=1)


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": -3}, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"validation_split": 1.5}, "validation_split"),
    ({"loss_threshold": float("nan")}, "loss_threshold"),
    ({"sample_weight": -np.ones(20)}, "sample_weight"),
])
def test_bad_fit_options(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sequential([Dense(2)]).fit(*data, **{"epochs": 1, **kwargs})


def test_bad_constructor_values():
    with pytest.raises(ValueError, match="learning rate must be a positive number"):
        Adam(learning_rate=0.0)
    with pytest.raises(ValueError, match="learning rate must be a positive number"):
        Sequential([Dense(2)], optimizer="sgd", learning_rate=-1)
    with pytest.raises(ValueError, match="unknown loss 'mse2'.*valid losses are:.*mse"):
        get_loss("mse2")
    with pytest.raises(ValueError, match="unknown optimizer"):
        Sequential([Dense(2)], optimizer="adamax")
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(3, "swish")
    with pytest.raises(ValueError, match="units must be a positive integer"):
        Dense(0)
    with pytest.raises(ValueError, match="Dropout rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="dtype"):
        Sequential([Dense(2)], dtype="float16")
    with pytest.raises(ValueError, match="unknown preprocessing"):
        Sequential([Dense(2)], preprocess="zscore")
    with pytest.raises(TypeError, match="Layer objects"):
        Sequential(["dense"])


def test_predict_before_fit_is_a_clear_error(rng):
    with pytest.raises(RuntimeError, match="call fit"):
        Sequential([Dense(2)]).predict(rng.normal(size=(2, 3)))


def test_non_numeric_X_is_a_type_error(data):
    _, y = data
    with pytest.raises(TypeError, match="numeric"):
        Sequential([Dense(2)]).fit(np.array([["a", "b"]] * 20), y, epochs=1)
