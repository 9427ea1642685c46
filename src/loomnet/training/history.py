"""What training leaves behind: the per-epoch History, and the error of a diverged run."""

from __future__ import annotations

from typing import Any


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the model keeps its last finite parameters.

    A ``FloatingPointError`` (so also an ``ArithmeticError``), raised by ``fit`` before the step's
    update, in every runner.

    Parameters
    ----------
    epoch, step : int
        Where it happened (1-based).
    loss : float
        The non-finite loss.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> diabetes = ln.datasets.load("diabetes")
    >>> model = ln.Sequential([ln.Dense(1)], loss="mse", optimizer=ln.SGD(10.0), seed=0)
    >>> try:
    ...     model.fit(diabetes.X, diabetes.y, epochs=20)
    ... except ln.TrainingDivergedError as exc:
    ...     print(exc.epoch, exc.step, bool(np.isfinite(model.params).all()))
    2 7 True
    """

    def __init__(self, epoch: int, step: int, loss: float):
        self.epoch, self.step, self.loss = epoch, step, loss
        super().__init__(
            f"training diverged at epoch {epoch}, step {step}: the loss became {loss}; "
            "the model keeps its last finite parameters (try a lower learning rate or clip_norm)"
        )


class History:
    """Per-epoch records: loss, val_loss, validation metrics, learning rate, wall time.

    ``history["loss"]`` is one column over the epochs; ``stop_reason`` says why training ended
    ('max_epochs', 'early_stopping', 'loss_threshold', 'callback', 'interrupted'), ``best_epoch``
    which epoch's weights early stopping restored, ``notes`` what the loop reported.

    Parameters
    ----------
    records : list of dict, optional
        Epoch records to start from.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> history = ln.Sequential([ln.Dense(3)], seed=0).fit(iris.X, iris.y, epochs=3, validation_split=0.2)
    >>> len(history["val_loss"]), history.stop_reason
    (3, 'max_epochs')
    """

    def __init__(self, records: list[dict[str, Any]] | None = None):
        self.records: list[dict[str, Any]] = list(records or [])
        self.stop_reason: str = "max_epochs"
        self.best_epoch: int | None = None
        self.overfit_epoch: int | None = None  # first epoch an OverfittingWarning fired
        self.notes: list[str] = []

    def __getitem__(self, key: str) -> list[Any]:
        if not self.records or key not in self.records[-1]:
            raise KeyError(f"history has no column {key!r}; columns: {self.columns}")
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def columns(self) -> list[str]:
        return list(self.records[-1]) if self.records else []

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "stop_reason": self.stop_reason, "best_epoch": self.best_epoch,
                "overfit_epoch": self.overfit_epoch, "notes": self.notes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls(d.get("records"))
        h.stop_reason = d.get("stop_reason", "max_epochs")
        h.best_epoch, h.notes = d.get("best_epoch"), d.get("notes", [])
        h.overfit_epoch = d.get("overfit_epoch")
        return h

    def __repr__(self) -> str:
        last = self.records[-1] if self.records else {}
        return f"History(epochs={len(self)}, stop_reason={self.stop_reason!r}, last={last})"


def format_record(record: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    parts.append(f"{record['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts)
