"""Bagged ensembles: models trained concurrently on bootstrap resamples, predictions averaged."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine.network import Sequential
from .backends import Job, run_jobs
from .jobs import mlp, prepare_rows, train_job


class BaggedEnsemble:
    """Models trained on bootstrap resamples; predictions average their outputs.

    Returned by :func:`~loomnet.bagging`. Each member carries the scaler fitted on its own
    resample, so each prepares X itself. Classifiers average the members' probabilities,
    regressors their predictions.

    Parameters
    ----------
    models : list of Sequential
        The fitted members.
    classes : ndarray or None
        The class labels (None for regression).

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> ensemble = ln.bagging({"hidden": (8,)}, iris.X, iris.y, n_estimators=3, epochs=5)
    >>> len(ensemble.models), ensemble.decision_function(iris.X[:2]).shape
    (3, (2, 3))
    """

    def __init__(self, models: list[Sequential], classes: NDArray | None):
        self.models, self.classes_ = models, classes

    def decision_function(self, X: ArrayLike) -> NDArray:
        """The members' mean output: probabilities for classifiers, values for regressors."""
        outputs = [m.loss.transform(m.decision_function(X)) if m.loss.task != "regression" else m.decision_function(X)
                   for m in self.models]
        return np.mean(outputs, axis=0)

    def predict(self, X: ArrayLike) -> NDArray:
        """The class of the highest mean probability, or the mean prediction."""
        mean = self.decision_function(X)
        model = self.models[0]
        if model.loss.task == "regression":
            return mean[:, 0] if mean.shape[1] == 1 else mean
        codes = (mean[:, 0] > 0.5).astype(np.int64) if mean.shape[1] == 1 else mean.argmax(axis=1)
        return model.classes_[codes]


def bagging(params: Mapping[str, Any], X: ArrayLike, y: ArrayLike, *, n_estimators: int = 8,
            build: Callable[..., Sequential] = mlp, backend: str = "threads", n_jobs: int | None = None,
            seed: int = 0, **fit_options: Any) -> BaggedEnsemble:
    """Train ``n_estimators`` models, each on a bootstrap resample (rows drawn with replacement), concurrently.

    Parameters
    ----------
    params : mapping
        Keyword arguments of ``build``.
    X, y : array-like
        Training rows and targets.
    n_estimators : int
        Number of models.
    build, backend, n_jobs, seed
        As for :func:`~loomnet.search.jobs.run_search`.
    **fit_options
        Trainer options.

    Returns
    -------
    BaggedEnsemble
        ``predict`` averages the members' probabilities (classification) or values.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> ensemble = ln.bagging({"hidden": (8,)}, iris.X, iris.y, n_estimators=3, epochs=5)
    >>> ensemble.predict(iris.X[:4]).shape
    (4,)
    """
    X_shared, y_arr, n_outputs = prepare_rows(X, y)
    rng = np.random.default_rng(seed)
    n = len(X_shared)
    jobs = [Job(dict(params), np.sort(rng.integers(0, n, n)), None, seed + i, i, keep_model=True)
            for i in range(n_estimators)]
    run_one = partial(train_job, build=build, n_outputs=n_outputs, fit_options=fit_options)
    results = run_jobs(run_one, jobs, X_shared, y_arr, backend=backend, n_jobs=n_jobs)
    models = [r.model for r in results]
    return BaggedEnsemble(models, models[0].classes_)
