"""Training from a :class:`PrefetchLoader`: data that need not fit in memory, e.g. a memory-mapped ``.npy``.

The preprocessing is fitted on a random sample of rows (``sample_rows``), because fitting it
on everything would need the whole matrix; then every batch is read, scaled and cast in the
loader's background thread while the main thread computes the previous step. The steps are
those of every other run: the loader is a data object (:class:`StreamedData`) handed to the
one epoch loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import Callback, Trainer, TrainingData
from .loader import Batch, PrefetchLoader, open_rows
from .streams import PRESCALE, stream

if TYPE_CHECKING:
    from ..engine.network import Sequential
    from ..engine.params import StepWorkspace
    from . import History


class StreamedData(TrainingData):
    """Rows read ahead by a :class:`PrefetchLoader`: the loop's ``gather`` takes the next prepared batch.

    The loop visits the loader's order batch by batch, so ``gather`` receives exactly the rows the
    loader prepared (checked). One lane only: batches arrive in order.
    """

    def __init__(self, loader: PrefetchLoader):
        super().__init__(loader.X, loader.y, loader.sample_weight, shuffle=loader.shuffle, seed=loader.seed)
        self.loader = loader
        self._batches: Iterator[Batch] | None = None
        self._expected: NDArray[np.int64] | None = None
        self._position = 0
        self.waited_at_start = 0

    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        self.close()
        self._expected = self.loader.epoch_order(epoch)
        self._batches, self._position = self.loader.epoch(epoch), 0
        return self._expected

    def gather(self, idx: NDArray[np.int64], ws: StepWorkspace) -> tuple[NDArray, NDArray, NDArray | None]:
        expected = self._expected[self._position:self._position + len(idx)]
        if self._batches is None or not np.array_equal(idx, expected):
            raise RuntimeError("a streamed dataset is read batch by batch, in the loader's order")
        self._position += len(idx)
        return next(self._batches)

    def held_rows(self) -> NDArray[np.int64]:
        return np.arange(self.loader.X.shape[0])

    def inputs(self, idx: NDArray[np.int64], ws: StepWorkspace) -> NDArray:
        """Any rows, read beside the loader's stream (which ``gather`` follows)."""
        X = np.array(self.loader.X[np.sort(idx)])
        return X if self.loader.transform is None else self.loader.transform(X)

    def close(self) -> None:
        """End the epoch's background reader (it is joined: no thread outlives the run)."""
        if self._batches is not None:
            self._batches.close()
            self._batches = None


class _LoaderWaits(Callback):
    """Adds how often the step waited for the loader to each epoch's record."""

    def __init__(self, loader: PrefetchLoader):
        self.loader, self.before = loader, 0

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        record["batches_waited"] = self.loader.batches_waited - self.before
        self.before = self.loader.batches_waited


def fit_stream(
    model: Sequential,
    X: ArrayLike | str | os.PathLike,
    y: ArrayLike,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    sample_rows: int = 10_000,
    depth: int = 4,
    classes: ArrayLike | None = None,
    verbose: bool = False,
) -> History:
    """Train ``model`` on rows streamed from ``X`` (an array, memory map or ``.npy`` path).

    Batches are gathered ahead by a :class:`PrefetchLoader` thread, so a file larger than memory
    trains with bounded memory; the input scaler is fitted on ``sample_rows`` rows drawn from (seed).

    Parameters
    ----------
    model : Sequential
        The model to train.
    X : array-like, memory map or path of a ``.npy`` file
        The rows.
    y : array-like
        One raw target per row (labels or values).
    epochs, batch_size, seed
        As for :class:`Trainer`.
    sample_rows : int
        Rows read to fit the input scaler.
    depth : int
        Batches prepared ahead.
    classes : array-like, optional
        All class labels, when some are missing from ``y``.
    verbose : bool
        Print a line per epoch.

    Returns
    -------
    History

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, iris.X)
    >>> len(ln.fit_stream(ln.Sequential([ln.Dense(3)], seed=0), path, iris.y, epochs=2, batch_size=16))
    2
    """
    source = open_rows(X)
    n = source.shape[0]
    sample = np.sort(stream(seed, PRESCALE).choice(n, size=min(n, sample_rows), replace=False))
    model.prepare_X(np.array(source[sample]), fit=True)
    y_prepared = model.prepare_y(y, fit=True, classes=classes)
    loader = PrefetchLoader(source, y_prepared, batch_size=batch_size, seed=seed, depth=depth,
                            transform=model.prepare_X)
    data = StreamedData(loader)
    trainer = Trainer(model, data=data, epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose,
                      callbacks=[_LoaderWaits(loader)])
    try:
        return trainer.run()
    finally:
        data.close()
