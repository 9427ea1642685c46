"""Per-epoch metrics to TensorBoard, through tensorboardX (the ``tensorboard`` extra)."""

from __future__ import annotations

import os
import time
from numbers import Real
from typing import TYPE_CHECKING, Any

from .callbacks import Callback

if TYPE_CHECKING:
    from .loop import Trainer

#: record keys that are not metrics of the epoch
_NOT_SCALARS = frozenset({"epoch"})


def _require_tensorboardx() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("logging to TensorBoard needs tensorboardX (pip install 'loomnet[tensorboard]')") from None
    return SummaryWriter


class TensorBoardLogger(Callback):
    """Writes each epoch's numeric metrics (loss, validation metrics, learning rate, time, samples/s,
    and any number a callback adds) as TensorBoard scalars, one point per epoch.

    A list (per-class values) becomes one scalar per element, ``name/0``, ``name/1``, …; text is
    skipped. The event file is flushed every epoch, so ``tensorboard --logdir`` follows a running
    fit and a killed run keeps the epochs it finished. A resumed run writes its epochs after the
    ones already logged.

    Parameters
    ----------
    logdir : str or path-like
        The run's folder; TensorBoard is pointed at it or at its parent.

    Raises
    ------
    ImportError
        If tensorboardX is not installed (at construction, not mid-fit).

    Examples
    --------
    >>> import os, tempfile
    >>> import loomnet as ln
    >>> from loomnet.training import TensorBoardLogger
    >>> logdir = os.path.join(tempfile.mkdtemp(), "run1")
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=2, callbacks=[TensorBoardLogger(logdir)])
    >>> any(name.startswith("events.out.tfevents") for name in os.listdir(logdir))
    True
    """

    def __init__(self, logdir: str | os.PathLike):
        self._writer_class = _require_tensorboardx()
        self.logdir = os.fspath(logdir)
        self._writer: Any = None

    def on_train_begin(self, trainer: Trainer) -> None:
        if self._writer is None:
            # tensorboardX names the file by the second; a resumed fit in the same second needs a
            # suffix that is unique and sorts in time order, as TensorBoard reads files by name
            self._writer = self._writer_class(logdir=self.logdir, filename_suffix=f".{time.time_ns():020d}")

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self._writer is None:
            self.on_train_begin(trainer)
        epoch = int(record["epoch"])
        for name, value in scalars(record):
            self._writer.add_scalar(name, value, global_step=epoch)
        self._writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def scalars(record: dict[str, Any]) -> list[tuple[str, float]]:
    """The (tag, value) pairs TensorBoard gets from one epoch's record."""
    out: list[tuple[str, float]] = []
    for name, value in record.items():
        if name in _NOT_SCALARS or isinstance(value, bool):
            continue
        if isinstance(value, Real):
            out.append((name, float(value)))
        elif isinstance(value, (list, tuple)):
            out.extend((f"{name}/{i}", float(v)) for i, v in enumerate(value)
                       if isinstance(v, Real) and not isinstance(v, bool))
    return out
