"""Hyperparameter and sample-weight checks for the estimators: errors name the value and the valid ones."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import InvalidParameterError

from ..parallel.plan import MODES as PARALLEL_MODES

ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "gelu": "gelu",
}  # scikit-learn's name -> loomnet's
STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SOLVERS = ("lbfgs",) + STOCHASTIC_SOLVERS
Array = NDArray[np.floating]


def validate_hyperparameters(estimator: Any) -> None:
    """Check every constructor argument of an MLP estimator (scikit-learn validates in fit, so do we)."""
    hidden = hidden_sizes(estimator.hidden_layer_sizes)
    if any(h <= 0 for h in hidden):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
    owner = type(estimator).__name__
    check_choice("activation", estimator.activation, ACTIVATIONS, owner)
    check_choice("solver", estimator.solver, SOLVERS, owner)
    check_choice("learning_rate", estimator.learning_rate, ("constant", "invscaling", "adaptive"), owner)
    if not (
        estimator.batch_size == "auto"
        or (isinstance(estimator.batch_size, numbers.Integral) and estimator.batch_size >= 1)
    ):
        raise InvalidParameterError(f"The 'batch_size' parameter of {owner} must be a str among {{'auto'}} or an "
                                    f"int in the range [1, inf). Got {estimator.batch_size!r} instead.")
    for name, low, high, closed in (
        ("alpha", 0, np.inf, "[)"),
        ("learning_rate_init", 0, np.inf, "()"),
        ("power_t", 0, np.inf, "[)"),
        ("tol", 0, np.inf, "[)"),
        ("momentum", 0, 1, "[]"),
        ("validation_fraction", 0, 1, "()"),
        ("beta_1", 0, 1, "[)"),
        ("beta_2", 0, 1, "[)"),
        ("epsilon", 0, np.inf, "()"),
        ("dropout", 0, 1, "[)"),
    ):
        _check_range(name, getattr(estimator, name), low, high, closed, owner)
    if estimator.n_workers not in (None, "auto"):
        _check_integer("n_workers", estimator.n_workers, owner)
    if estimator.micro_batches is not None:
        _check_integer("micro_batches", estimator.micro_batches, owner)
    check_choice("parallel_mode", estimator.parallel_mode, PARALLEL_MODES, owner)
    for name in ("max_iter", "max_fun"):
        _check_integer(name, getattr(estimator, name), owner)
    n_iter_no_change = estimator.n_iter_no_change
    if not (n_iter_no_change == np.inf or (isinstance(n_iter_no_change, numbers.Integral) and n_iter_no_change >= 1)):
        raise InvalidParameterError(f"The 'n_iter_no_change' parameter of {owner} must be an int in the range [1, inf) "
                                    f"or a float among {{inf}}. Got {n_iter_no_change!r} instead.")
    dtype_name(estimator.dtype)
    if estimator.dropout and estimator.solver == "lbfgs":
        raise ValueError("dropout needs a stochastic solver; lbfgs minimises a deterministic loss")


def dtype_name(value: Any) -> str | None:
    """``dtype`` as 'float32', 'float64' or None: the strings, ``np.float32`` and ``np.dtype("float64")`` alike."""
    if value is None:
        return None
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be None (follow X), 'float32' or 'float64', got {value!r}")
    return name


def hidden_sizes(value: Any) -> list[int]:
    return list(value) if hasattr(value, "__iter__") else [value]


# scikit-learn's own error (a ValueError and a TypeError) and wording: "The 'alpha' parameter of
# MLPClassifier must be a float in the range [0.0, inf). Got -1.0 instead."
def _prefix(name: str, owner: str | None) -> str:
    return f"The '{name}' parameter" + (f" of {owner}" if owner else "")


def check_choice(name: str, value: Any, valid: Any, owner: str | None = None) -> None:
    if not isinstance(value, str) or value not in valid:
        raise InvalidParameterError(f"{_prefix(name, owner)} must be a str among {{{', '.join(map(repr, valid))}}}. "
                                    f"Got {value!r} instead.")


def _check_integer(name: str, value: Any, owner: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidParameterError(f"{_prefix(name, owner)} must be an int in the range [1, inf). "
                                    f"Got {value!r} instead.")


def _check_range(name: str, value: Any, low: float, high: float, closed: str, owner: str | None = None) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (value >= low if closed[0] == "[" else value > low) and (
            value <= high if closed[1] == "]" else value < high
        )
    if not ok:
        raise InvalidParameterError(f"{_prefix(name, owner)} must be a float in the range {closed[0]}{float(low)}, "
                                    f"{float(high)}{closed[1]}. Got {value!r} instead.")


def check_sample_weight(sample_weight: ArrayLike | None, n_samples: int) -> Array | None:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {weights.shape}, expected ({n_samples},)!")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    if not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number (all weights are zero).")
    return weights
