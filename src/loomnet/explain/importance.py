"""Permutation importance: how much a fitted network's score drops when a feature is shuffled."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine import metrics
from ..engine._validation import check_consistent_length, check_positive
from ..parallel.cores import available_cores, blas_limits, blas_threads_per_worker
from ..parallel.pool import WorkerPool
from .gradients import target_slope

if TYPE_CHECKING:
    from ..engine.network import Sequential

Array = NDArray[np.floating]
_LOWER_IS_BETTER = {"loss", "mse", "mae", "log_loss"}
_METRICS: dict[str, Callable[[NDArray, NDArray], float]] = {
    "accuracy": metrics.accuracy, "f1": metrics.f1_score, "precision": metrics.precision,
    "recall": metrics.recall, "r2": metrics.r2_score, "mse": metrics.mean_squared_error,
    "mae": metrics.mean_absolute_error,
}
METRIC_NAMES = (*_METRICS, "log_loss", "loss")

@dataclass
class Importance:
    """Per-feature importance with its spread, and the raw values it was summarised from.

    Returned by :func:`permutation_importance` and :func:`~loomnet.explain.explain`.

    Parameters
    ----------
    method : str
        How it was measured: one of :data:`~loomnet.explain.METHODS`.
    feature_names : list of str
        One name per feature (or group of columns).
    mean, std : ndarray of shape (n_features,)
        The importance and its spread: the mean and standard deviation of the score drop over
        the repeats, or of |attribution| over the samples.
    values : ndarray
        (n_features, n_repeats) score drops for permutation importance, (n_samples, n_features)
        per-sample attributions for the gradient methods.
    metric : str or None
        The score whose drop is measured, or ``"mean |attribution|"``.
    baseline_score : float or None
        The score on the unshuffled data (permutation importance).
    completeness_gap : ndarray or None
        Integrated gradients: each sample's relative completeness gap.
    extra : dict
        How it was run (``n_repeats``, ``n_jobs``, ``n_samples``), kept in :meth:`to_dict`.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.explain import Importance
    >>> imp = Importance("permutation", ["age", "income"], mean=np.array([0.01, 0.2]),
    ...                  std=np.array([0.005, 0.02]), values=np.zeros((2, 5)), metric="accuracy")
    >>> [imp.feature_names[j] for j in imp.ranking()]
    ['income', 'age']
    >>> print(imp.table())
    rank  feature   importance       ± std
       1  income           0.2        0.02
       2  age             0.01       0.005
    """

    method: str
    feature_names: list[str]
    mean: Array
    std: Array
    values: Array
    metric: str | None = None
    baseline_score: float | None = None
    completeness_gap: Array | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> NDArray[np.int64]:
        """Feature indices, most important first (ties keep column order)."""
        return np.argsort(-self.mean, kind="stable")

    def table(self, top: int | None = 20) -> str:
        """A ranked plain-text table of the ``top`` features."""
        order = self.ranking()[:top]
        width = max([7] + [len(self.feature_names[j]) for j in order])
        lines = [f"{'rank':>4}  {'feature':<{width}}  {'importance':>11}  {'± std':>10}"]
        lines += [f"{r:>4}  {self.feature_names[j]:<{width}}  {self.mean[j]:>11.4g}  {self.std[j]:>10.3g}"
                  for r, j in enumerate(order, 1)]
        return "\n".join(lines)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready summary: the ranked features and how they were measured."""
        ranked = [{"rank": r, "feature": self.feature_names[j], "index": int(j),
                   "importance": float(self.mean[j]), "std": float(self.std[j])}
                  for r, j in enumerate(self.ranking()[:top], 1)]
        out: dict[str, Any] = {"method": self.method, "metric": self.metric, "baseline_score": self.baseline_score,
                               "features": ranked, **self.extra}
        if self.completeness_gap is not None:
            out["completeness_max_gap"] = float(self.completeness_gap.max(initial=0.0))
        return out


# ----------------------------------------------------------------------------- permutation importance
def permutation_importance(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike,
    *,
    metric: str | Callable[[NDArray, NDArray], float] | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
    greater_is_better: bool = True,
    groups: Sequence[tuple[str, Sequence[int]]] | None = None,
) -> Importance:
    """How much the score drops when one feature's column is shuffled; use held-out data.

    Importance is always "how much worse", so larger means more important for every metric.
    Features are scored in parallel on threads of a :class:`~loomnet.parallel.WorkerPool`
    (worker w takes features w, w + n_jobs, ...); BLAS is limited to ``cores // n_jobs``
    threads meanwhile (process-wide, via threadpoolctl) so workers × BLAS threads never exceed
    the cores. Shuffles come from (seed, feature, repeat), so the result does not depend on
    ``n_jobs``.

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw held-out inputs.
    y : array-like
        Their targets.
    metric : str, callable or None
        'accuracy' (classification default), 'r2' (regression default), 'f1', 'precision',
        'recall', 'mse', 'mae', 'log_loss', 'loss' (the model's loss), or a callable
        ``metric(y_true, y_pred)``.
    n_repeats : int
        Shuffles per feature.
    seed : int
        Seed of the shuffles.
    n_jobs : int or None
        Worker threads (default: one per core, at most one per feature).
    greater_is_better : bool
        Which way a callable ``metric`` points.
    groups : sequence of (name, columns) or None
        One entry per original feature: its input columns are shuffled together with one row
        order (a categorical column's one-hot parts move as one column, so no impossible rows).
        They must cover every column exactly once.

    Returns
    -------
    Importance

    Raises
    ------
    ValueError
        For an unknown metric, a metric of the other task, or groups that do not cover the columns.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.explain import permutation_importance
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=30)
    >>> imp = permutation_importance(model, iris.X, iris.y, n_repeats=3)
    >>> imp.metric, len(imp.mean)
    ('accuracy', 4)
    """
    check_positive(n_repeats, "n_repeats", integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if n_jobs is not None:
        check_positive(n_jobs, "n_jobs", integer=True)
    Xp = model.prepare_X(X)  # scalers act per column, so shuffling prepared columns = shuffling raw ones
    y_true = np.asarray(y)
    check_consistent_length(Xp, y_true)
    score, metric_name, sign = _scorer(model, y_true, metric, greater_is_better)
    baseline = score(model._raw_output(Xp))
    names, columns = feature_groups(model, Xp.shape[1], groups)
    n_features = len(columns)
    workers = max(1, min(n_jobs or available_cores(), n_features))
    values = np.empty((n_features, n_repeats))

    def score_features(worker: int) -> None:
        shuffled = Xp.copy()
        for j in range(worker, n_features, workers):
            cols = columns[j]
            for r in range(n_repeats):
                order = np.random.default_rng([seed, j, r]).permutation(Xp.shape[0])
                shuffled[:, cols] = Xp[np.ix_(order, cols)]
                values[j, r] = sign * (baseline - score(model._raw_output(shuffled)))
            shuffled[:, cols] = Xp[:, cols]

    with blas_limits(blas_threads_per_worker(workers)), WorkerPool(workers, "loomnet-permute") as pool:
        pool.run(score_features)
    return Importance("permutation", names, values.mean(axis=1), values.std(axis=1),
                      values, metric=metric_name, baseline_score=float(baseline),
                      extra={"n_repeats": n_repeats, "n_jobs": workers})


def _scorer(model: Sequential, y_true: NDArray, metric: Any, greater_is_better: bool
            ) -> tuple[Callable[[Array], float], str, float]:
    """(score(raw_output), metric name, +1 if greater is better else -1)."""
    task = model.loss.task
    if metric is None:
        metric = "r2" if task == "regression" else "accuracy"
    if callable(metric):
        fn, name, sign = metric, getattr(metric, "__name__", "custom"), 1.0 if greater_is_better else -1.0
    elif metric in METRIC_NAMES:
        fn, name, sign = _METRICS.get(metric), metric, -1.0 if metric in _LOWER_IS_BETTER else 1.0
    else:
        valid = ", ".join(sorted(METRIC_NAMES))
        raise ValueError(f"unknown metric {metric!r}; valid metrics are: {valid}, or a callable(y_true, y_pred)")
    regression_metric = name in ("r2", "mse", "mae")
    if not callable(metric) and name != "loss" and regression_metric != (task == "regression"):
        kind = "regression" if regression_metric else "classification"
        raise ValueError(f"metric {name!r} is for {kind} models, but this model's loss is {model.loss.name!r}")
    if name == "loss":
        y_enc = model.prepare_y(y_true)
        return (lambda out: float(model.loss.value(out, y_enc))), name, sign
    if name == "log_loss":
        return (lambda out: metrics.log_loss(y_true, _proba(model, out), labels=model.classes_)), name, sign
    return (lambda out: float(fn(y_true, _predictions(model, out)))), name, sign


def _predictions(model: Sequential, out: Array) -> NDArray:
    """What ``predict`` would return, from raw outputs."""
    if model.loss.task == "regression":
        slope, offset = target_slope(model)
        pred = out * slope + offset
        return pred[:, 0] if pred.shape[1] == 1 else pred
    if model.classes_ is None:  # multi-label
        return (out > 0).astype(np.int64)
    return model.classes_[model.loss_predictions(out)]


def _proba(model: Sequential, out: Array) -> Array:
    proba = model.loss.transform(out)
    return np.hstack([1.0 - proba, proba]) if proba.shape[1] == 1 else proba


def _feature_names(model: Sequential, n: int) -> list[str]:
    names = model.feature_names
    return [str(s) for s in names] if names and len(names) == n else [f"x{j}" for j in range(n)]


def feature_groups(model: Sequential, n: int, groups: Sequence[tuple[str, Sequence[int]]] | None
                   ) -> tuple[list[str], list[list[int]]]:
    """Names and input columns of the features explained: the groups, or one per input column."""
    if groups is None:
        return _feature_names(model, n), [[j] for j in range(n)]
    names, columns = [str(name) for name, _ in groups], [[int(j) for j in cols] for _, cols in groups]
    covered = sorted(j for cols in columns for j in cols)
    if covered != list(range(n)):
        raise ValueError(f"groups must cover each of the {n} input columns exactly once")
    return names, columns
