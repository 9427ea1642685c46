"""Scalers, encoders and splits — fitted on training data only, carried by the model."""

import numpy as np
import pytest
from sklearn import preprocessing as skp

from loomnet import Dense, Sequential
from loomnet.engine.preprocessing import (
    LabelEncoder,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
    scaler_from_dict,
    train_test_split,
    train_val_test_split,
)


def test_standard_and_minmax_match_scikit_learn(rng):
    X = rng.normal(3, 2, size=(50, 4))
    X[:, 2] = 7.0  # constant column
    np.testing.assert_allclose(StandardScaler().fit_transform(X), skp.StandardScaler().fit_transform(X), atol=1e-12)
    np.testing.assert_allclose(MinMaxScaler().fit_transform(X), skp.MinMaxScaler().fit_transform(X), atol=1e-12)
    s = StandardScaler().fit(X)
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)


def test_scalers_round_trip_through_dicts(rng):
    X = rng.normal(size=(10, 3))
    for scaler in (StandardScaler().fit(X), MinMaxScaler((-1, 1)).fit(X)):
        clone = scaler_from_dict(scaler.to_dict())
        np.testing.assert_array_equal(clone.transform(X), scaler.transform(X))


def test_label_and_one_hot_encoders():
    y = np.array(["cat", "dog", "cat", "bird"])
    enc = LabelEncoder().fit(y)
    assert enc.classes_.tolist() == ["bird", "cat", "dog"]
    assert enc.transform(y).tolist() == [1, 2, 1, 0]
    assert enc.inverse_transform([0, 2]).tolist() == ["bird", "dog"]
    with pytest.raises(ValueError, match="not seen in training"):
        enc.transform(["fish"])
    oh = OneHotEncoder().fit(y)
    assert oh.transform(y).tolist()[0] == [0, 1, 0]
    assert oh.inverse_transform(oh.transform(y)).tolist() == y.tolist()


def test_stratified_split_keeps_class_proportions():
    y = np.array([0] * 80 + [1] * 20)
    X = np.arange(100).reshape(-1, 1)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, seed=1)
    assert len(yte) == 25 and np.sum(yte == 1) == 5
    assert sorted(np.concatenate([Xtr, Xte])[:, 0].tolist()) == list(range(100))
    parts = train_val_test_split(X, y, val_size=0.1, test_size=0.2, stratify=y)
    assert [len(p) for p in parts[3:]] == [70, 10, 20]
    assert np.sum(parts[5] == 1) == 4


def test_model_fits_preprocessing_on_training_data_only_and_reuses_it(rng):
    X_train = rng.normal(10, 2, size=(40, 3))
    y_train = (X_train[:, 0] > 10).astype(int)
    X_val = rng.normal(-50, 9, size=(10, 3))  # very different: must not leak into the scaler
    model = Sequential([Dense(2)], preprocess="standard")
    model.fit(X_train, y_train, epochs=1, validation_data=(X_val, (X_val[:, 0] > -50).astype(int)))
    np.testing.assert_allclose(model.preprocess.mean_, X_train.mean(axis=0))
    clone = Sequential.from_config(model.get_config(), model.params)
    np.testing.assert_array_equal(clone.predict_proba(X_val), model.predict_proba(X_val))


def test_validation_split_is_carved_out_before_fitting_the_scaler(rng):
    X = np.vstack([rng.normal(0, 1, size=(80, 2)), rng.normal(100, 1, size=(20, 2))])
    y = np.arange(100) % 2
    model = Sequential([Dense(2)])
    model.fit(X, y, epochs=1, validation_split=0.2)
    # The scaler saw 80 training rows, so its mean differs from the mean of all 100.
    assert not np.allclose(model.preprocess.mean_, X.mean(axis=0))
