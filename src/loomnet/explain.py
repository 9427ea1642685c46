"""What a fitted network relies on: permutation importance and gradient attributions.

All functions take a fitted :class:`~loomnet.engine.network.Sequential` and *raw* inputs (as given to
``fit``/``predict``); the fitted preprocessing is applied inside. Gradients are taken with
respect to the raw features: the scalers are per-column affine maps ``x' = a·x + c``, so by the
chain rule ``∂f/∂x = a · ∂f/∂x'``. Integrated gradients and gradient × (input − baseline) do
not depend on that choice (the factor a cancels against the displacement); saliency does, and
is reported per raw unit.

The attributed output ``f`` is one column of the raw network output: the logit of the
predicted class (multiclass), the positive-class logit (binary), or the prediction in target
units (regression, through the inverse target scaling).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .engine import metrics
from .engine._validation import check_array, check_consistent_length, check_positive, user_stacklevel
from .parallel.cores import available_cores, blas_limits, blas_threads_per_worker
from .parallel.pool import WorkerPool

if TYPE_CHECKING:
    from .engine.network import Sequential

Array = NDArray[np.floating]
METHODS = ("permutation", "integrated-gradients", "saliency", "gradient-x-input")
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

    ``values`` is (n_features, n_repeats) score drops for permutation importance, and
    (n_samples, n_features) per-sample attributions for the gradient methods (whose
    importance is the mean |attribution| over samples, spread = its standard deviation).
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

    ``metric``: 'accuracy' (classification default), 'r2' (regression default), 'f1',
    'precision', 'recall', 'mse', 'mae', 'log_loss', 'loss' (the model's loss), or a callable
    ``metric(y_true, y_pred)`` (``greater_is_better`` says which way it points). Importance
    is always "how much worse", so larger means more important for every metric.

    Features are scored in parallel on ``n_jobs`` threads of a :class:`~loomnet.parallel.WorkerPool`
    (default: one per core, at most one per feature; worker w takes features w, w + n_jobs, ...);
    BLAS is limited to ``cores // n_jobs`` threads meanwhile (process-wide, via threadpoolctl) so
    workers × BLAS threads never exceed the cores. Shuffles come from
    (seed, feature, repeat), so the result does not depend on ``n_jobs``.

    ``groups``: (name, input columns) per original feature; a group's columns are shuffled together,
    with one row order (a categorical column's one-hot parts move as one column: no impossible rows).
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
    names, columns = _groups(model, Xp.shape[1], groups)
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
        slope, offset = _target_slope(model)
        pred = out * slope + offset
        return pred[:, 0] if pred.shape[1] == 1 else pred
    if model.classes_ is None:  # multi-label
        return (out > 0).astype(np.int64)
    return model.classes_[model.loss_predictions(out)]


def _proba(model: Sequential, out: Array) -> Array:
    proba = model.loss.transform(out)
    return np.hstack([1.0 - proba, proba]) if proba.shape[1] == 1 else proba


# ----------------------------------------------------------------------------- gradient attributions
def saliency(model: Sequential, X: ArrayLike, *, target: int | ArrayLike | None = None) -> Array:
    """|∂f/∂x| per sample and raw feature: how sensitive the output is to each input."""
    return np.abs(input_gradients(model, X, target=target)[1])


def gradient_x_input(model: Sequential, X: ArrayLike, *, target: int | ArrayLike | None = None,
                     baseline: str | float | ArrayLike = "mean") -> Array:
    """∂f/∂x · (x − x̄) per sample: the first-order Taylor term of f(x) − f(x̄).

    ``baseline`` x̄ as for :func:`integrated_gradients` ('mean' by default; 'zero' gives the
    textbook gradient × input, which on raw features with offsets mostly measures the offset).
    """
    X = check_array(X, name="X")
    return input_gradients(model, X, target=target)[1] * (X - _baseline(X, baseline))


def integrated_gradients(
    model: Sequential,
    X: ArrayLike,
    *,
    baseline: str | float | ArrayLike = "mean",
    target: int | ArrayLike | None = None,
    n_steps: int = 64,
    rtol: float = 0.01,
    max_steps: int = 4096,
) -> tuple[Array, Array]:
    """Integrated gradients (Sundararajan et al. 2017) and each sample's completeness gap.

    IGⱼ(x) = (xⱼ − x̄ⱼ) · ∫₀¹ ∂f/∂xⱼ(x̄ + α(x − x̄)) dα, by the trapezoid rule on ``n_steps``
    intervals. Completeness: Σⱼ IGⱼ = f(x) − f(x̄). The gap |Σ IG − Δf| / |Δf| (|Δf| floored at
    1e-3 of the largest, for samples the baseline already explains) is checked against
    ``rtol``; samples that miss it are integrated again with twice the steps (ReLU kinks make
    the integrand a step function), up to ``max_steps``, then a RuntimeWarning says so.
    ``baseline``: 'mean' (column means of X, the default), 'zero', a number or an array
    broadcastable to X.
    """
    check_positive(n_steps, "n_steps", integer=True)
    check_positive(rtol, "rtol")
    X = check_array(X, name="X")
    base = _baseline(X, baseline)
    targets = _targets(model, X, target)
    delta = input_gradients(model, X, target=targets)[0] - input_gradients(model, base, target=targets)[0]
    floor = 1e-3 * np.abs(delta).max(initial=0.0) + 1e-12
    attributions = np.empty(X.shape)
    todo, steps = np.arange(X.shape[0]), n_steps
    while True:
        attributions[todo] = _path_integral(model, X[todo], base[todo], targets[todo], steps) * (X - base)[todo]
        gap = np.abs(attributions.sum(axis=1) - delta) / np.maximum(np.abs(delta), floor)
        todo = np.flatnonzero(gap > rtol)
        if todo.size == 0 or steps >= max_steps:
            break
        steps *= 2
    if todo.size:
        warnings.warn(f"integrated gradients: completeness gap {gap.max():.2%} > {rtol:.0%} for {todo.size} "
                      f"sample(s) even with {steps} steps", RuntimeWarning, stacklevel=user_stacklevel())
    return attributions, gap


def _path_integral(model: Sequential, X: Array, base: Array, targets: NDArray[np.int64], steps: int) -> Array:
    """∫₀¹ ∂f/∂x(x̄ + α(x − x̄)) dα by the trapezoid rule, in chunks of about 8192 rows."""
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] *= 0.5
    total = np.zeros(X.shape, dtype=np.float64)
    chunk = max(1, 8192 // (steps + 1))
    for start in range(0, X.shape[0], chunk):
        x, b = X[start:start + chunk], base[start:start + chunk]
        points = b[:, None, :] + alphas[None, :, None] * (x - b)[:, None, :]
        grads = input_gradients(model, points.reshape(-1, X.shape[1]),
                                target=np.repeat(targets[start:start + chunk], steps + 1))[1]
        total[start:start + chunk] = np.einsum("nsd,s->nd", grads.reshape(points.shape), weights)
    return total


def input_gradients(model: Sequential, X: ArrayLike, *, target: int | ArrayLike | None = None,
                    chunk_size: int = 8192) -> tuple[Array, Array]:
    """(f(x), ∂f/∂x) per sample, with respect to the raw features, in float64.

    Per chunk, one forward and one backward pass: ``backward(d_out, grad, need_dx=True)``
    with d_out = e_target (times the target-scaling slope for regression), then the chain rule
    through the input scaler.
    """
    Xp = model.prepare_X(X)
    targets = _targets(model, Xp, target, prepared=True)
    slope, offset = _target_slope(model)
    input_slope = _input_slope(model, X)
    param_grad = np.empty_like(model.params)  # filled by backward, not needed here
    f = np.empty(Xp.shape[0])
    grad = np.empty(Xp.shape)
    for start in range(0, Xp.shape[0], chunk_size):
        part = slice(start, start + chunk_size)
        out, backward = model.forward(Xp[part])
        rows, cols = np.arange(out.shape[0]), targets[part]
        d_out = np.zeros_like(out)
        d_out[rows, cols] = slope[cols]
        f[part] = out[rows, cols] * slope[cols] + offset[cols]
        grad[part] = backward(d_out, param_grad, need_dx=True) * (input_slope if input_slope.ndim == 1
                                                                     else input_slope[part])
    return f, grad


def _targets(model: Sequential, X: Array, target: int | ArrayLike | None, prepared: bool = False
             ) -> NDArray[np.int64]:
    """The output column attributed for each sample: given, or the predicted class."""
    n, k = X.shape[0], model.n_outputs
    if target is None:
        if model.loss.task != "multiclass" or k == 1:
            return np.zeros(n, dtype=np.int64)
        out = model._raw_output(X if prepared else model.prepare_X(X))
        return out.argmax(axis=1)
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,))
    if targets.min(initial=0) < 0 or targets.max(initial=0) >= k:
        raise ValueError(f"target must index the {k} network outputs (0..{k - 1}), got {np.unique(targets)}")
    return targets


def _input_slope(model: Sequential, X: ArrayLike) -> Array:
    """∂x'/∂x of the fitted input scaler: a in x' = a·x + c for a linear one (ones if there is none),
    per sample and feature for a nonlinear one (its ``slope``)."""
    scaler = model.preprocess
    if scaler is None or not getattr(scaler, "fitted_", False):
        return np.ones(model.n_features)
    if hasattr(scaler, "slope"):
        return scaler.slope(X)
    zero_one = np.vstack([np.zeros(model.n_features), np.ones(model.n_features)])
    mapped = scaler.transform(zero_one).astype(np.float64)
    return mapped[1] - mapped[0]


def _target_slope(model: Sequential) -> tuple[Array, Array]:
    """(slope, offset) mapping raw regression outputs to target units (1, 0 otherwise)."""
    k = model.n_outputs
    scaler = model.target_preprocess
    if model.loss.task != "regression" or scaler is None or not getattr(scaler, "fitted_", False):
        return np.ones(k), np.zeros(k)
    mapped = np.asarray(scaler.inverse_transform(np.vstack([np.zeros(k), np.ones(k)])), dtype=np.float64)
    return mapped[1] - mapped[0], mapped[0]


def _baseline(X: Array, baseline: str | float | ArrayLike) -> Array:
    if isinstance(baseline, str):
        if baseline == "mean":
            return np.broadcast_to(X.mean(axis=0), X.shape)
        if baseline == "zero":
            return np.zeros_like(X)
        raise ValueError(f"baseline must be 'mean', 'zero', a number or an array, got {baseline!r}")
    try:
        return np.broadcast_to(np.asarray(baseline, dtype=np.float64), X.shape)
    except ValueError:
        raise ValueError(f"baseline of shape {np.shape(baseline)} does not broadcast to X {X.shape}") from None


# ----------------------------------------------------------------------------- one entry point
def explain(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    method: str = "permutation",
    groups: Sequence[tuple[str, Sequence[int]]] | None = None,
    **options: Any,
) -> Importance:
    """Rank the features by ``method`` ('permutation' needs y; the gradient methods do not).

    Options go to the method's function (``metric``, ``n_repeats``, ``n_jobs`` for permutation;
    ``target``, ``baseline``, ``n_steps`` for the gradient methods). ``groups``: (name, input
    columns) per original feature: permuted together, or their attributions added up (completeness
    is kept: the parts' attributions sum to the whole's).
    """
    if method == "permutation":
        if y is None:
            raise ValueError("permutation importance needs targets y (held-out data)")
        return permutation_importance(model, X, y, groups=groups, **options)
    X = check_array(X, name="X")
    if method == "integrated-gradients":
        values, gap = integrated_gradients(model, X, **options)
    elif method == "saliency":
        values, gap = saliency(model, X, **options), None
    elif method == "gradient-x-input":
        values, gap = gradient_x_input(model, X, **options), None
    else:
        raise ValueError(f"unknown method {method!r}; valid methods are: {', '.join(METHODS)}")
    names, columns = _groups(model, X.shape[1], groups)
    if groups is not None:
        values = np.column_stack([values[:, cols].sum(axis=1) for cols in columns])
    magnitude = np.abs(values)
    return Importance(method, names, magnitude.mean(axis=0), magnitude.std(axis=0),
                      values, metric="mean |attribution|", completeness_gap=gap,
                      extra={"n_samples": int(X.shape[0])})


def _feature_names(model: Sequential, n: int) -> list[str]:
    names = model.feature_names
    return [str(s) for s in names] if names and len(names) == n else [f"x{j}" for j in range(n)]


def _groups(model: Sequential, n: int, groups: Sequence[tuple[str, Sequence[int]]] | None
            ) -> tuple[list[str], list[list[int]]]:
    """Names and input columns of the features explained: the groups, or one per input column."""
    if groups is None:
        return _feature_names(model, n), [[j] for j in range(n)]
    names, columns = [str(name) for name, _ in groups], [[int(j) for j in cols] for _, cols in groups]
    covered = sorted(j for cols in columns for j in cols)
    if covered != list(range(n)):
        raise ValueError(f"groups must cover each of the {n} input columns exactly once")
    return names, columns
