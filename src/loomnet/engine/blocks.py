"""Layers for tabular deep learning: layer normalisation and the residual block of the ResNet-MLP
(Gorishniy et al., 2021, "Revisiting Deep Learning Models for Tabular Data").

Both treat every row on its own, so a batch cut into micro-batches, spread over threads or MPI
ranks, gives the same rows as the batch computed whole: they work in every runner unchanged.
``Residual`` is a container: y = x + f(x) for a sequence of layers f whose output width is its
input width. Its parameters are its layers' parameters, named ``"<index>.<name>"`` in the one
flat array; there is no second training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .layers import Array, Backward, Layer, Params, _buffer


class LayerNorm(Layer):
    """y = γ·(x - mean(x)) / sqrt(var(x) + ε) + β over each row's features (Ba et al., 2016)."""

    kind = "layer_norm"

    def __init__(self, epsilon: float = 1e-5):
        if not epsilon > 0:
            raise ValueError(f"LayerNorm epsilon must be positive, got {epsilon}")
        self.epsilon = float(epsilon)

    def param_shapes(self):
        return [("gamma", (self.n_in,), False), ("beta", (self.n_in,), False)]

    def init_params(self, params, rng):
        params["gamma"][...] = 1.0
        params["beta"][...] = 0.0

    def forward(self, params, x, *, training, rng, ws, key):
        gamma, beta = params["gamma"], params["beta"]
        mean = x.mean(axis=1, keepdims=True)
        centred = np.subtract(x, mean, out=_buffer(ws, (key, "xhat"), x.shape, x.dtype))
        inv_std = 1.0 / np.sqrt(np.mean(np.square(centred), axis=1, keepdims=True) + self.epsilon)
        xhat = np.multiply(centred, inv_std, out=centred)
        y = np.multiply(xhat, gamma, out=_buffer(ws, (key, "y"), x.shape, x.dtype))
        y += beta

        def backward(dy: Array, grads: Params, need_dx: bool) -> Array | None:
            np.sum(dy * xhat, axis=0, out=grads["gamma"])
            np.sum(dy, axis=0, out=grads["beta"])
            if not need_dx:
                return None
            dxhat = dy * gamma
            n = x.shape[1]
            dx = dxhat * n - dxhat.sum(axis=1, keepdims=True) - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)
            dx *= inv_std / n
            return dx.astype(x.dtype, copy=False)

        return y, backward

    def get_config(self):
        return {"kind": self.kind, "epsilon": self.epsilon}


class Residual(Layer):
    """y = x + f(x), f the given layers (their output width must equal the input width).

    ``Residual.block(width, hidden, dropout)`` is the ResNet-MLP block:
    LayerNorm → Dense(hidden, relu) → Dropout → Dense(width), plus the skip connection.
    """

    kind = "residual"

    def __init__(self, layers: Sequence[Layer]):
        layers = list(layers)
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("Residual needs a non-empty sequence of Layer objects")
        self.layers = layers

    @classmethod
    def block(cls, width: int, hidden: int, dropout: float = 0.0, activation: str = "relu") -> Residual:
        from .layers import Dense, Dropout

        inner: list[Layer] = [LayerNorm(), Dense(hidden, activation)]
        if dropout:
            inner.append(Dropout(dropout))
        inner.append(Dense(width))
        return cls(inner)

    def build(self, n_in: int) -> int:
        width = int(n_in)
        for layer in self.layers:
            width = layer.build(width)
        if width != n_in:
            raise ValueError(f"a residual block must keep its width: it takes {n_in} features and gives {width}")
        self.n_in = self.n_out = int(n_in)
        return self.n_out

    def param_shapes(self):
        return [(f"{i}.{name}", shape, decay) for i, layer in enumerate(self.layers)
                for name, shape, decay in layer.param_shapes()]

    def _split(self, params: Params) -> list[Params]:
        parts: list[Params] = [{} for _ in self.layers]
        for name, view in params.items():
            index, _, inner = name.partition(".")
            parts[int(index)][inner] = view
        return parts

    def init_params(self, params, rng):
        for layer, part in zip(self.layers, self._split(params), strict=True):
            layer.init_params(part, rng)

    def forward(self, params, x, *, training, rng, ws, key):
        backwards: list[Backward] = []
        h = x
        for i, (layer, part) in enumerate(zip(self.layers, self._split(params), strict=True)):
            h, back = layer.forward(part, h, training=training, rng=rng, ws=ws, key=(key, i))
            backwards.append(back)
        y = np.add(x, h, out=_buffer(ws, (key, "sum"), x.shape, x.dtype))

        def backward(dy: Array, grads: Params, need_dx: bool) -> Array | None:
            skip = dy.copy() if need_dx else None  # the inner backward may overwrite dy
            parts = self._split(grads)
            d = dy
            for i in range(len(backwards) - 1, -1, -1):
                d = backwards[i](d, parts[i], need_dx or i > 0)
            return None if not need_dx else d + skip

        return y, backward

    def get_config(self):
        return {"kind": self.kind, "layers": [layer.get_config() for layer in self.layers]}

    def __repr__(self) -> str:
        return f"Residual([{', '.join(map(repr, self.layers))}])"


def residual_from_config(config: dict[str, Any], rebuild: Any) -> Residual:
    """A Residual from its config; ``rebuild`` turns each inner layer config back into a layer."""
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError("a residual block's configuration needs a non-empty list of layers")
    return Residual([rebuild(c) for c in layers])
