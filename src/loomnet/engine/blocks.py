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
    """y = γ·(x - mean(x)) / sqrt(var(x) + ε) + β over each row's features (Ba et al., 2016).

    Each row is normalised on its own, so the result does not depend on the batch or on how it
    is split over workers (unlike batch normalisation).

    Parameters
    ----------
    epsilon : float
        ε > 0 added to the variance.

    Raises
    ------
    ValueError
        If ``epsilon`` is not positive.

    Examples
    --------
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(16), ln.LayerNorm(), ln.Dense(2)]).build(4)
    >>> model.layers[1].param_shapes()   # γ (starts at 1) and β (at 0), not decayed by l2
    [('gamma', (16,), False), ('beta', (16,), False)]
    """

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

    Parameters
    ----------
    layers : sequence of Layer
        The branch f; its output width must equal its input width.

    Raises
    ------
    TypeError
        If ``layers`` is empty or holds something that is not a Layer.

    Examples
    --------
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(16), ln.Residual.block(16, 32, dropout=0.1), ln.Dense(2)]).build(5)
    >>> model.n_outputs
    2
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


class PeriodicEmbedding(Layer):
    """Embeddings of numerical features, PLR form (Gorishniy et al., 2022, "On Embeddings for Numerical
    Features in Tabular Deep Learning"): each feature x_j becomes ReLU(W_j·[cos 2πc_j x_j, sin 2πc_j x_j]
    + b_j), with k trained frequencies c_j ~ N(0, σ²) and its own linear map to ``units`` outputs. The
    output has n_features × units columns. Each row is treated on its own: every runner applies.

    Parameters
    ----------
    frequencies : int
        k, the trained frequencies per feature.
    units : int
        Output columns per feature.
    sigma : float
        σ > 0 of the frequencies' initial normal distribution (on standardised inputs).

    Raises
    ------
    ValueError
        If ``frequencies`` or ``units`` is not a positive integer, or ``sigma`` is not positive.

    Examples
    --------
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.PeriodicEmbedding(frequencies=4, units=6), ln.Dense(2)]).build(3)
    >>> model.layers[0].n_out
    18
    """

    kind = "periodic"

    def __init__(self, frequencies: int = 8, units: int = 8, sigma: float = 0.1):
        for name, value in (("frequencies", frequencies), ("units", units)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"PeriodicEmbedding {name} must be a positive integer, got {value!r}")
        if not sigma > 0:
            raise ValueError(f"PeriodicEmbedding sigma must be positive, got {sigma}")
        self.frequencies, self.units, self.sigma = int(frequencies), int(units), float(sigma)

    def build(self, n_in: int) -> int:
        self.n_in = int(n_in)
        self.n_out = self.n_in * self.units
        return self.n_out

    def param_shapes(self):
        d, k, m = self.n_in, self.frequencies, self.units
        return [("C", (d, k), False), ("W", (d, 2 * k, m), True), ("b", (d, m), False)]

    def init_params(self, params, rng):
        params["C"][...] = rng.normal(0.0, self.sigma, size=params["C"].shape)
        bound = 1.0 / np.sqrt(2 * self.frequencies)
        params["W"][...] = rng.uniform(-bound, bound, size=params["W"].shape)
        params["b"][...] = 0.0

    def forward(self, params, x, *, training, rng, ws, key):
        C, W, b = params["C"], params["W"], params["b"]
        n, d, k = x.shape[0], self.n_in, self.frequencies
        two_pi = x.dtype.type(2 * np.pi)
        z = x[:, :, None] * (two_pi * C)[None]                      # (n, d, k)
        cos, sin = np.cos(z), np.sin(z)
        v = np.concatenate([cos, sin], axis=2)                       # (n, d, 2k)
        h = np.matmul(v.transpose(1, 0, 2), W).transpose(1, 0, 2)   # (n, d, m)
        h += b
        np.maximum(h, 0, out=h)
        y = h.reshape(n, d * self.units)

        def backward(dy: Array, grads: Params, need_dx: bool) -> Array | None:
            dh = dy.reshape(n, d, self.units) * (h > 0)
            grads["W"][...] = np.matmul(v.transpose(1, 2, 0), dh.transpose(1, 0, 2))   # (d, 2k, m)
            grads["b"][...] = dh.sum(axis=0)
            dv = np.matmul(dh.transpose(1, 0, 2), W.transpose(0, 2, 1)).transpose(1, 0, 2)  # (n, d, 2k)
            dz = dv[:, :, k:] * cos - dv[:, :, :k] * sin
            grads["C"][...] = (dz * (two_pi * x)[:, :, None]).sum(axis=0)
            if not need_dx:
                return None
            return (dz * (two_pi * C)[None]).sum(axis=2).astype(x.dtype, copy=False)

        return y, backward

    def get_config(self):
        return {"kind": self.kind, "frequencies": self.frequencies, "units": self.units, "sigma": self.sigma}
