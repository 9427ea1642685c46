"""Every runner gets every step feature: L2 (scikit-learn's per-batch alpha included), sample and
class weights, per-batch callbacks, divergence handling. One test per feature, over every mode."""

from __future__ import annotations

import numpy as np
import pytest

import loomnet as ln
from loomnet.training import Callback, Trainer

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:.*workers on.*cores:RuntimeWarning")]
MODES = {"plain": {}, "sync": {"workers": 2, "mode": "sync"}, "hogwild": {"workers": 2, "mode": "hogwild"},
         "locked": {"workers": 2, "mode": "locked"}}


@pytest.fixture(scope="module")
def data(three_classes):
    return three_classes.X, three_classes.y


def _model(l2=0.0, dropout=0.1, lr=None):
    return ln.Sequential([ln.Dense(16, "relu"), ln.Dropout(dropout), ln.Dense(3)], optimizer="sgd",
                         learning_rate=lr, l2=l2, seed=1)


class _Count(Callback):
    def __init__(self):
        self.batches, self.rows, self.steps = 0, 0, set()

    def on_batch_end(self, trainer, epoch, step, batch_size, loss):
        self.batches += 1
        self.rows += batch_size
        self.steps.add((epoch, step))


@pytest.mark.parametrize("mode", MODES)
def test_per_batch_callbacks_run_for_every_step(data, mode):
    X, y = data
    counter = _Count()
    trainer = Trainer(_model(), X, y, epochs=2, batch_size=40, callbacks=[counter], **MODES[mode])
    trainer.run()
    assert counter.batches == 2 * trainer.steps_per_epoch == 40
    assert counter.rows == 2 * len(X)
    assert len(counter.steps) == counter.batches  # each step reported once, with its own number


@pytest.mark.parametrize("mode", MODES)
def test_l2_shrinks_the_weights_in_every_mode(data, mode):
    X, y = data
    norms = []
    for l2 in (0.0, 2.0):
        model = _model(l2=l2, lr=0.05)
        model.fit(X, y, epochs=3, batch_size=40, **MODES[mode])
        weights = model.params[:model.layout.n_decay]
        norms.append(float(np.dot(weights, weights)))
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize("mode", MODES)
def test_class_weights_reach_every_mode(data, mode):
    """Class 0 weighted zero: the network stops predicting it."""
    X, y = data
    model = _model(dropout=0.0)
    model.fit(X, y, epochs=5, batch_size=40, class_weight={0: 0.0}, **MODES[mode])
    assert np.mean(model.predict(X) == 0) < 0.05 < np.mean(y == 0)


@pytest.mark.parametrize("mode", MODES)
def test_sample_weights_reach_every_mode(data, mode):
    X, y = data
    weights = np.where(y == 1, 0.0, 1.0)
    model = _model(dropout=0.0)
    model.fit(X, y, epochs=5, batch_size=40, sample_weight=weights, **MODES[mode])
    assert np.mean(model.predict(X) == 1) < 0.05 < np.mean(y == 1)


@pytest.mark.parametrize("mode", ["hogwild", "locked"])
def test_one_asynchronous_worker_is_the_plain_loop_bit_for_bit(data, mode):
    """With weights, L2 and dropout: one asynchronous lane takes exactly the plain loop's steps."""
    X, y = data
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    finals = []
    for options in ({}, {"workers": 1, "mode": mode}):
        model = _model(l2=1e-2)
        model.fit(X, y, epochs=2, batch_size=40, sample_weight=weights, class_weight="balanced", seed=4, **options)
        finals.append(model.params.copy())
    assert np.array_equal(finals[0], finals[1])


@pytest.mark.parametrize("mode", ["sync", "hogwild", "locked"])
def test_scikit_learn_alpha_is_applied_per_batch_in_every_mode(data, mode):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from loomnet.sklearn import MLPClassifier

    X, y = data
    results = {}
    for workers in (None, 1, 2):
        for alpha in (0.0, 20.0):
            est = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", batch_size=40, max_iter=3, alpha=alpha,
                                learning_rate_init=0.1,
                                random_state=0, n_workers=workers, parallel_mode=mode)
            with pytest.warns(ConvergenceWarning):
                est.fit(X, y)
            results[workers, alpha] = np.concatenate([c.ravel() for c in est.coefs_])
    for workers in (None, 1, 2):
        assert np.sum(results[workers, 20.0] ** 2) < 0.5 * np.sum(results[workers, 0.0] ** 2)
    if mode != "sync":  # one asynchronous worker is the plain loop, per-batch alpha included
        assert np.array_equal(results[None, 20.0], results[1, 20.0])


@pytest.mark.parametrize("mode", MODES)
def test_divergence_stops_every_mode_with_the_last_finite_parameters(data, mode):
    X, y = data
    model = _model(dropout=0.0, lr=1e6)
    X_big = X * 1e3
    with pytest.raises(ln.TrainingDivergedError, match="training diverged at epoch"):
        Trainer(model, X_big, y, epochs=50, batch_size=40, **MODES[mode]).run()
    assert np.isfinite(model.params).all()
