"""Batch normalisation (Ioffe & Szegedy, 2015) with population statistics that do not depend on
how the batches were cut or where they ran.

In training, each call normalises by its own rows' mean and variance: the whole batch in the
plain loop, each fixed micro-batch under synchronous workers ("ghost batches", so the bits do
not depend on the number of workers), each worker's batch under Hogwild, each shard under MPI.
At inference the layer uses its *running statistics*, which live in the flat parameter array
beside γ and β (so they are saved, checkpointed, restored with the best epoch and exported like
any parameter, and never trained: their gradient is zero and they are not decayed by L2).

The running statistics are not an exponential moving average over steps. After every epoch the
loop recomputes them as population statistics of the training rows under the epoch's final
weights ("PreciseBN", Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"): a moving average
mixes statistics of weights that no longer exist, and would need one more reduction per step in
every runner. :func:`refresh_batch_statistics` does it layer by layer, in float64, over a fixed,
evenly spaced set of at most ``STATISTICS_ROWS`` training rows in a fixed order; a runner adds up
what several ranks measured (:meth:`~loomnet.training.SerialRunner.reduce_statistics`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .layers import Array, Layer, Params, _buffer
from .params import StepWorkspace

if TYPE_CHECKING:
    from .network import Sequential

STATISTICS_ROWS = 8192   # training rows measured for the population statistics
STATISTICS_CHUNK = 2048  # rows per forward pass while measuring


class BatchNorm(Layer):
    """y = γ·(x - μ) / sqrt(σ² + ε) + β, with μ, σ² of the batch in training, running ones at inference.

    Parameters
    ----------
    epsilon : float
        ε > 0 added to the variance.

    Raises
    ------
    ValueError
        If ``epsilon`` is not positive.

    Notes
    -----
    Batch statistics tie a row's output to the other rows of its batch: synchronous workers
    normalise each fixed micro-batch on its own, so the fitted parameters are the same for any
    number of workers but differ from the plain loop's (which normalises whole batches) by more
    than rounding. :class:`~loomnet.LayerNorm` treats every row on its own and has no such tie.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16), ln.BatchNorm(), ln.ActivationLayer("relu"), ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=5)
    >>> [name for name, _, _ in model.layers[1].param_shapes()]
    ['gamma', 'beta', 'running_mean', 'running_var']
    >>> bool((model.layer_params[1]["running_var"] > 0).all())   # measured after every epoch
    True
    """

    kind = "batch_norm"

    def __init__(self, epsilon: float = 1e-5):
        if not epsilon > 0:
            raise ValueError(f"BatchNorm epsilon must be positive, got {epsilon}")
        self.epsilon = float(epsilon)

    def param_shapes(self):
        d = (self.n_in,)
        return [("gamma", d, False), ("beta", d, False), ("running_mean", d, False), ("running_var", d, False)]

    def init_params(self, params, rng):
        params["gamma"][...] = 1.0
        params["beta"][...] = 0.0
        params["running_mean"][...] = 0.0
        params["running_var"][...] = 1.0

    def forward(self, params, x, *, training, rng, ws, key):
        gamma, beta = params["gamma"], params["beta"]
        if training:
            mean = x.mean(axis=0)
            centred = np.subtract(x, mean, out=_buffer(ws, (key, "xhat"), x.shape, x.dtype))
            inv_std = (1.0 / np.sqrt(np.mean(np.square(centred), axis=0) + self.epsilon)).astype(x.dtype)
        else:
            meter = getattr(ws, "statistics", None)
            if meter is not None and meter.key == key:
                meter.add(x)
            centred = np.subtract(x, params["running_mean"], out=_buffer(ws, (key, "xhat"), x.shape, x.dtype))
            inv_std = (1.0 / np.sqrt(params["running_var"] + self.epsilon)).astype(x.dtype)
        xhat = np.multiply(centred, inv_std, out=centred)
        y = np.multiply(xhat, gamma, out=_buffer(ws, (key, "y"), x.shape, x.dtype))
        y += beta

        def backward(dy: Array, grads: Params, need_dx: bool) -> Array | None:
            np.sum(dy * xhat, axis=0, out=grads["gamma"])
            np.sum(dy, axis=0, out=grads["beta"])
            grads["running_mean"][...] = 0.0  # statistics, not trained
            grads["running_var"][...] = 0.0
            if not need_dx:
                return None
            dxhat = dy * gamma
            if not training:  # the statistics are constants: an affine map
                return (dxhat * inv_std).astype(x.dtype, copy=False)
            n = x.shape[0]
            dx = dxhat * n - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)
            dx *= inv_std / n
            return dx.astype(x.dtype, copy=False)

        return y, backward

    def get_config(self):
        return {"kind": self.kind, "epsilon": self.epsilon}


class _Meter:
    """Float64 sums of one BatchNorm layer's inputs (count, Σx, Σx²) during a measuring pass."""

    def __init__(self, key: Any, width: int):
        self.key = key
        self.sums = np.zeros(2 * width + 1)

    def add(self, x: Array) -> None:
        width = x.shape[1]
        x64 = x.astype(np.float64, copy=False)
        self.sums[0] += x.shape[0]
        self.sums[1:width + 1] += x64.sum(axis=0)
        self.sums[width + 1:] += np.square(x64).sum(axis=0)


def batch_norms(layers: Sequence[Layer], views: Sequence[Params], key: Any = None
                ) -> Iterator[tuple[Any, BatchNorm, Params]]:
    """(forward key, layer, parameter views) of every BatchNorm, containers included, in forward order."""
    for i, (layer, part) in enumerate(zip(layers, views, strict=True)):
        k = i if key is None else (key, i)
        if isinstance(layer, BatchNorm):
            yield k, layer, part
        elif hasattr(layer, "layers") and hasattr(layer, "_split"):  # a container such as Residual
            yield from batch_norms(layer.layers, layer._split(part), k)


def has_batch_norm(model: Sequential) -> bool:
    """Whether the built model has a BatchNorm layer anywhere."""
    return model.params is not None and next(batch_norms(model.layers, model.layer_params), None) is not None


def refresh_batch_statistics(model: Sequential, rows: NDArray[np.int64],
                             gather: Callable[[NDArray[np.int64], StepWorkspace], Array],
                             reduce: Callable[[NDArray[np.float64]], NDArray[np.float64]] = lambda sums: sums
                             ) -> None:
    """Set every BatchNorm's running mean and variance to the population statistics of ``rows``.

    One inference pass per BatchNorm layer, in forward order, so each layer is measured with the
    statistics of the layers before it already in place. Rows are visited in the given order in
    chunks and summed in float64 on this thread: the result does not depend on any worker count.

    Parameters
    ----------
    model : Sequential
        A built network.
    rows : ndarray of int
        The training rows to measure (:func:`statistics_rows` picks them).
    gather : callable
        ``gather(rows, ws)``: the prepared inputs of those rows.
    reduce : callable
        Adds up the sums several processes measured (MPI); the identity by default.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> from loomnet.engine.batchnorm import refresh_batch_statistics
    >>> model = ln.Sequential([ln.BatchNorm(), ln.Dense(1)], loss="mse", preprocess=None, dtype="float64").build(2)
    >>> X = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> refresh_batch_statistics(model, np.arange(2), lambda rows, ws: X[rows])
    >>> model.layer_params[0]["running_mean"], model.layer_params[0]["running_var"]
    (array([ 2., 20.]), array([  1., 100.]))
    """
    ws = StepWorkspace()
    for key, layer, views in list(batch_norms(model.layers, model.layer_params)):
        width = layer.n_in
        ws.statistics = meter = _Meter(key, width)
        for start in range(0, len(rows), STATISTICS_CHUNK):
            model.forward(gather(rows[start:start + STATISTICS_CHUNK], ws), ws=ws)
        sums = reduce(meter.sums)
        count = max(sums[0], 1.0)
        mean = sums[1:width + 1] / count
        var = np.maximum(sums[width + 1:] / count - np.square(mean), 0.0)
        views["running_mean"][...] = mean
        views["running_var"][...] = var
    ws.statistics = None


def statistics_rows(epoch_rows: NDArray[np.int64], limit: int = STATISTICS_ROWS) -> NDArray[np.int64]:
    """At most ``limit`` of the rows an epoch visits, evenly spaced over them in sorted order.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.engine.batchnorm import statistics_rows
    >>> statistics_rows(np.array([9, 3, 7, 1, 5]), limit=3).tolist()
    [1, 5, 9]
    """
    rows = np.sort(np.asarray(epoch_rows, dtype=np.int64))
    if len(rows) <= limit:
        return rows
    return rows[np.linspace(0, len(rows) - 1, limit).round().astype(np.int64)]
