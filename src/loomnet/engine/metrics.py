"""Evaluation metrics for classification and regression."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

_AVERAGES = ("macro", "weighted", "micro")


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of exact matches."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: ArrayLike | None = None) -> NDArray[np.int64]:
    """Counts C[i, j] of samples with true label i predicted as j, labels in sorted order."""
    y_true, y_pred = _pair(y_true, y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    k = len(labels)
    try:
        t = np.array([index[v] for v in y_true.tolist()], dtype=np.int64)
        p = np.array([index[v] for v in y_pred.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not among labels {labels.tolist()}") from None
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, average: str = "macro"
) -> tuple[float, float, float]:
    """Precision, recall and F1 averaged over classes ('macro', 'weighted' or 'micro').

    A class never predicted (or never present) contributes 0 where its ratio is undefined.
    """
    if average not in _AVERAGES:
        raise ValueError(f"unknown average {average!r}; valid averages are: {', '.join(_AVERAGES)}")
    cm = confusion_matrix(y_true, y_pred).astype(np.float64)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    if average == "micro":
        p = r = tp.sum() / max(cm.sum(), 1.0)
        f = p
        return float(p), float(r), float(f)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    weights = actual / actual.sum() if average == "weighted" else np.full_like(tp, 1.0 / len(tp))
    return float(precision @ weights), float(recall @ weights), float(f1 @ weights)


def precision(y_true: ArrayLike, y_pred: ArrayLike, average: str = "macro") -> float:
    return precision_recall_f1(y_true, y_pred, average)[0]


def recall(y_true: ArrayLike, y_pred: ArrayLike, average: str = "macro") -> float:
    return precision_recall_f1(y_true, y_pred, average)[1]


def f1_score(y_true: ArrayLike, y_pred: ArrayLike, average: str = "macro") -> float:
    return precision_recall_f1(y_true, y_pred, average)[2]


def log_loss(y_true: ArrayLike, proba: ArrayLike, labels: ArrayLike | None = None, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the true class under predicted probabilities (n, k).

    ``labels`` gives the class of each probability column (default: 0..k-1).
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    labels = np.arange(proba.shape[1]) if labels is None else np.asarray(labels)
    col = np.searchsorted(labels, y_true)
    if np.any(col >= len(labels)) or np.any(labels[np.minimum(col, len(labels) - 1)] != y_true):
        raise ValueError("y_true holds labels that have no probability column")
    p = np.clip(proba[np.arange(len(y_true)), col], eps, 1.0)
    return float(-np.mean(np.log(p)))


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    y_true, y_pred = _pair(y_true, y_pred, numeric=True)
    return float(np.mean((y_true - y_pred) ** 2))


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    y_true, y_pred = _pair(y_true, y_pred, numeric=True)
    return float(np.mean(np.abs(y_true - y_pred)))


def r2_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination 1 - SS_res/SS_tot, averaged over outputs."""
    y_true, y_pred = _pair(y_true, y_pred, numeric=True)
    if y_true.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    score = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res > 0, 0.0, 1.0))
    return float(score.mean())


def classification_report(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """The usual classification metrics in one dict."""
    out = {"accuracy": accuracy(y_true, y_pred)}
    for avg in ("macro", "weighted"):
        p, r, f = precision_recall_f1(y_true, y_pred, avg)
        out.update({f"precision_{avg}": p, f"recall_{avg}": r, f"f1_{avg}": f})
    return out


def regression_report(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """MSE, MAE and R² in one dict."""
    return {"mse": mean_squared_error(y_true, y_pred), "mae": mean_absolute_error(y_true, y_pred),
            "r2": r2_score(y_true, y_pred)}


def _pair(y_true: ArrayLike, y_pred: ArrayLike, numeric: bool = False) -> tuple[NDArray, NDArray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} samples but y_pred has {y_pred.shape[0]}")
    if y_true.shape[0] == 0:
        raise ValueError("metrics need at least one sample")
    if numeric:
        y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
        if y_true.ndim == 2 and y_true.shape[1] == 1 and y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        if y_pred.ndim == 2 and y_pred.shape[1] == 1 and y_true.ndim == 1:
            y_true = y_true[:, None]
    return y_true, y_pred
