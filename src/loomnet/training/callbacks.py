"""Hooks into training: the Callback interface and the overfitting monitor every Trainer installs."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from ..engine._validation import user_stacklevel

if TYPE_CHECKING:
    from .loop import Trainer


class Callback:
    """Hooks into training; ``on_epoch_end`` may return True to stop.

    Subclass it and override the hooks you need; only callbacks that override ``on_batch_end`` are
    called per batch (in every mode: with several threads, under the bookkeeping lock).

    Examples
    --------
    >>> import loomnet as ln
    >>> class StopAtLoss(ln.Callback):
    ...     def on_epoch_end(self, trainer, record):
    ...         return record["loss"] < 0.5          # True stops training
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(3)], seed=0)
    >>> model.fit(iris.X, iris.y, epochs=200, callbacks=[StopAtLoss()]).stop_reason
    'callback'
    """

    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, epoch: int, step: int, batch_size: int, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> bool | None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


class OverfittingWarning(UserWarning):
    """Validation loss rose for several epochs in a row while training loss fell.

    Issued by :class:`OverfittingMonitor` (installed by every Trainer with validation data), once
    per rise, pointing at the caller's line. Filter it like any warning.

    Examples
    --------
    >>> import warnings
    >>> import loomnet as ln
    >>> warnings.simplefilter("ignore", ln.OverfittingWarning)   # silence it for a run you watch yourself
    >>> warnings.resetwarnings()
    """


class OverfittingMonitor(Callback):
    """Warn when val_loss has risen ``patience`` epochs in a row while the training loss fell.

    Installed by every Trainer (patience 5); pass your own in ``callbacks`` to change k, or
    ``OverfittingMonitor(None)`` to switch it off. It reads only the history records, so a
    resumed run warns exactly as an uninterrupted one. The warning is a ``warnings.warn``
    (category ``OverfittingWarning``), once per streak; ``history.overfit_epoch`` holds the
    first epoch it fired and ``history.notes`` a line per warning.

    Parameters
    ----------
    patience : int or None
        Epochs of rising val_loss (with falling loss) before the warning; None switches it off.

    Raises
    ------
    ValueError
        If ``patience`` is neither None nor an integer >= 1.

    Examples
    --------
    >>> import loomnet as ln
    >>> ln.OverfittingMonitor(3).patience
    3
    """

    def __init__(self, patience: int | None = 5):
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience must be an integer >= 1 or None, got {patience!r}")
        self.patience = patience

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        records = trainer.history.records
        if self.patience is None or "val_loss" not in record:
            return
        streak = 0
        for before, after in zip(records[-2::-1], records[:0:-1], strict=True):
            if not (after["val_loss"] > before["val_loss"] and after["loss"] < before["loss"]):
                break
            streak += 1
        if streak != self.patience:
            return
        epoch = record["epoch"]
        first = records[-1 - streak]
        message = (f"possible overfitting: validation loss rose {streak} epochs in a row "
                   f"({first['val_loss']:.4g} -> {record['val_loss']:.4g}, epochs {first['epoch']}-{epoch}) "
                   f"while training loss fell ({first['loss']:.4g} -> {record['loss']:.4g})")
        if trainer.early_stopping is None:
            message += "; early_stopping, more data, dropout or l2 would help"
        history = trainer.history
        if history.overfit_epoch is None:
            history.overfit_epoch = epoch
        history.notes.append(f"epoch {epoch}: {message}")
        warnings.warn(message, OverfittingWarning, stacklevel=user_stacklevel())


class CSVLogger(Callback):
    """Appends each epoch's record to a CSV file (a header first): loss, validation metrics, learning
    rate, time, samples/s, and any column a callback adds. Lists are written as JSON. The file is
    flushed every epoch, so a killed run keeps the epochs it finished; a resumed run appends to it.

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.training import CSVLogger
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> iris = ln.datasets.load("iris")
    >>> _ = ln.Sequential([ln.Dense(3)], seed=0).fit(iris.X, iris.y, epochs=2, callbacks=[CSVLogger(path)])
    >>> from pathlib import Path
    >>> Path(path).read_text().splitlines()[0].split(",")[:2]
    ['epoch', 'loss']
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.columns: list[str] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        self.columns = None

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        import csv
        import json

        new = self.columns is None
        if new and record["epoch"] > 1 and os.path.exists(self.path):  # a resumed run continues its log
            with open(self.path, newline="", encoding="utf-8") as fh:
                self.columns = next(csv.reader(fh), None) or list(record)
            new = False
        elif new:
            self.columns = list(record)
        row = [json.dumps(record[c]) if isinstance(record.get(c), (list, dict)) else record.get(c, "")
               for c in self.columns]
        with open(self.path, "w" if new else "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(self.columns)
            writer.writerow(row)
