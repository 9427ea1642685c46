"""PNG plots of training curves and confusion matrices (matplotlib's Agg canvas, no GUI, no pyplot state)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..io.atomic import atomic_write


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write(path, buffer.getvalue())


def plot_history(records: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "", *,
                 best_epoch: int | None = None, overfit_epoch: int | None = None) -> None:
    """Loss and the task's metric (accuracy or R²), training and validation, per epoch, side by side.

    ``best_epoch`` (early stopping's restored epoch) is marked with a dashed line and a dot on
    the validation loss; ``overfit_epoch`` (when the overfitting warning fired) with a dotted one.
    """
    epochs = [r["epoch"] for r in records]
    last = records[-1] if records else {}
    metric = next((m for m in ("accuracy", "r2") if m in last or f"val_{m}" in last), None)
    figure = _figure(10 if metric else 5.5, 4)
    axes = figure.subplots(1, 2 if metric else 1, squeeze=False)[0]
    axes[0].plot(epochs, [r["loss"] for r in records], label="training loss")
    if records and "val_loss" in records[-1]:
        axes[0].plot(epochs, [r.get("val_loss") for r in records], label="validation loss")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0].legend()
    if metric:
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in last:
                axes[1].plot(epochs, [r.get(key) for r in records], label=f"{label} {metric}")
        axes[1].set(xlabel="epoch", ylabel=metric, title=metric)
        axes[1].legend()
    _mark_epochs(axes, records, best_epoch, overfit_epoch)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)


def _mark_epochs(axes: Any, records: Sequence[dict[str, Any]], best_epoch: int | None,
                 overfit_epoch: int | None) -> None:
    by_epoch = {r["epoch"]: r for r in records}
    if best_epoch in by_epoch:
        for ax in axes:
            ax.axvline(best_epoch, color="0.35", linestyle="--", linewidth=1)
        monitored = by_epoch[best_epoch].get("val_loss", by_epoch[best_epoch]["loss"])
        axes[0].plot([best_epoch], [monitored], "o", color="black", label=f"early stopping: best epoch {best_epoch}")
    if overfit_epoch in by_epoch:
        for ax in axes:
            ax.axvline(overfit_epoch, color="tab:red", linestyle=":", linewidth=1.2)
        axes[0].plot([], [], ":", color="tab:red", label=f"overfitting warning (epoch {overfit_epoch})")
    if best_epoch in by_epoch or overfit_epoch in by_epoch:
        axes[0].legend()


def plot_confusion(matrix: NDArray[np.int64], labels: Sequence[Any], path: str | os.PathLike, title: str = "") -> None:
    """A confusion matrix (rows: true class, columns: predicted class) with counts in the cells."""
    k = len(labels)
    size = min(3 + 0.5 * k, 12)
    figure = _figure(size, size)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), [str(label) for label in labels], rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), [str(label) for label in labels])
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    threshold = matrix.max() / 2 if matrix.size else 0
    if k <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black")
    figure.tight_layout()
    _save(figure, path)
