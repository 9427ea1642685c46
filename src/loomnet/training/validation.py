"""What the loop measures at the end of an epoch, defined once for every runner: validation scores
from network outputs, and BatchNorm's population statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..engine.batchnorm import has_batch_norm, refresh_batch_statistics, statistics_rows
from ..engine.metrics import r2_score

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from .loop import Trainer


def validation_scores(model: Sequential, out: NDArray[np.floating], y: NDArray) -> dict[str, float]:
    """``val_loss`` and the task's headline metric (``val_r2`` or ``val_accuracy``) from raw outputs
    ``out`` on prepared targets ``y``."""
    result = {"val_loss": model.loss.value(out, y)}
    if model.loss.task == "regression":
        result["val_r2"] = r2_score(y, out)
    elif y.ndim == 1 or y.shape[1] == 1:
        result["val_accuracy"] = float(np.mean(model.loss_predictions(out) == y.reshape(-1)))
    return result


def refresh_statistics(trainer: Trainer) -> None:
    """Measure every BatchNorm's running statistics on the trainer's rows (nothing without BatchNorm).

    The rows are a fixed subset of those this process holds (the data object says which), so the
    result does not depend on the epoch's shuffle or on the workers; the runner adds up what
    several ranks measured.
    """
    model, data = trainer.model, trainer.data
    if not has_batch_norm(model):
        return
    rows = statistics_rows(data.held_rows())
    refresh_batch_statistics(model, rows, data.inputs, trainer.runner.reduce_statistics)
