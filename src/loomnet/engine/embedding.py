"""Embeddings of categorical columns: each one-hot block of the input becomes a dense vector.

A table's categorical column arrives one-hot encoded (:class:`loomnet.io.encoder.TableEncoder`):
a block of ``width`` columns with a single 1. ``CategoricalEmbedding`` maps each block to
``dim`` columns through its own matrix E (width × dim), the lookup E[category] written as the
product block · E, so a scaled block (the input scaler saw it) or the all-zero row of a
category never seen stays well defined. The other columns pass through unchanged. Each row is
treated on its own: every runner applies, with the same bits for any worker count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .layers import Layer

Array = NDArray[np.floating]


def default_embedding_dim(width: int) -> int:
    """The embedding size of a column with ``width`` categories: 1.6·width^0.56 (the fastai rule), 2 to 16."""
    return int(min(16, max(2, round(1.6 * width ** 0.56))))


class CategoricalEmbedding(Layer):
    """One embedding per categorical (one-hot) block of the input; the other columns pass through.

    The output is the passed-through columns first (in their order), then each block's embedding.

    Parameters
    ----------
    blocks : sequence of (start, width)
        The input columns of each categorical column's one-hot block; non-overlapping.
    dims : sequence of int, optional
        Embedding size of each block (default :func:`default_embedding_dim` of its width).

    Raises
    ------
    ValueError
        If a block or size is not a pair of non-negative/positive integers, blocks overlap, or a
        block lies outside the input (at build).

    Examples
    --------
    >>> import loomnet as ln
    >>> # 2 numeric columns, then a 5-category column one-hot encoded in columns 2..6
    >>> model = ln.Sequential([ln.CategoricalEmbedding([(2, 5)], dims=[3]), ln.Dense(2)]).build(7)
    >>> model.layers[0].n_out   # 2 passed through + 3
    5
    """

    kind = "embedding"

    def __init__(self, blocks: Sequence[Sequence[int]], dims: Sequence[int] | None = None):
        pairs = []
        for block in blocks:
            if len(block) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in block):
                raise ValueError(f"an embedding block is (start, width) in integers, got {block!r}")
            start, width = int(block[0]), int(block[1])
            if start < 0 or width < 1:
                raise ValueError(f"an embedding block needs start >= 0 and width >= 1, got ({start}, {width})")
            pairs.append((start, width))
        if not pairs:
            raise ValueError("CategoricalEmbedding needs at least one block")
        ordered = sorted(pairs)
        for (s0, w0), (s1, _) in zip(ordered, ordered[1:], strict=False):
            if s1 < s0 + w0:
                raise ValueError(f"embedding blocks overlap: ({s0}, {w0}) and ({s1}, ...)")
        dims = [default_embedding_dim(w) for _, w in pairs] if dims is None else list(dims)
        if len(dims) != len(pairs) or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                                              and d >= 1 for d in dims):
            raise ValueError(f"dims must be one positive integer per block, got {dims!r}")
        self.blocks, self.dims = pairs, [int(d) for d in dims]

    def build(self, n_in: int) -> int:
        self.n_in = int(n_in)
        end = max(s + w for s, w in self.blocks)
        if end > self.n_in:
            raise ValueError(f"an embedding block ends at column {end}, but the input has {self.n_in} columns")
        inside = np.zeros(self.n_in, dtype=bool)
        for start, width in self.blocks:
            inside[start:start + width] = True
        self.passed = np.flatnonzero(~inside)  # fixed at build: read by every call, written by none
        self.n_out = len(self.passed) + sum(self.dims)
        return self.n_out

    def param_shapes(self):
        return [(f"E{i}", (width, dim), True) for i, ((_, width), dim) in enumerate(zip(self.blocks, self.dims,
                                                                                           strict=True))]

    def init_params(self, params, rng):
        for i, dim in enumerate(self.dims):
            params[f"E{i}"][...] = rng.normal(0.0, 1.0 / np.sqrt(dim), size=params[f"E{i}"].shape)

    def forward(self, params, x, *, training, rng, ws, key):
        n, keep = x.shape[0], len(self.passed)
        y = np.empty((n, self.n_out), dtype=x.dtype)
        y[:, :keep] = x[:, self.passed]
        offset = keep
        for i, ((start, width), dim) in enumerate(zip(self.blocks, self.dims, strict=True)):
            np.matmul(x[:, start:start + width], params[f"E{i}"], out=y[:, offset:offset + dim])
            offset += dim

        def backward(dy: Array, grads: dict[str, Array], need_dx: bool) -> Array | None:
            dx = np.empty_like(x) if need_dx else None  # every column is written: passed through or a block
            if dx is not None:
                dx[:, self.passed] = dy[:, :keep]
            at = keep
            for i, ((start, width), dim) in enumerate(zip(self.blocks, self.dims, strict=True)):
                d_block = dy[:, at:at + dim]
                np.matmul(x[:, start:start + width].T, d_block, out=grads[f"E{i}"])
                if dx is not None:
                    dx[:, start:start + width] = d_block @ params[f"E{i}"].T
                at += dim
            return dx

        return y, backward

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "blocks": [list(b) for b in self.blocks], "dims": list(self.dims)}
