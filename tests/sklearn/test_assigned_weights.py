"""Weights assigned by hand on an unfitted estimator, and dtype given as a NumPy type: side by side
with scikit-learn's own estimators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as skl  # noqa: E402
from sklearn.datasets import load_diabetes, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from loomnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

FITTED = ("coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_")


def _fitted(Est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Est(hidden_layer_sizes=(6, 5), max_iter=60, random_state=0, **kw).fit(X, y)


def _assign(est, ref, extra=()):
    for name in FITTED + tuple(extra):
        value = getattr(ref, name)
        setattr(est, name, [a.copy() for a in value] if name in ("coefs_", "intercepts_") else value)
    return est


def test_regressor_predicts_from_assigned_weights_as_scikit_learn_does():
    X, y = load_diabetes(return_X_y=True)
    ref = _fitted(skl.MLPRegressor, X, y)
    theirs = _assign(skl.MLPRegressor(hidden_layer_sizes=(6, 5)), ref)
    ours = _assign(MLPRegressor(hidden_layer_sizes=(6, 5)), ref)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12, atol=1e-12)
    assert ours.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_classifier_predicts_from_assigned_weights_and_classes(iris, task):
    if task == "multilabel":
        X, y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    else:
        X, y = iris.X.astype(np.float64), iris.y if task == "multiclass" else (iris.y == 1).astype(int)
    ref = _fitted(skl.MLPClassifier, X, y)
    ours = _assign(MLPClassifier(hidden_layer_sizes=(6, 5)), ref, extra=("classes_",))
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-10, atol=1e-12)


def test_a_classifier_without_classes_says_what_to_assign(iris):
    ref = _fitted(skl.MLPClassifier, iris.X, iris.y)
    est = _assign(MLPClassifier(), ref)
    with pytest.raises(AttributeError, match="classes_"):
        est.predict(iris.X)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_partial_fit_continues_from_assigned_weights(iris, Est):
    X = iris.X.astype(np.float64)
    y = iris.y if Est is MLPClassifier else iris.X[:, 0] * 2.0
    source = _fitted(Est, X, y, solver="sgd", learning_rate_init=0.05)
    options = {"hidden_layer_sizes": (6, 5), "solver": "sgd", "learning_rate_init": 0.05, "random_state": 1}
    kw = {"classes": np.unique(y)} if Est is MLPClassifier else {}
    assigned = _assign(Est(**options), source)
    # the same weights reached the ordinary way: a first partial_fit, then the arrays written into it
    ordinary = Est(**options).partial_fit(X, y, **kw)
    for i in range(len(source.coefs_)):
        ordinary.coefs_[i], ordinary.intercepts_[i] = source.coefs_[i], source.intercepts_[i]
    ordinary._has_optimizer = False  # a fresh optimiser, as the assigned estimator's first step has
    assigned.partial_fit(X, y, **kw)
    ordinary.partial_fit(X, y)
    flat = lambda est: np.concatenate([a.ravel() for a in est.coefs_ + est.intercepts_])  # noqa: E731
    np.testing.assert_array_equal(flat(assigned), flat(ordinary))
    assert not np.array_equal(flat(assigned), flat(source))  # it trained from them
    assert assigned.n_iter_ == 1 and assigned.t_ == len(X)


def test_assigned_weights_of_the_wrong_shapes_are_refused(iris):
    ref = _fitted(skl.MLPRegressor, iris.X, iris.X[:, 0])
    est = _assign(MLPRegressor(), ref)
    est.intercepts_ = est.intercepts_[:1]
    with pytest.raises(ValueError, match="same number"):
        est.predict(iris.X)
    est = _assign(MLPRegressor(), ref)
    est.coefs_ = [est.coefs_[0], est.coefs_[2]]
    est.intercepts_ = [est.intercepts_[0], est.intercepts_[2]]
    with pytest.raises(ValueError, match="rows but"):
        est.predict(iris.X)


@pytest.mark.parametrize("given, name", [(np.float32, "float32"), (np.dtype("float64"), "float64"),
                                         ("float32", "float32")])
def test_dtype_accepts_numpy_types_like_the_strings(iris, given, name):
    a = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, dtype=given)
    b = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, dtype=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(iris.X, iris.y)
        b.fit(iris.X, iris.y)
    assert a.coefs_[0].dtype == np.dtype(name)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    with pytest.raises(ValueError, match="dtype must be None"):
        MLPClassifier(dtype=np.int32).fit(iris.X, iris.y)
