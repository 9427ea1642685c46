"""Validation scores from network outputs: one definition for every runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..engine.metrics import r2_score

if TYPE_CHECKING:
    from ..engine.network import Sequential


def validation_scores(model: Sequential, out: NDArray[np.floating], y: NDArray) -> dict[str, float]:
    """``val_loss`` and the task's headline metric (``val_r2`` or ``val_accuracy``) from raw outputs
    ``out`` on prepared targets ``y``."""
    result = {"val_loss": model.loss.value(out, y)}
    if model.loss.task == "regression":
        result["val_r2"] = r2_score(y, out)
    elif y.ndim == 1 or y.shape[1] == 1:
        result["val_accuracy"] = float(np.mean(model.loss_predictions(out) == y.reshape(-1)))
    return result
