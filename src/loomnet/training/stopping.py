"""When training stops: early stopping on a monitored value, and the loss threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Parameters
    ----------
    patience : int
        Epochs without improvement before training stops.
    min_delta : float
        How much the monitored value must fall to count as an improvement.
    restore_best_weights : bool
        Give the model the parameters of its best epoch when training ends.
    monitor : {'val_loss', 'loss'}
        The record column watched.

    Examples
    --------
    >>> import loomnet as ln
    >>> wine = ln.datasets.load("wine")
    >>> model = ln.Sequential([ln.Dense(32, "relu"), ln.Dense(3)], seed=0)
    >>> history = model.fit(wine.X, wine.y, epochs=500, validation_split=0.2, early_stopping=ln.EarlyStopping(5))
    >>> history.stop_reason, len(history.records) < 500
    ('early_stopping', True)
    """

    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True
    monitor: str = "val_loss"

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {self.patience!r}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")
        if self.monitor not in ("val_loss", "loss"):
            raise ValueError(f"monitor must be 'val_loss' or 'loss', got {self.monitor!r}")


class StoppingRules:
    """The loss threshold and early stopping, with the state a checkpoint carries (best value, wait)."""

    def __init__(self, loss_threshold: float | None, early_stopping: EarlyStopping | int | None):
        finite_number = isinstance(loss_threshold, (int, float)) and math.isfinite(loss_threshold)
        if loss_threshold is not None and not finite_number:
            raise ValueError(f"loss_threshold must be a finite number, got {loss_threshold!r}")
        if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
            early_stopping = EarlyStopping(patience=early_stopping)
        self.loss_threshold = loss_threshold
        self.early_stopping: EarlyStopping | None = early_stopping
        self.reset()

    def reset(self) -> None:
        self.best: float = math.inf
        self.wait = 0
        self.best_params: NDArray[np.floating] | None = None

    def after_epoch(self, record: dict[str, Any], params: NDArray[np.floating]) -> tuple[str | None, bool]:
        """(the stop reason or None, whether this epoch is the best so far)."""
        reason, improved = None, False
        es = self.early_stopping
        if es is not None:
            value = record[es.monitor]
            if value < self.best - es.min_delta:
                self.best, self.wait, improved = value, 0, True
                if es.restore_best_weights:
                    self.best_params = params.copy()
            else:
                self.wait += 1
                if self.wait >= es.patience:
                    reason = "early_stopping"
        if self.loss_threshold is not None and record["loss"] <= self.loss_threshold:
            reason = "loss_threshold"
        return reason, improved

    def restore_best(self, params: NDArray[np.floating]) -> None:
        """Copy the best epoch's parameters into ``params`` when early stopping asks for it."""
        es = self.early_stopping
        if es is not None and es.restore_best_weights and self.best_params is not None:
            np.copyto(params, self.best_params)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait,
                "best_params": None if self.best_params is None else self.best_params.copy()}

    def load_state_dict(self, state: dict[str, Any], dtype: np.dtype) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])
        bp = state.get("best_params")
        self.best_params = None if bp is None else np.array(bp, dtype=dtype)
