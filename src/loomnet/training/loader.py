"""A prefetching data loader: a background thread gathers, shuffles and converts the next batches.

Batches go into a bounded queue (``depth`` batches), so compute never waits for data while
memory stays bounded. Sources are in-memory arrays or ``.npy`` files opened as memory maps.
For a memory map the loader reads each batch in pieces and after each piece tells the kernel
that it no longer needs the mapped pages (``madvise(MADV_DONTNEED)``; the file is read-only, so nothing
is lost): the process's resident memory stays bounded by about ``release_bytes`` of mapped
pages however large the file.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .streams import epoch_permutation

Batch = tuple[NDArray, NDArray, NDArray | None]
_END = object()
_POLL_S = 0.05
_FAULT_AROUND_BYTES = 64 << 10


def open_rows(source: ArrayLike | str | os.PathLike) -> NDArray:
    """An array, or a ``.npy`` path opened read-only as a memory map (nothing is read yet)."""
    if isinstance(source, (str, os.PathLike)):
        return np.load(source, mmap_mode="r")
    return source if isinstance(source, np.ndarray) else np.asarray(source)


class PrefetchLoader:
    """Yields (X_batch, y_batch, w_batch) for an epoch, prepared ahead of use by one background thread.

    ``transform`` (e.g. ``model.prepare_X``) runs in the background thread on each gathered
    batch; rows inside a batch are read in file order (the batch's rows are the shuffled ones,
    their order within the batch does not change its gradient) so a memory map reads forward.

    Parameters
    ----------
    X : array-like, memory map or path of a ``.npy`` file
        The rows; a path is opened as a memory map, so it may be larger than memory.
    y : array-like
        One target per row (already encoded for the loss).
    batch_size : int
        Rows per batch.
    sample_weight : array-like, optional
        Per-row weights (default 1).
    shuffle : bool
        A new order every epoch, from (seed, epoch).
    seed : int
        Seed of the order.
    transform, target_transform : callable, optional
        Applied to each gathered batch in the background thread (e.g. ``model.prepare_X``).
    depth : int
        Batches prepared ahead.
    release_bytes : int
        After reading this many bytes of a memory map, its pages are released (bounded memory).

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet import PrefetchLoader
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> [len(yb) for _, yb, _ in PrefetchLoader(X, y, batch_size=4, shuffle=False).epoch(0)]
    [4, 4, 2]
    """

    def __init__(
        self,
        X: ArrayLike | str | os.PathLike,
        y: ArrayLike,
        *,
        batch_size: int = 32,
        sample_weight: ArrayLike | None = None,
        shuffle: bool = True,
        seed: int = 0,
        transform: Callable[[NDArray], NDArray] | None = None,
        target_transform: Callable[[NDArray], NDArray] | None = None,
        depth: int = 4,
        release_bytes: int = 32 << 20,
    ):
        self.X = open_rows(X)
        self.y = np.asarray(y)
        if self.X.ndim != 2:
            raise ValueError(f"X must be 2-D (samples × features), got shape {self.X.shape}")
        if self.y.shape[0] != self.X.shape[0]:
            raise ValueError(f"X has {self.X.shape[0]} samples but y has {self.y.shape[0]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.sample_weight = None if sample_weight is None else np.asarray(sample_weight)
        self.batch_size, self.shuffle, self.seed, self.depth = batch_size, shuffle, seed, depth
        self.transform, self.target_transform = transform, target_transform
        self.release_bytes = release_bytes
        self._mmap = _mapping_of(self.X)
        self.batches_waited = 0  # how often the consumer found the queue empty

    def __len__(self) -> int:
        return -(-self.X.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch(0)

    def epoch_order(self, epoch: int) -> NDArray[np.int64]:
        """The rows in the order ``epoch`` yields them: a permutation from (seed, epoch) (the
        training loop's own), each batch's rows sorted so a memory map is read front to back."""
        n = self.X.shape[0]
        order = epoch_permutation(self.seed, epoch, n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            order[start:start + self.batch_size].sort()
        return order

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of one epoch (see :meth:`epoch_order`); the thread ends with the iterator."""
        order = self.epoch_order(epoch)
        batches: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(order, batches, stop),
                                    name="loomnet-prefetch", daemon=True)
        producer.start()
        try:
            while True:
                if batches.empty():
                    self.batches_waited += 1
                item = batches.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    batches.get_nowait()
                except queue.Empty:
                    producer.join(_POLL_S)

    def _gather(self, rows: NDArray[np.int64], piece_rows: int) -> NDArray:
        return _gather_rows(self.X, rows, self._mmap, piece_rows)

    def _produce(self, order: NDArray[np.int64], batches: queue.Queue, stop: threading.Event) -> None:
        # A row read from a memory map makes at least one page resident, and the kernel maps
        # the pages around a faulting page too ("fault-around", 64 KiB by default).
        touched_per_row = max(self.X.shape[1] * self.X.dtype.itemsize, _FAULT_AROUND_BYTES)
        piece_rows = max(1, self.release_bytes // touched_per_row)
        try:
            for start in range(0, len(order), self.batch_size):
                if stop.is_set():
                    return
                rows = order[start:start + self.batch_size]
                Xb = self._gather(rows, piece_rows)
                yb = self.y[rows]
                wb = None if self.sample_weight is None else self.sample_weight[rows]
                if self.transform is not None:
                    Xb = self.transform(Xb)
                if self.target_transform is not None:
                    yb = self.target_transform(yb)
                if not _put(batches, (Xb, yb, wb), stop):
                    return
            _put(batches, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            _put(batches, exc, stop)


def _gather_rows(X: NDArray, rows: NDArray[np.int64], mapping: mmap.mmap | None, piece_rows: int) -> NDArray:
    """X[rows] as a new array; from a memory map in pieces, dropping the mapped pages after each."""
    if mapping is None:
        return np.array(X[rows])
    out = np.empty((len(rows), X.shape[1]), dtype=X.dtype)
    for lo in range(0, len(rows), piece_rows):
        out[lo:lo + piece_rows] = X[rows[lo:lo + piece_rows]]
        mapping.madvise(mmap.MADV_DONTNEED)
    return out


def _put(batches: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            batches.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _mapping_of(X: NDArray) -> mmap.mmap | None:
    """The mmap under a ``np.memmap`` (or a view of one) whose pages may be dropped, if madvise is available."""
    base = X
    while base is not None:
        mapping = getattr(base, "_mmap", None)
        if isinstance(mapping, mmap.mmap):
            # copy-on-write maps ("c") hold private changes that MADV_DONTNEED would discard
            return mapping if hasattr(mapping, "madvise") and getattr(base, "mode", "r") != "c" else None
        base = getattr(base, "base", None)
    return None
