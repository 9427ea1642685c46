"""Rank-sharded training data: which rows a rank owns, reading only those, and global scaler statistics.

Rows are cut into ``n_shards`` contiguous data shards that do not depend on the number of
ranks; rank r owns a contiguous run of shards. A shard is also the unit of the deterministic
reduction, so a fixed ``n_shards`` gives the same bits with any number of ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine.preprocessing import MinMaxScaler, StandardScaler, Transformer
from ..training import TrainingData
from .comm import Collective


def shard_bounds(n_rows: int, n_shards: int) -> NDArray[np.int64]:
    """Start row of each shard plus the end: shard j is rows [b[j], b[j+1])."""
    return np.array([j * n_rows // n_shards for j in range(n_shards + 1)], dtype=np.int64)


@dataclass(frozen=True)
class ShardPlan:
    """Shards [first_shard, last_shard) and rows [row_start, row_stop) that this rank owns."""

    bounds: NDArray[np.int64]
    shards_per_rank: list[int]
    first_shard: int
    last_shard: int

    @classmethod
    def make(cls, n_rows: int, n_shards: int, rank: int, size: int) -> ShardPlan:
        if n_shards < size:
            raise ValueError(f"micro_batches={n_shards} must be >= the number of ranks ({size}): "
                             "every rank owns at least one data shard")
        firsts = [r * n_shards // size for r in range(size + 1)]
        per_rank = [firsts[r + 1] - firsts[r] for r in range(size)]
        return cls(shard_bounds(n_rows, n_shards), per_rank, firsts[rank], firsts[rank + 1])

    @property
    def row_start(self) -> int:
        return int(self.bounds[self.first_shard])

    @property
    def row_stop(self) -> int:
        return int(self.bounds[self.last_shard])

    def local_slices(self) -> list[slice]:
        """Row ranges of this rank's shards, relative to its first row."""
        lo = self.row_start
        return [slice(int(self.bounds[j]) - lo, int(self.bounds[j + 1]) - lo)
                for j in range(self.first_shard, self.last_shard)]


def open_rows(source: ArrayLike | str | os.PathLike) -> NDArray:
    """An array to read rows from: a ``.npy`` path opens as a read-only memory map (nothing read yet)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not path.endswith(".npy"):
            raise ValueError(f"a sharded data path must be a .npy file (memory-mapped), got {path!r}")
        return np.load(path, mmap_mode="r")
    if isinstance(source, np.ndarray) or hasattr(source, "update_digest"):  # an array, or data_io.EncodedTable
        return source
    return np.asarray(source)


def read_rows(source: NDArray, rows: NDArray[np.int64] | slice) -> NDArray:
    """Copy the given rows into memory; from a memory map only those pages are read."""
    if isinstance(rows, slice):
        return np.array(source[rows])
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows),) + source.shape[1:], dtype=source.dtype)
    out[order] = source[rows[order]]
    return out


def fit_scaler_on_shards(scaler: Transformer, local_shards: list[NDArray], collective: Collective) -> None:
    """Fit ``scaler`` on the union of every rank's shards, combining per-shard statistics in shard order.

    Mean and variance: Σ sums / n, then Σ (x - mean)² / n, in float64 (two passes, no cancellation).
    The result does not depend on the number of ranks.
    """
    if isinstance(scaler, StandardScaler):
        sums = _in_shard_order(collective, [(len(x), x.sum(axis=0, dtype=np.float64)) for x in local_shards])
        n = sum(count for count, _ in sums)
        mean = _ordered_sum([s for _, s in sums]) / n
        squares = _in_shard_order(collective, [_sum_of_squares(x, mean) for x in local_shards])
        std = np.sqrt(_ordered_sum(squares) / n)
        scaler.mean_ = mean
        scaler.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    elif isinstance(scaler, MinMaxScaler):
        ranges = _in_shard_order(collective, [(x.min(axis=0), x.max(axis=0)) for x in local_shards if len(x)])
        low = np.min([lo for lo, _ in ranges], axis=0).astype(np.float64)
        span = np.max([hi for _, hi in ranges], axis=0).astype(np.float64) - low
        scaler.min_, scaler.span_ = low, np.where(span > 0, span, 1.0)
    else:
        raise ValueError(f"cannot fit {type(scaler).__name__} across shards; fit it before training "
                         "(a fitted preprocess is used as is)")
    scaler.fitted_ = True


def row_chunks(rows: NDArray, chunk_bytes: int = 64 << 20) -> list[slice]:
    """Slices of at most ``chunk_bytes`` of float64 per chunk (one slice for small arrays)."""
    width = int(np.prod(rows.shape[1:], dtype=np.int64)) or 1
    step = max(1, chunk_bytes // (8 * width))
    return [slice(i, min(i + step, len(rows))) for i in range(0, len(rows), step)]


def _sum_of_squares(x: NDArray, mean: NDArray) -> NDArray:
    """Σ (x - mean)² over rows, chunk by chunk so the float64 temporary stays small."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for chunk in row_chunks(x):
        total += ((x[chunk] - mean) ** 2).sum(axis=0)
    return total


def _in_shard_order(collective: Collective, local: list) -> list:
    return [item for rank_items in collective.allgather(local) for item in rank_items]


def _ordered_sum(arrays: list[NDArray]) -> NDArray:
    total = np.array(arrays[0], dtype=np.float64)
    for a in arrays[1:]:
        total += a
    return total


class ShardedData(TrainingData):
    """A rank's training rows: ``X`` holds only the rows ``row_start:row_start + len(X)`` of the whole
    training matrix, while ``y`` and the weights are whole (the loop's batches name global rows)."""

    def __init__(self, X: NDArray, y: NDArray, sample_weight: NDArray | None, *, row_start: int, n_samples: int,
                 shuffle: bool, seed: int):
        super().__init__(X, y, sample_weight, shuffle=shuffle, seed=seed)
        self.row_start, self._n_samples = int(row_start), int(n_samples)

    @property
    def n_samples(self) -> int:
        return self._n_samples

    def held_rows(self) -> NDArray[np.int64]:
        """This rank's training rows (an epoch's order names every rank's)."""
        return np.arange(self.row_start, min(self.row_start + len(self.X), self.n_samples))

    def gather(self, idx: NDArray[np.int64], ws: Any) -> tuple[NDArray, NDArray, NDArray | None]:
        X, y = self.X, self.y
        local = idx - self.row_start
        Xb = X.take(local, axis=0, mode="clip", out=ws.get("Xb", (len(idx), X.shape[1]), X.dtype))
        yb = y.take(idx, axis=0, mode="clip", out=ws.get("yb", (len(idx),) + y.shape[1:], y.dtype))
        wb = None if self.sample_weight is None else self.sample_weight.take(idx)
        return Xb, yb, wb
