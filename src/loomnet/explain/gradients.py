"""Gradient attributions with respect to the raw features: saliency, gradient × input and
integrated gradients, from one forward and one backward pass per chunk of rows."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine._validation import check_array, check_positive, user_stacklevel

if TYPE_CHECKING:
    from ..engine.network import Sequential

Array = NDArray[np.floating]


def saliency(model: Sequential, X: ArrayLike, *, target: int | ArrayLike | None = None) -> Array:
    """|∂f/∂x| per sample and raw feature: how sensitive the output is to each input.

    Unlike the other attributions, saliency depends on the units of the raw features (it is
    reported per raw unit).

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw inputs, as given to ``predict``.
    target : int, array-like or None
        The output column attributed (one per sample, or one for all); default: the predicted
        class for multiclass models, the only output otherwise.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.explain import saliency
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = 3 * X[:, 0]
    >>> model = ln.Sequential([ln.Dense(1)], loss="mse", learning_rate=0.05, seed=0)
    >>> _ = model.fit(X, y, epochs=60, batch_size=16)
    >>> saliency(model, X[:1]).round(1)     # |∂f/∂x| of the learned f ≈ 3·x0
    array([[3., 0.]])
    """
    return np.abs(input_gradients(model, X, target=target)[1])


def gradient_x_input(model: Sequential, X: ArrayLike, *, target: int | ArrayLike | None = None,
                     baseline: str | float | ArrayLike = "mean") -> Array:
    """∂f/∂x · (x − x̄) per sample: the first-order Taylor term of f(x) − f(x̄).

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw inputs.
    target : int, array-like or None
        The output column attributed, as for :func:`saliency`.
    baseline : 'mean', 'zero', float or array-like
        x̄, as for :func:`integrated_gradients`. 'zero' gives the textbook gradient × input,
        which on raw features with offsets mostly measures the offset.

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Examples
    --------
    For a linear model the Taylor term is exact: the attributions add up to f(x) − f(x̄).

    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.explain import gradient_x_input
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = X @ [2.0, -1.0]
    >>> model = ln.Sequential([ln.Dense(1)], loss="mse", learning_rate=0.05, seed=0)
    >>> _ = model.fit(X, y, epochs=60, batch_size=16)
    >>> attributions = gradient_x_input(model, X)
    >>> change = model.predict(X) - model.predict(X.mean(axis=0, keepdims=True))
    >>> bool(np.allclose(attributions.sum(axis=1), change, atol=1e-4))
    True
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
    the integrand a step function), up to ``max_steps``.

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw inputs.
    baseline : 'mean', 'zero', float or array-like
        x̄: the column means of X (default), zeros, a number, or an array broadcastable to X.
    target : int, array-like or None
        The output column attributed, as for :func:`saliency`.
    n_steps : int
        Trapezoid intervals of the first pass.
    rtol : float
        Largest completeness gap accepted before a sample is integrated again.
    max_steps : int
        Most intervals a sample is integrated with.

    Returns
    -------
    attributions : ndarray of shape (n_samples, n_features)
    gap : ndarray of shape (n_samples,)
        Each sample's relative completeness gap.

    Warns
    -----
    RuntimeWarning
        When some samples still miss ``rtol`` with ``max_steps`` intervals.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.explain import integrated_gradients
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16, "tanh"), ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=20)
    >>> attributions, gap = integrated_gradients(model, iris.X[:5])
    >>> attributions.shape, bool(gap.max() <= 0.01)
    ((5, 4), True)
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

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw inputs.
    target : int, array-like or None
        The output column attributed, as for :func:`saliency`.
    chunk_size : int
        Rows per forward and backward pass.

    Returns
    -------
    f : ndarray of shape (n_samples,)
        The attributed output: a logit, or the prediction in target units for regression.
    grad : ndarray of shape (n_samples, n_features)
        ∂f/∂x.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.explain import input_gradients
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = X @ [2.0, -1.0] + 5
    >>> model = ln.Sequential([ln.Dense(1)], loss="mse", learning_rate=0.05, seed=0)
    >>> _ = model.fit(X, y, epochs=60, batch_size=16)
    >>> f, grad = input_gradients(model, X[:1])
    >>> grad.round(1)
    array([[ 2., -1.]])
    """
    Xp = model.prepare_X(X)
    targets = _targets(model, Xp, target, prepared=True)
    slope, offset = target_slope(model)
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


def target_slope(model: Sequential) -> tuple[Array, Array]:
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
