"""Metrics against scikit-learn's reference implementations."""

import numpy as np
import pytest
from sklearn import metrics as skm

from loomnet import metrics


@pytest.fixture
def labels(rng):
    y_true = rng.integers(0, 4, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, size=200))
    return y_true, y_pred


def test_classification_metrics_match_scikit_learn(labels):
    y_true, y_pred = labels
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred))
    for avg in ("macro", "weighted", "micro"):
        p, r, f = metrics.precision_recall_f1(y_true, y_pred, avg)
        assert p == pytest.approx(skm.precision_score(y_true, y_pred, average=avg))
        assert r == pytest.approx(skm.recall_score(y_true, y_pred, average=avg))
        assert f == pytest.approx(skm.f1_score(y_true, y_pred, average=avg))


def test_log_loss_matches_scikit_learn(rng):
    y = rng.integers(0, 3, size=50)
    p = rng.dirichlet(np.ones(3), size=50)
    assert metrics.log_loss(y, p) == pytest.approx(skm.log_loss(y, p))


def test_regression_metrics_match_scikit_learn(rng):
    y = rng.normal(size=40)
    pred = y + rng.normal(scale=0.3, size=40)
    assert metrics.mean_squared_error(y, pred) == pytest.approx(skm.mean_squared_error(y, pred))
    assert metrics.mean_absolute_error(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert metrics.r2_score(y, pred) == pytest.approx(skm.r2_score(y, pred))
    Y, P = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    assert metrics.r2_score(Y, P) == pytest.approx(skm.r2_score(Y, P))


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="3 samples but y_pred has 2"):
        metrics.accuracy([1, 2, 3], [1, 2])
