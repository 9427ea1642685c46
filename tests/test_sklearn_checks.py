"""Every check of scikit-learn's estimator suite, for both loomnet.sklearn estimators."""

import warnings

import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from loomnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# max_iter=100 as scikit-learn's own test suite uses for its MLPs; no check is expected to fail.
ESTIMATORS = [
    MLPClassifier(max_iter=100),
    MLPRegressor(max_iter=100),
    MLPClassifier(max_iter=50, solver="sgd", dtype="float64", random_state=0),
    MLPRegressor(max_iter=30, solver="lbfgs", random_state=0),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda estimator: {})
def test_passes_sklearn_estimator_check(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
