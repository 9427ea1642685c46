"""Every random stream of training, derived from (seed, stream, epoch, step, ...) alone.

A stream is ``numpy.random.default_rng([seed, STREAM, *key])``: nothing depends on how many
numbers were drawn before, so a run resumed at any step, or split over any number of workers,
draws the same numbers. The stream numbers are named here once.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

SHUFFLE = 0   # the epoch's sample order: (seed, SHUFFLE, epoch)
DROPOUT = 1   # dropout's uniform numbers: (seed, DROPOUT, epoch, step, lane, layer)
PRESCALE = 2  # rows sampled to fit the preprocessing of a streamed dataset: (seed, PRESCALE)


def stream(seed: int, kind: int, *key: int) -> np.random.Generator:
    """The generator of one stream."""
    return np.random.default_rng([int(seed), kind, *map(int, key)])


def epoch_permutation(seed: int, epoch: int, n: int) -> NDArray[np.int64]:
    """The sample order of an epoch: a permutation of ``n`` derived from (seed, epoch) alone."""
    return stream(seed, SHUFFLE, epoch).permutation(n)


class BatchNoise:
    """Dropout's random numbers for one batch, as a function of (seed, epoch, step, row position).

    For each dropout layer (``key``: its position in the network) the whole batch's uniform
    numbers are drawn once, from their own stream; a slice of the batch reads the rows it
    computes. So a batch computed whole (one thread) and the same batch cut into micro-batches
    on any number of threads, or spread over MPI ranks, use the same masks. Thread-safe: the
    first slice to ask draws, under a lock; the buffers are reused from batch to batch.
    """

    def __init__(self, seed: int, lane: int = 0):
        self.seed, self.lane = int(seed), int(lane)
        self._key: tuple[int, int, int] = (-1, -1, 0)
        self._drawn: dict[object, NDArray[np.floating]] = {}
        self._buffers: dict[tuple[object, np.dtype], NDArray[np.floating]] = {}
        self._lock = threading.Lock()

    def begin(self, epoch: int, step: int, n_rows: int) -> None:
        """Move to the batch (epoch, step) of ``n_rows`` rows; nothing is drawn until asked."""
        self._key = (int(epoch), int(step), int(n_rows))
        self._drawn = {}

    def rows(self, positions: slice | NDArray[np.int64]) -> RowNoise:
        """The noise of some rows of the batch (a slice, or row positions in the batch)."""
        return RowNoise(self, positions)

    def uniform(self, key: object, width: int, dtype: np.dtype) -> NDArray[np.floating]:
        """The batch's uniform numbers in [0, 1) for layer ``key``: shape (rows, width)."""
        drawn = self._drawn.get(key)
        if drawn is not None and drawn.shape[1] == width and drawn.dtype == dtype:
            return drawn
        with self._lock:
            drawn = self._drawn.get(key)
            if drawn is None or drawn.shape[1] != width or drawn.dtype != dtype:
                epoch, step, n = self._key
                buffer = self._buffers.get((key, np.dtype(dtype)))
                if buffer is None or buffer.shape[0] < n or buffer.shape[1] != width:
                    buffer = np.empty((n, width), dtype=dtype)
                    self._buffers[(key, np.dtype(dtype))] = buffer
                drawn = buffer[:n]
                place = _flatten(key)  # a layer's position, nested in residual blocks: (block, inner, ...)
                stream(self.seed, DROPOUT, epoch, step, self.lane, *place).random(out=drawn, dtype=drawn.dtype)
                self._drawn[key] = drawn
        return drawn


def _flatten(key: object) -> list[int]:
    """A layer key (an int, or nested tuples of ints) as a flat list of ints."""
    if isinstance(key, tuple):
        return [part for item in key for part in _flatten(item)]
    return [int(key)]


class RowNoise:
    """What a layer sees of :class:`BatchNoise`: the rows of the batch it is computing."""

    __slots__ = ("batch", "positions")

    def __init__(self, batch: BatchNoise, positions: slice | NDArray[np.int64]):
        self.batch, self.positions = batch, positions

    def uniform(self, key: object, shape: tuple[int, int], dtype: np.dtype) -> NDArray[np.floating]:
        """Uniform numbers for these rows (a view for a slice of the batch)."""
        full = self.batch.uniform(key, shape[1], dtype)
        rows = full[self.positions] if isinstance(self.positions, slice) else full.take(self.positions, axis=0)
        if rows.shape != tuple(shape):
            raise ValueError(f"dropout noise for {rows.shape} rows was asked for a batch of shape {shape}")
        return rows
