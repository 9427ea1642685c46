"""Layers: Dense (with a fused activation), Activation and Dropout.

A layer owns no arrays. ``forward`` receives its parameter views and returns its output and a
``backward`` closure that captured what the call needs, so one model can run in many threads at
once. Scratch arrays come from a caller-owned :class:`Workspace`, reused between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .activations import Activation, get_activation
from .initializers import default_initializer, get_initializer, zeros

Array = NDArray[np.floating]
Params = dict[str, Array]
Backward = Callable[[Array, Params, bool], Array | None]


class Workspace:
    """Scratch buffers owned by one caller (one thread), keyed by name and reused while shapes hold.

    Why: allocating activations afresh on every step costs more than the arithmetic on small
    networks; a workspace makes the steady-state step allocation-free without putting per-call
    state on the layers. Never share one workspace between threads: each runner lane has its own.

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> ws = ln.Workspace()
    >>> a = ws.get("h", (4, 3), np.dtype(np.float32))
    >>> ws.get("h", (4, 3), np.dtype(np.float32)) is a     # same shape and dtype: the same buffer
    True
    >>> ws.get("h", (5, 3), np.dtype(np.float32)) is a
    False
    """

    def __init__(self) -> None:
        self._buffers: dict[Any, Array] = {}

    def get(self, key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        """An uninitialised buffer of ``shape`` and ``dtype`` under ``key``, reused while they hold."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._buffers[key] = buf
        return buf

    def ones(self, n: int, dtype: np.dtype) -> Array:
        """A vector of n ones (kept filled between calls): Σ_rows dZ as the GEMV ones·dZ."""
        buf = self._buffers.get(("ones", dtype))
        if buf is None or buf.shape[0] < n:
            buf = np.ones(max(n, 64), dtype=dtype)
            self._buffers[("ones", dtype)] = buf
        return buf[:n]


def _buffer(ws: Workspace | None, key: Any, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    return np.empty(shape, dtype=dtype) if ws is None else ws.get(key, shape, dtype)


def _matmul(a: Array, b: Array, out: Array) -> Array:
    """a·b into ``out``. ``np.dot`` when all dtypes agree: same BLAS call, a third of np.matmul's
    overhead on small arrays (it refuses mixed dtypes, which np.matmul casts)."""
    if a.dtype is out.dtype and b.dtype is out.dtype:
        return np.dot(a, b, out=out)
    return np.matmul(a, b, out=out)


class Layer:
    """The base class of every layer: a pure function of (parameters, input) with its backward.

    A layer holds its configuration only. Its parameters are views into the network's one flat
    array, handed to ``forward`` as a dict; the forward pass returns its output and a ``backward``
    closure that keeps the intermediates, so one layer object serves many threads at once.
    Subclasses define:

    - ``build(n_in) -> n_out``: fix the widths;
    - ``param_shapes()``: ``[(name, shape, decayed_by_l2), ...]``;
    - ``init_params(params, rng)``: fill the fresh views from the seeded generator;
    - ``forward(params, x, *, training, rng, ws, key) -> (y, backward)``, where
      ``backward(dy, grads, need_dx)`` writes the parameter gradients into ``grads`` (views of the
      flat gradient, same names) and returns dL/dx (or None when ``need_dx`` is False);
    - ``get_config()``, for model files (register the kind in
      :data:`loomnet.engine.layer_registry.LAYERS` to load it back).

    Examples
    --------
    A layer that scales each feature by a learned factor, y = x · s:

    >>> import numpy as np
    >>> import loomnet as ln
    >>> class Scale(ln.Layer):
    ...     kind = "scale"
    ...     def param_shapes(self):
    ...         return [("s", (self.n_in,), False)]
    ...     def init_params(self, params, rng):
    ...         params["s"][:] = 1.0
    ...     def forward(self, params, x, *, training, rng, ws, key):
    ...         def backward(dy, grads, need_dx):
    ...             grads["s"][:] = (dy * x).sum(axis=0)
    ...             return dy * params["s"] if need_dx else None
    ...         return x * params["s"], backward
    >>> model = ln.Sequential([Scale(), ln.Dense(1)], loss="mse", seed=0).build(2)
    >>> model.n_params                                   # 2 factors + 2 weights + 1 bias
    5
    """

    kind = "layer"
    n_in: int | None = None
    n_out: int | None = None

    def build(self, n_in: int) -> int:
        """Fix the input width and return the output width."""
        self.n_in = self.n_out = int(n_in)
        return self.n_out

    def param_shapes(self) -> list[tuple[str, tuple[int, ...], bool]]:
        """(name, shape, decayed by L2) for each parameter array."""
        return []

    def init_params(self, params: Params, rng: np.random.Generator) -> None:
        """Fill freshly allocated parameter views."""

    def forward(
        self,
        params: Params,
        x: Array,
        *,
        training: bool,
        rng: np.random.Generator | None,
        ws: Workspace | None,
        key: Any,
    ) -> tuple[Array, Backward]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "kind")
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer a = f(x·W + b): the article's y = f(Σ wᵢxᵢ + b) for a row of neurons.

    W has shape (n_in, units) so a batch is one matrix product; ``activation`` is fused so the
    pre-activation can be overwritten in place when f' is a function of f alone.

    Parameters
    ----------
    units : int
        Number of neurons (output width).
    activation : str, Activation or None
        'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu', 'elu', 'softplus', 'identity'... or
        None (identity: the logits of an output layer).
    kernel_initializer : str, optional
        Weight initialiser; default He for ReLU-like activations, Glorot otherwise.
    bias_initializer : str
        Bias initialiser (default 'zeros').
    use_bias : bool
        Whether the layer has a bias b.

    Raises
    ------
    ValueError
        If ``units`` is not a positive integer, or an activation or initialiser is unknown.

    Examples
    --------
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(3)]).build(4)
    >>> [layer.param_shapes()[0][1] for layer in model.layers]
    [(4, 8), (8, 3)]
    """

    kind = "dense"

    def __init__(
        self,
        units: int,
        activation: str | Activation | None = None,
        *,
        kernel_initializer: str | None = None,
        bias_initializer: str = "zeros",
        use_bias: bool = True,
    ):
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = get_activation(activation)
        self.kernel_initializer = kernel_initializer or default_initializer(self.activation.name)
        get_initializer(self.kernel_initializer)
        self.bias_initializer = bias_initializer
        get_initializer(bias_initializer)
        self.use_bias = bool(use_bias)

    def build(self, n_in: int) -> int:
        self.n_in, self.n_out = int(n_in), self.units
        return self.n_out

    def param_shapes(self):
        shapes = [("W", (self.n_in, self.units), True)]
        if self.use_bias:
            shapes.append(("b", (self.units,), False))
        return shapes

    def init_params(self, params, rng):
        get_initializer(self.kernel_initializer)(params["W"], rng)
        if self.use_bias:
            init = get_initializer(self.bias_initializer)
            if init is zeros:
                params["b"][...] = 0.0
            else:
                init(params["b"][None, :], rng)

    def forward(self, params, x, *, training, rng, ws, key):
        W = params["W"]
        act = self.activation
        z = _buffer(ws, (key, "z"), (x.shape[0], self.units), W.dtype)
        _matmul(x, W, z)
        if self.use_bias:
            z += params["b"]
        if act.grad_from_output:
            a = act.forward(z, out=z)
            z_saved = None
        else:
            a = act.forward(z, out=_buffer(ws, (key, "a"), z.shape, z.dtype))
            z_saved = z

        def backward(dy: Array, grads: Params, need_dx: bool) -> Array | None:
            scratch = _buffer(ws, (key, "scratch"), a.shape, a.dtype) if act.backward_scratch else None
            dz = act.backward(dy, z_saved, a, out=dy, scratch=scratch)
            _matmul(x.T, dz, grads["W"])
            if self.use_bias:
                ones = np.ones(x.shape[0], dz.dtype) if ws is None else ws.ones(x.shape[0], dz.dtype)
                _matmul(ones, dz, grads["b"])  # db = Σ_rows dz, as one BLAS GEMV
            if not need_dx:
                return None
            return _matmul(dz, W.T, _buffer(ws, (key, "dx"), x.shape, x.dtype))

        return a, backward

    def get_config(self):
        return {
            "kind": self.kind,
            "units": self.units,
            "activation": self.activation.get_config(),
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "use_bias": self.use_bias,
        }


class ActivationLayer(Layer):
    """A standalone activation, for architectures written layer by layer.

    Parameters
    ----------
    activation : str or Activation
        The activation's name ('relu', 'tanh', ...) or an :class:`~loomnet.activations.Activation`.

    Examples
    --------
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(8), ln.ActivationLayer("tanh"), ln.Dense(2)], loss="mse").build(3)
    >>> model.predict([[0.0, 1.0, 2.0]]).shape
    (1, 2)
    """

    kind = "activation"

    def __init__(self, activation: str | Activation):
        self.activation = get_activation(activation)

    def forward(self, params, x, *, training, rng, ws, key):
        act = self.activation
        a = act.forward(x, out=_buffer(ws, (key, "a"), x.shape, x.dtype))

        def backward(dy, grads, need_dx):
            if not need_dx:
                return None
            scratch = _buffer(ws, (key, "scratch"), a.shape, a.dtype) if act.backward_scratch else None
            return act.backward(dy, x, a, out=dy, scratch=scratch)

        return a, backward

    def get_config(self):
        return {"kind": self.kind, "activation": self.activation.get_config()}


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``rate`` and scale the rest
    by 1/(1-rate), so inference is the identity and needs no rescaling.

    The masks are drawn from (seed, epoch, step, row position), so they are the same for any
    number of workers.

    Parameters
    ----------
    rate : float
        Probability of zeroing a unit, in [0, 1).

    Raises
    ------
    ValueError
        If ``rate`` is outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> import loomnet as ln
    >>> model = ln.Sequential([ln.Dense(16, "relu"), ln.Dropout(0.5), ln.Dense(2)], seed=0).build(3)
    >>> X = np.ones((4, 3))
    >>> bool(np.array_equal(model.predict_proba(X), model.predict_proba(X)))  # inference: no dropout
    True
    """

    kind = "dropout"

    def __init__(self, rate: float):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def forward(self, params, x, *, training, rng, ws, key):
        if not training or self.rate == 0.0:
            return x, lambda dy, grads, need_dx: dy
        if rng is None:
            raise ValueError("Dropout in training needs a random Generator or the batch's noise")
        mask = _buffer(ws, (key, "mask"), x.shape, x.dtype)
        if isinstance(rng, np.random.Generator):
            rng.random(out=mask, dtype=mask.dtype)
            noise = mask
        else:  # a training step's noise (loomnet.training.streams): this slice's rows of the batch
            noise = rng.uniform(key, x.shape, x.dtype)
        keep = 1.0 / (1.0 - self.rate)
        np.greater_equal(noise, self.rate, out=mask)  # 1.0 where kept (bool written as float)
        mask *= keep
        y = np.multiply(x, mask, out=_buffer(ws, (key, "y"), x.shape, x.dtype))

        def backward(dy, grads, need_dx):
            return np.multiply(dy, mask, out=dy) if need_dx else None

        return y, backward

    def get_config(self):
        return {"kind": self.kind, "rate": self.rate}
