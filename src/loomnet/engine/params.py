"""The flat parameter array: where each layer's parameters live in it, and per-thread views and buffers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .layers import Layer, Workspace

Array = NDArray[np.floating]


class ParamLayout:
    """Where each layer's parameters live in the flat array.

    Weights (decayed by L2) come first and biases after, so L2 touches one contiguous slice
    ``flat[:n_decay]``.
    """

    def __init__(self, layers: Sequence[Layer]):
        specs = [(i, name, shape, decay) for i, layer in enumerate(layers)
                 for name, shape, decay in layer.param_shapes()]
        ordered = [s for s in specs if s[3]] + [s for s in specs if not s[3]]
        self.entries: list[tuple[int, str, tuple[int, ...], int, int]] = []
        offset = 0
        for i, name, shape, _ in ordered:
            size = int(np.prod(shape))
            self.entries.append((i, name, shape, offset, size))
            offset += size
        self.size = offset
        self.n_decay = sum(int(np.prod(s[2])) for s in ordered if s[3])
        self.n_layers = len(layers)

    def views(self, flat: Array) -> list[dict[str, Array]]:
        """Per-layer dicts of views into ``flat`` (no copies)."""
        if flat.shape != (self.size,):
            raise ValueError(f"flat array has shape {flat.shape}, expected ({self.size},)")
        out: list[dict[str, Array]] = [{} for _ in range(self.n_layers)]
        for i, name, shape, offset, size in self.entries:
            out[i][name] = flat[offset:offset + size].reshape(shape)
        return out


class _ViewCache:
    """Views of the flat arrays one caller uses, built once per array (keeps the array alive)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Array, list[dict[str, Array]]]] = {}

    def views(self, layout: ParamLayout, flat: Array) -> list[dict[str, Array]]:
        hit = self._cache.get(id(flat))
        if hit is None or hit[0] is not flat:
            hit = (flat, layout.views(flat))
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[id(flat)] = hit
        return hit[1]


class StepWorkspace(Workspace):
    """A workspace that also caches parameter/gradient views; one per thread."""

    def __init__(self) -> None:
        super().__init__()
        self.view_cache = _ViewCache()
