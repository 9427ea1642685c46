"""Numerical stress: extreme magnitudes, constant columns, one sample, many classes, many features.

Each case must either train (finite parameters, finite loss history, finite predictions) or be
refused with a clear ValueError / TrainingDivergedError. A NaN that reaches the user silently fails.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from loomnet import Dense, Sequential, TrainingDivergedError

from .conftest import blobs

LOSS_TARGETS = {
    "cross_entropy": lambda X: (X[:, 0] > 0).astype(int) + (X[:, 1] > 0),
    "binary_cross_entropy": lambda X: (X[:, 0] > 0).astype(int),
    "mse": lambda X: X[:, 0] - 2 * X[:, 1],
    "mae": lambda X: X[:, 0] - 2 * X[:, 1],
}
N_OUT = {"cross_entropy": 3, "binary_cross_entropy": 1, "mse": 1, "mae": 1}


def trains_or_refuses(model: Sequential, X, y, **fit_kwargs) -> bool:
    """Fit; True if it trained with everything finite, False if it refused clearly. Fails on a silent NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow warnings are fine; NaN results are not
        try:
            history = model.fit(X, y, **fit_kwargs)
        except (ValueError, TrainingDivergedError) as exc:
            message = str(exc)
            assert message and "\n" not in message and len(message) < 400, message
            assert model.params is None or np.isfinite(model.params).all(), "refused, left NaN parameters"
            return False
        assert np.isfinite(model.params).all(), "training finished with NaN/inf parameters"
        assert all(np.isfinite(r["loss"]) for r in history.records), history.records
        assert all(np.isfinite(v) for r in history.records for k, v in r.items() if k.startswith("val_"))
        assert_predictions_finite_or_refused(model, X)
    return True


def assert_predictions_finite_or_refused(model: Sequential, X) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            out = model.decision_function(X)
        except ValueError as exc:
            assert "\n" not in str(exc)
            return
        assert np.isfinite(out).all(), "decision_function returned NaN/inf without an error"
        if model.loss.task != "regression":
            proba = model.predict_proba(X)
            assert np.isfinite(proba).all()
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
        else:
            assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("preprocess", ["standard", "minmax", None])
@pytest.mark.parametrize("loss", list(LOSS_TARGETS))
def test_inputs_of_magnitude_1e30_train_or_are_refused(loss, preprocess, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = LOSS_TARGETS[loss](X)
    model = Sequential([Dense(16, "relu"), Dense(N_OUT[loss])], loss=loss, preprocess=preprocess, dtype=dtype)
    trained = trains_or_refuses(model, X * 1e30, y, epochs=3, batch_size=16, validation_split=0.2)
    if preprocess is not None:
        assert trained, "a scaler brings 1e30 inputs back to unit scale: this must train"


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_regression_targets_of_magnitude_1e30_train_or_are_refused(loss):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    for target_preprocess in ("standard", None):
        model = Sequential([Dense(8, "tanh"), Dense(1)], loss=loss, target_preprocess=target_preprocess)
        trains_or_refuses(model, X, 1e30 * X[:, 0], epochs=3, batch_size=10)


@pytest.mark.parametrize("magnitude", [1e30, 1e39, 1e300])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predicting_on_huge_inputs_is_finite_or_refused(trained_model, magnitude, dtype):
    X, _ = blobs(n=20)
    model = Sequential.from_config({**trained_model.get_config(), "dtype": dtype},
                                   trained_model.params.astype(dtype))
    assert_predictions_finite_or_refused(model, X * magnitude)


def test_inputs_beyond_float32_range_are_refused_naming_the_value():
    X, y = blobs(n=60, n_features=4)
    X[7, 2] = 1e39
    model = Sequential([Dense(8, "relu"), Dense(3)], preprocess=None)
    with pytest.raises(ValueError, match=r"float32.*row 7.*column 2"):
        model.fit(X, y, epochs=1)


@pytest.mark.parametrize("preprocess", ["standard", "minmax", None])
def test_constant_columns_are_harmless(preprocess):
    X, y = blobs(n=300, n_features=6)
    X[:, 1] = 7.0
    X[:, 4] = 0.0
    model = Sequential([Dense(16, "relu"), Dense(3)], preprocess=preprocess, seed=0)
    assert trains_or_refuses(model, X, y, epochs=20, batch_size=32)
    assert np.mean(model.predict(X) == y) > 0.9
    if preprocess is not None:
        scaled = model.preprocess.transform(X)
        assert np.isfinite(scaled).all() and np.ptp(scaled[:, 1]) == 0


@pytest.mark.parametrize("preprocess", ["standard", "minmax"])
def test_all_columns_constant_trains_to_a_finite_constant_model(preprocess):
    X = np.full((50, 3), 4.2)
    y = np.arange(50) % 2
    model = Sequential([Dense(8, "relu"), Dense(2)], preprocess=preprocess)
    assert trains_or_refuses(model, X, y, epochs=5, batch_size=8)
    assert len(set(model.predict(X).tolist())) == 1


def test_huge_column_spread_does_not_zero_the_standard_scaler():
    """Squares of 1e200 overflow float64; the scaler must still see the column's variation."""
    X, y = blobs(n=200, n_features=4)
    X[:, 0] *= 1e200
    model = Sequential([Dense(8, "relu"), Dense(3)], dtype="float64")
    assert trains_or_refuses(model, X, y, epochs=2)
    scaled = model.preprocess.transform(X)
    assert 0.5 < scaled[:, 0].std() < 2.0


def test_a_single_sample_classification_is_refused_clearly():
    model = Sequential([Dense(4, "relu"), Dense(2)])
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(np.array([[1.0, 2.0]]), np.array([1]), epochs=3)


@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_a_single_sample_regression_trains(batch_size):
    model = Sequential([Dense(4, "tanh"), Dense(1)], loss="mse")
    assert trains_or_refuses(model, np.array([[1.0, 2.0, 3.0]]), np.array([0.5]), epochs=5, batch_size=batch_size)


def test_a_single_sample_with_validation_split_trains_or_is_refused():
    model = Sequential([Dense(4, "tanh"), Dense(1)], loss="mse")
    trains_or_refuses(model, np.array([[1.0, 2.0]]), np.array([0.5]), epochs=2, validation_split=0.5)


def test_two_samples_two_classes_train():
    model = Sequential([Dense(4, "relu"), Dense(2)])
    assert trains_or_refuses(model, np.array([[0.0, 1.0], [1.0, 0.0]]), np.array(["a", "b"]), epochs=20)


@pytest.mark.timeout(120)
def test_ten_thousand_classes_train_with_normalised_probabilities():
    n_classes, n = 10_000, 10_000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.arange(n) % n_classes
    model = Sequential([Dense(n_classes)], seed=0)
    assert trains_or_refuses(model, X, y, epochs=1, batch_size=512)
    assert len(model.classes_) == n_classes
    proba = model.predict_proba(X[:100])
    assert proba.shape == (100, n_classes)


@pytest.mark.timeout(120)
def test_one_hundred_thousand_features_train_and_mismatched_width_is_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 100_000)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = Sequential([Dense(8, "relu"), Dense(2)], seed=0)
    assert trains_or_refuses(model, X, y, epochs=2, batch_size=16)
    with pytest.raises(ValueError, match="100000"):
        model.predict(X[:, :99_999])
