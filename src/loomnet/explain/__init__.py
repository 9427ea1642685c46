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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..engine._validation import check_array
from .gradients import gradient_x_input, input_gradients, integrated_gradients, saliency
from .importance import METRIC_NAMES, Importance, feature_groups, permutation_importance

if TYPE_CHECKING:
    from ..engine.network import Sequential

METHODS = ("permutation", "integrated-gradients", "saliency", "gradient-x-input")

__all__ = ["METHODS", "METRIC_NAMES", "Importance", "explain", "gradient_x_input", "input_gradients",
           "integrated_gradients", "permutation_importance", "saliency"]


def explain(
    model: Sequential,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    method: str = "permutation",
    groups: Sequence[tuple[str, Sequence[int]]] | None = None,
    **options: Any,
) -> Importance:
    """Rank the features by ``method``: the one entry point of the CLI's ``loomnet explain``.

    Parameters
    ----------
    model : Sequential
        A fitted network.
    X : array-like of shape (n_samples, n_features)
        Raw inputs (held out, for permutation importance).
    y : array-like or None
        Their targets: needed by 'permutation', not by the gradient methods.
    method : str
        One of :data:`METHODS`: 'permutation' (:func:`permutation_importance`),
        'integrated-gradients', 'saliency' or 'gradient-x-input'; a gradient method's
        importance is the mean |attribution| over the samples.
    groups : sequence of (name, columns) or None
        One entry per original feature: its columns are permuted together, or their
        attributions added up (completeness is kept: the parts' attributions sum to the whole's).
    **options
        Go to the method's function: ``metric``, ``n_repeats``, ``n_jobs`` for permutation;
        ``target``, ``baseline``, ``n_steps`` for the gradient methods.

    Returns
    -------
    Importance

    Raises
    ------
    ValueError
        For an unknown method, or 'permutation' without ``y``.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.explain import explain
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=30)
    >>> imp = explain(model, iris.X, method="integrated-gradients")
    >>> imp.metric, imp.values.shape
    ('mean |attribution|', (150, 4))
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
    names, columns = feature_groups(model, X.shape[1], groups)
    if groups is not None:
        values = np.column_stack([values[:, cols].sum(axis=1) for cols in columns])
    magnitude = np.abs(values)
    return Importance(method, names, magnitude.mean(axis=0), magnitude.std(axis=0),
                      values, metric="mean |attribution|", completeness_gap=gap,
                      extra={"n_samples": int(X.shape[0])})
