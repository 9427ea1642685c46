"""scikit-learn's wording for errors and warnings: each scenario runs on scikit-learn's MLP and on
loomnet's, and what a user would match on (exception type and text, warning category and text) is
the same word for word."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import load_iris

import loomnet.sklearn as lm

X, y = load_iris(return_X_y=True)
Y_RARE = y.copy()
Y_RARE[0] = 7  # a class with one member
X_NAN = X.copy()
X_NAN[0, 0] = np.nan

SCENARIOS = {
    "stratified early stopping with a one-member class":
        lambda C, R: C(early_stopping=True, max_iter=3).fit(X, Y_RARE),
    "predict before fit": lambda C, R: C().predict(X),
    "predict with too few features": lambda C, R: C(max_iter=2).fit(X, y).predict(X[:, :3]),
    "NaN in X": lambda C, R: C(max_iter=2).fit(X_NAN, y),
    "infinity in X": lambda C, R: C(max_iter=2).fit(X * np.inf, y),
    "partial_fit with lbfgs": lambda C, R: C(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2]),
    "first partial_fit without classes": lambda C, R: C().partial_fit(X, y),
    "partial_fit with an unseen label": lambda C, R: C().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, Y_RARE),
    "continuous target for a classifier": lambda C, R: C(max_iter=2).fit(X, y + 0.5),
    "no rows": lambda C, R: C().fit(X[:0], y[:0]),
    "X and y of different lengths": lambda C, R: C().fit(X, y[:-1]),
    "1-d X": lambda C, R: C().fit(X[:, 0], y),
    "strings in X": lambda C, R: C().fit(np.array([["a", "b"]] * 10), y[:10]),
    "one class only": lambda C, R: C(max_iter=2).fit(X, np.zeros(len(X))),
    "warm start with a new class": lambda C, R: C(max_iter=2, warm_start=True).fit(X, y).fit(X, Y_RARE),
    "validation split too small":
        lambda C, R: C(early_stopping=True, validation_fraction=0.01, max_iter=2).fit(X[:20], y[:20]),
    "n_iter_no_change=0": lambda C, R: C(n_iter_no_change=0).fit(X, y),
    "sgd stops at max_iter": lambda C, R: C(max_iter=2).fit(X, y),
    "lbfgs stops at max_iter": lambda C, R: C(solver="lbfgs", max_iter=2).fit(X, y),
    "regression target with NaN": lambda C, R: R(max_iter=2).fit(X, np.where(y == 0, np.nan, y)),
    "regression predict with too few features": lambda C, R: R(max_iter=2).fit(X, np.c_[y, y]).predict(X[:, :2]),
}


def _outcome(scenario) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            scenario()
            raised = "no error"
        except Exception as exc:  # noqa: BLE001 - the exception is what is compared
            raised = f"{type(exc).__name__}: {exc}"
    return raised, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_errors_and_warnings_read_as_scikit_learns(name):
    scenario = SCENARIOS[name]
    expected = _outcome(lambda: scenario(sk.MLPClassifier, sk.MLPRegressor))
    got = _outcome(lambda: scenario(lm.MLPClassifier, lm.MLPRegressor))
    assert got == expected


def test_the_scenarios_do_raise_and_warn():
    """The comparison above is not vacuous: most scenarios raise, and the stopping ones warn."""
    outcomes = {name: _outcome(lambda s=s: s(sk.MLPClassifier, sk.MLPRegressor)) for name, s in SCENARIOS.items()}
    assert sum(raised != "no error" for raised, _ in outcomes.values()) >= 15
    assert all("ConvergenceWarning" in w[0] for name in ("sgd stops at max_iter", "lbfgs stops at max_iter")
               for w in [outcomes[name][1]])
