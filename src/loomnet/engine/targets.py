"""Targets as the loss needs them: class codes, 0/1 label columns, or (standardised) values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_array
from .config import _fitted
from .preprocessing import LabelEncoder

if TYPE_CHECKING:
    from .network import Sequential


def encode_targets(model: Sequential, y: ArrayLike, *, fit: bool = False, classes: ArrayLike | None = None) -> NDArray:
    """``model.prepare_y``: encode ``y`` for the model's loss; fit the label/target encoders when asked."""
    if y is None:
        raise TypeError("y must be an array of targets, got None")
    y = np.asarray(y)
    if y.size == 0:
        raise ValueError("y is empty; at least one target is required")
    task = model.loss.task
    if task == "regression":
        return _regression_targets(model, y, fit)
    if task == "binary" and y.ndim == 2 and y.shape[1] > 1:
        y = check_array(y, name="y")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("multi-label targets must be 0/1")
        model._check_outputs(y.shape[1], "label columns")
        return y.astype(model.dtype)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"class labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity")
    if fit and model._label_encoder is None:
        model._label_encoder = LabelEncoder().fit(y if classes is None else np.asarray(classes))
        model.classes_ = model._label_encoder.classes_
        n_classes = len(model.classes_)
        if n_classes < 2:
            raise ValueError(f"classification needs at least 2 classes, got only {model.classes_.tolist()}")
        if task == "multiclass":
            model._check_outputs(n_classes, "classes")
        elif n_classes != 2:
            raise ValueError(f"binary cross-entropy needs exactly 2 classes, got {n_classes}; "
                             "use softmax_cross_entropy for more")
        else:
            model._check_outputs(1, "output for two classes")
    if model._label_encoder is None:
        raise RuntimeError("the model has not been fitted; call fit first")
    codes = model._label_encoder.transform(y)
    if task == "multiclass":
        return codes
    return codes.astype(model.dtype)[:, None]


def _regression_targets(model: Sequential, y: NDArray, fit: bool) -> NDArray:
    y = check_array(y.reshape(-1, 1) if y.ndim == 1 else y, name="y")
    model._check_outputs(y.shape[1], "target columns")
    if model.target_preprocess is not None:
        if fit and not _fitted(model.target_preprocess):
            model.target_preprocess.fit(y)
        y = model.target_preprocess.transform(y)
    return np.ascontiguousarray(y, dtype=model.dtype)
