"""Weights assigned by hand on an unfitted estimator, as scikit-learn allows.

``est.coefs_ = [...]; est.intercepts_ = [...]`` (with ``classes_`` for a classifier) and then
``predict`` or ``partial_fit``: the network is built from the arrays' shapes, the estimator's
``activation`` and ``dropout``, and its loss; the arrays are copied into it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelBinarizer

from ..engine.layers import Dense, Dropout
from ..engine.network import Sequential
from ._params import ACTIVATIONS, STOCHASTIC_SOLVERS, dtype_name

if TYPE_CHECKING:
    from ._base import BaseMLP


def adopt_assigned_weights(est: BaseMLP) -> None:
    """Build ``est._model`` from the ``coefs_``/``intercepts_`` assigned to it (no-op once built)."""
    if "_model" in est.__dict__:
        return
    if "coefs_" not in est.__dict__ or "intercepts_" not in est.__dict__:
        raise AttributeError("assign both coefs_ and intercepts_ (or fit the estimator) before predicting")
    coefs = [np.asarray(c) for c in est.coefs_]
    intercepts = [np.asarray(b) for b in est.intercepts_]
    _check_shapes(coefs, intercepts)
    n_outputs = coefs[-1].shape[1]
    _prepare_targets(est, n_outputs)
    dtype = dtype_name(est.dtype) or ("float32" if all(c.dtype == np.float32 for c in coefs) else "float64")
    layers = []
    for W in coefs[:-1]:
        layers.append(Dense(W.shape[1], ACTIVATIONS[est.activation]))
        if est.dropout:
            layers.append(Dropout(est.dropout))
    layers.append(Dense(n_outputs))
    model = Sequential(layers, loss=est._loss(), optimizer=est._make_optimizer(), preprocess=None, dtype=dtype)
    model.build(coefs[0].shape[0])
    dense = [views for views in model.layer_params if "W" in views]
    for views, W, b in zip(dense, coefs, intercepts, strict=True):
        views["W"][...] = W
        views["b"][...] = b
    est._model = model
    est._link_fitted_weights()
    est.n_outputs_, est.n_layers_, est.out_activation_ = n_outputs, len(coefs) + 1, est._out_activation()
    if not hasattr(est, "n_features_in_"):
        est.n_features_in_ = coefs[0].shape[0]
    est._best_params = model.params.copy()
    est._has_optimizer = False
    est.n_iter_, est.t_ = getattr(est, "n_iter_", 0), getattr(est, "t_", 0)
    if est.solver in STOCHASTIC_SOLVERS and not hasattr(est, "loss_curve_"):
        est.loss_curve_, est._no_improvement_count = [], 0
        est.validation_scores_, est.best_validation_score_, est.best_loss_ = None, None, np.inf


def _check_shapes(coefs: list[np.ndarray], intercepts: list[np.ndarray]) -> None:
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(f"coefs_ and intercepts_ must hold the same number (>= 1) of arrays, "
                         f"got {len(coefs)} and {len(intercepts)}")
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"coefs_[{i}] has shape {W.shape} and intercepts_[{i}] {b.shape}: "
                             "expected (n_in, n_out) and (n_out,)")
        if i and W.shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(f"coefs_[{i}] has {W.shape[0]} rows but coefs_[{i - 1}] has "
                             f"{coefs[i - 1].shape[1]} columns")


def _prepare_targets(est: BaseMLP, n_outputs: int) -> None:
    """A classifier's label binarizer, from ``classes_`` (or from ``partial_fit(classes=...)``)."""
    if not hasattr(est, "classes_") and not hasattr(est, "_label_binarizer"):
        if not is_classifier(est):
            return
        raise AttributeError("assign classes_ along with coefs_ and intercepts_ (or pass classes= to partial_fit): "
                             "predictions are labels")
    if not is_classifier(est) or "_label_binarizer" in est.__dict__:
        return
    binarizer = LabelBinarizer()
    classes = np.asarray(est.classes_)
    softmax = getattr(est, "out_activation_", "softmax" if n_outputs > 1 else "logistic") == "softmax"
    if n_outputs > 1 and not softmax:  # multi-label: one logistic output per label
        binarizer.fit(np.vstack([np.zeros(n_outputs, dtype=int), np.eye(n_outputs, dtype=int)]))
        expected = n_outputs
    else:
        binarizer.fit(classes)
        expected = len(classes) if len(classes) > 2 else 1
    if expected != n_outputs:
        raise ValueError(f"classes_ has {len(classes)} classes, which needs {expected} output(s), "
                         f"but coefs_[-1] has {n_outputs}")
    est._label_binarizer = binarizer
