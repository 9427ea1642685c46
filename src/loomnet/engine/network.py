"""The network: a sequence of layers over one flat parameter array.

``Sequential`` owns the flat ``params`` array (each layer's W and b are views into it), the
loss, the optimiser and the fitted preprocessing. Its pure function ``loss_and_grad`` maps
(parameters, batch) to (loss, flat gradient); training, threads and MPI are built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import all_finite, check_array, check_consistent_length
from .config import _fitted, model_config, model_from_config, model_summary
from .hooks import SAVE, TRAINING
from .layers import Dense, Dropout, Layer
from .losses import Loss, fuse_output_activation, get_loss
from .optimizers import BLOCK, Optimizer, get_optimizer
from .params import ParamLayout, StepWorkspace
from .preprocessing import LabelEncoder, Transformer, get_scaler
from .targets import encode_targets

Array = NDArray[np.floating]


_DTYPES = {"float32": np.float32, "float64": np.float64}


class Sequential:
    """A feed-forward network: layers applied in order, trained by gradient descent.

    ``preprocess`` is fitted on the training data inside ``fit`` and applied unchanged at
    prediction time, so validation and test data never leak into it. All parameters live in one
    flat array (``params``); each layer's W and b are views into it.

    Parameters
    ----------
    layers : sequence of Layer
        Dense, Dropout, LayerNorm, Residual, PeriodicEmbedding, ActivationLayer...; at least one Dense.
    loss : str or Loss
        'cross_entropy' (softmax, from logits), 'binary_cross_entropy', 'mse' or 'mae'.
        An output activation that the loss already applies (softmax, sigmoid) is fused, not applied twice.
    optimizer : str or Optimizer
        'adam', 'adamw', 'sgd', 'rmsprop', 'adagrad' or an optimiser object.
    learning_rate : float, optional
        The named optimiser's learning rate (default: its own).
    l2 : float
        Adds 0.5·l2·Σ W² to the loss (weights only, not biases).
    preprocess : {'standard', 'minmax', 'robust'}, scaler or None
        Input scaling, fitted on the training rows.
    target_preprocess : {'standard', ...}, scaler or None
        Regression target scaling; predictions are returned in target units.
    dtype : {'float32', 'float64'}
        Precision of parameters and arithmetic.
    seed : int or None
        Seed of the initial weights and of every training stream.

    Raises
    ------
    TypeError
        If ``layers`` is empty or holds something that is not a Layer.
    ValueError
        If there is no Dense layer, or a name (loss, optimiser, scaler, dtype) is unknown.

    Examples
    --------
    >>> import loomnet as ln
    >>> digits = ln.datasets.load("digits")
    >>> model = ln.Sequential([ln.Dense(64, "relu"), ln.Dropout(0.1), ln.Dense(10)], loss="cross_entropy", seed=0)
    >>> history = model.fit(digits.X, digits.y, epochs=5, batch_size=64)
    >>> model.predict(digits.X[:5]).shape
    (5,)
    >>> model.evaluate(digits.X, digits.y)["accuracy"] > 0.9
    True
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        *,
        loss: str | Loss = "cross_entropy",
        optimizer: str | Optimizer = "adam",
        learning_rate: float | None = None,
        l2: float = 0.0,
        preprocess: str | Transformer | None = "standard",
        target_preprocess: str | Transformer | None = None,
        dtype: str = "float32",
        seed: int | None = 0,
    ):
        layers = list(layers)
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("layers must be a non-empty sequence of Layer objects (Dense, Dropout, ...)")
        if not any(isinstance(layer, Dense) for layer in layers):
            raise ValueError("a network needs at least one Dense layer")
        if str(dtype) not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if not (isinstance(l2, (int, float)) and l2 >= 0):
            raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
        self.layers = layers
        self.loss = get_loss(loss)
        self.fused_output = fuse_output_activation(layers, self.loss)
        self.optimizer = get_optimizer(optimizer, learning_rate)
        self.l2 = float(l2)
        self.preprocess = get_scaler(preprocess)
        self.target_preprocess = get_scaler(target_preprocess)
        self.dtype = np.dtype(_DTYPES[str(dtype)])
        self.seed = seed
        self.n_features: int | None = None
        self.classes_: NDArray | None = None
        self.feature_names: list[str] | None = None
        self.history = None
        self.params: Array | None = None
        self._label_encoder: LabelEncoder | None = None

    # ----------------------------------------------------------------- structure
    def build(self, n_features: int) -> Sequential:
        """Fix the input width, allocate the flat parameter array and initialise it from ``seed``."""
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        width = int(n_features)
        for layer in self.layers:
            width = layer.build(width)
        self.n_features = int(n_features)
        self.n_outputs = width
        self.layout = ParamLayout(self.layers)
        self.params = np.zeros(self.layout.size, dtype=self.dtype)
        self.layer_params = self.layout.views(self.params)
        rng = np.random.default_rng(self.seed)
        for layer, views in zip(self.layers, self.layer_params, strict=True):
            layer.init_params(views, rng)
        self.optimizer.reset()
        self.has_dropout = _has_dropout(self.layers)
        return self

    @property
    def built(self) -> bool:
        return self.params is not None

    @property
    def n_params(self) -> int:
        return 0 if self.params is None else int(self.params.size)

    def set_params(self, flat: ArrayLike) -> None:
        """Copy a flat parameter vector into the model (in place: views stay valid)."""
        self._require_built()
        flat = np.asarray(flat)
        if flat.shape != self.params.shape:
            raise ValueError(f"expected {self.params.size} parameters, got shape {flat.shape}")
        np.copyto(self.params, flat)

    def get_weights(self) -> list[dict[str, Array]]:
        """Per-layer copies of W and b."""
        self._require_built()
        return [{k: v.copy() for k, v in views.items()} for views in self.layer_params]

    # ----------------------------------------------------------------- the math
    def forward(
        self,
        X: Array,
        params: Array | None = None,
        *,
        training: bool = False,
        rng: np.random.Generator | None = None,
        ws: StepWorkspace | None = None,
    ) -> tuple[Array, Callable[[Array, Array], Array | None]]:
        """Network output for a prepared batch, and a closure ``backward(d_out, grad_flat)``.

        ``backward`` writes dL/dθ into ``grad_flat`` (same layout as ``params``) and returns
        dL/dX; it may overwrite ``d_out``. Nothing is stored on the model.
        """
        params = self.params if params is None else params
        cache = ws.view_cache if ws is not None else None
        views = cache.views(self.layout, params) if cache else self.layout.views(params)
        backwards = []
        h = X
        for i, (layer, p) in enumerate(zip(self.layers, views, strict=True)):
            h, back = layer.forward(p, h, training=training, rng=rng, ws=ws, key=i)
            backwards.append(back)
        layout = self.layout

        def backward(d_out: Array, grad_flat: Array, need_dx: bool = False) -> Array | None:
            grads = cache.views(layout, grad_flat) if cache else layout.views(grad_flat)
            d = d_out
            for i in range(len(backwards) - 1, -1, -1):
                d = backwards[i](d, grads[i], need_dx or i > 0)
            return d

        return h, backward

    def loss_and_grad(
        self,
        params: Array,
        X: Array,
        y: NDArray,
        sample_weight: Array | None = None,
        *,
        grad: Array | None = None,
        normalizer: float | None = None,
        training: bool = True,
        rng: np.random.Generator | None = None,
        ws: StepWorkspace | None = None,
        include_l2: bool = True,
        grad_scale: float = 1.0,
        l2: float | None = None,
    ) -> tuple[float, Array]:
        """The pure function training stands on: (loss, dloss/dparams) for one batch.

        X and y must already be prepared (preprocessed, model dtype, encoded targets). With
        ``normalizer`` set to the whole batch's size (or weight), gradients of micro-batches
        add up to the batch gradient; then add L2 once, with ``include_l2`` on one of them.
        ``grad_scale`` multiplies the gradient (not the loss) at no cost: it scales dL/d(output),
        a batch × outputs array, before the backward pass carries it to every parameter.
        ``l2``: this batch's L2 strength in place of the model's (scikit-learn's α/Σw_batch);
        ``rng``: a Generator, or a training step's noise for the rows of ``X`` (dropout).
        """
        if grad is None:
            grad = np.empty_like(params)
        out, backward = self.forward(X, params, training=training, rng=rng, ws=ws)
        d_out = ws.get("d_out", out.shape, out.dtype) if ws is not None else np.empty_like(out)
        loss = self.loss.forward_backward(out, y, sample_weight, normalizer, d_out)
        if grad_scale != 1.0:
            d_out *= grad_scale
        backward(d_out, grad)
        strength = self.l2 if l2 is None else l2
        if include_l2 and strength > 0:
            loss += self.add_l2(params, grad, grad_scale, strength)
        return loss, grad

    def add_l2(self, params: Array, grad: Array, grad_scale: float = 1.0, l2: float | None = None) -> float:
        """Add ``grad_scale`` × the gradient of 0.5·l2·Σ W² to ``grad`` and return that penalty
        (``l2``: the strength, by default the model's)."""
        n = self.layout.n_decay
        weights = params[:n]
        strength = self.l2 if l2 is None else float(l2)
        l2 = params.dtype.type(strength * grad_scale)
        # Block by block through a small buffer: `grad += l2 * weights` would allocate (and
        # page-fault in) a temporary the size of all the weights on every step.
        scratch = np.empty(min(n, BLOCK), dtype=params.dtype)
        for lo in range(0, n, BLOCK):
            hi = min(lo + BLOCK, n)
            block = np.multiply(weights[lo:hi], l2, out=scratch[: hi - lo])
            np.add(grad[lo:hi], block, out=grad[lo:hi])
        return 0.5 * strength * float(np.dot(weights, weights))

    # ----------------------------------------------------------------- data preparation
    def prepare_X(self, X: ArrayLike, *, fit: bool = False) -> Array:
        """Validate X, fit (training only) and apply the preprocessing, cast to the model dtype."""
        X = checked = check_array(X, name="X")  # finite, or refused
        if fit:
            if not self.built:
                self.build(X.shape[1])
            if self.preprocess is not None and not _fitted(self.preprocess):
                self.preprocess.fit(X)
        self._require_built()
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the model was built for {self.n_features}")
        if self.preprocess is not None and getattr(self.preprocess, "fitted_", False):
            X = self.preprocess.transform(X, dtype=self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            prepared = np.ascontiguousarray(X, dtype=self.dtype)
        if prepared is not checked and not all_finite(prepared):  # scaling or casting can overflow
            row, col = np.argwhere(~np.isfinite(prepared))[0]
            raise ValueError(f"X has a value too large for {self.dtype.name} at row {row}, column {col} "
                             f"({X[row, col]:.3g} after preprocessing); scale the data, use a scaler "
                             "or dtype='float64'")
        return prepared

    def prepare_y(self, y: ArrayLike, *, fit: bool = False, classes: ArrayLike | None = None) -> NDArray:
        """Encode targets the way the loss needs them; fit the label/target encoders when asked."""
        return encode_targets(self, y, fit=fit, classes=classes)

    def _check_outputs(self, n: int, what: str) -> None:
        self._require_built()
        if n != self.n_outputs:
            raise ValueError(f"the data has {n} {what}, but the output layer has {self.n_outputs} units")

    # ----------------------------------------------------------------- inference
    def decision_function(self, X: ArrayLike, chunk_size: int = 8192) -> Array:
        """Raw network outputs (logits for cross-entropy losses), computed in chunks."""
        Xp = self.prepare_X(X)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._raw_output(Xp, chunk_size)
        return _check_finite_output(out, self.dtype)

    def _raw_output(self, Xp: Array, chunk_size: int = 8192) -> Array:
        out = np.empty((Xp.shape[0], self.n_outputs), dtype=self.dtype)
        ws = StepWorkspace()  # activation buffers reused from chunk to chunk, private to this call
        for start in range(0, Xp.shape[0], chunk_size):
            out[start:start + chunk_size] = self.forward(Xp[start:start + chunk_size], ws=ws)[0]
        return out

    def predict_proba(self, X: ArrayLike) -> Array:
        """Class probabilities, one column per entry of ``classes_`` (multi-label: per label)."""
        if self.loss.task == "regression":
            raise TypeError("predict_proba is only defined for classification losses")
        proba = self.loss.transform(self.decision_function(X))
        if self.loss.task == "binary" and self.classes_ is not None and proba.shape[1] == 1:
            proba = np.hstack([1.0 - proba, proba])
        return proba

    def predict(self, X: ArrayLike) -> NDArray:
        """Class labels for classification, values for regression (1-D when one output)."""
        self._require_built()
        if self.loss.task == "regression":
            out = self.decision_function(X)
            if self.target_preprocess is not None and getattr(self.target_preprocess, "fitted_", False):
                out = self.target_preprocess.inverse_transform(out)
            return out[:, 0] if out.shape[1] == 1 else out
        proba = self.predict_proba(X)
        if self.classes_ is None:  # multi-label
            return (proba >= 0.5).astype(np.int64)
        return self.classes_[proba.argmax(axis=1)]

    def evaluate(self, X: ArrayLike, y: ArrayLike) -> dict[str, float]:
        """Loss and the task's metrics on (X, y), with the fitted preprocessing applied."""
        from . import metrics

        Xp = self.prepare_X(X)
        yp = self.prepare_y(y)
        check_consistent_length(Xp, yp)
        out = _check_finite_output(self._raw_output(Xp), self.dtype)
        result = {"loss": self.loss.value(out, yp)}
        if self.loss.task == "regression":
            y_true = np.asarray(y, dtype=np.float64)
            result.update(metrics.regression_report(y_true, self.predict(X)))
        elif self.classes_ is not None:
            y_pred = self.classes_[self.loss_predictions(out)]
            result.update(metrics.classification_report(np.asarray(y), y_pred))
        return result

    def loss_predictions(self, out: Array) -> NDArray[np.int64]:
        """Encoded class predictions from raw outputs."""
        if self.loss.task == "binary" and out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        return out.argmax(axis=1)

    def fit(self, X: ArrayLike, y: ArrayLike, **kwargs: Any):
        """Train on (X, y); see :class:`loomnet.training.Trainer` for the options. Returns a History."""
        if TRAINING.fit is None:
            raise RuntimeError("import loomnet (or loomnet.training) to train a model")
        return TRAINING.fit(self, X, y, **kwargs)

    # ----------------------------------------------------------------- persistence
    def get_config(self) -> dict[str, Any]:
        """Everything but the weights, as JSON-compatible data."""
        return model_config(self)

    @classmethod
    def from_config(cls, config: dict[str, Any], params: ArrayLike | None = None) -> Sequential:
        """Rebuild a model from ``get_config()`` and (optionally) its flat parameters."""
        return model_from_config(cls, config, params)

    def summary(self) -> str:
        """A table of the layers: kind, output shape, activation, parameter count."""
        return model_summary(self)

    def save(self, path: str) -> None:
        """Write the model to a ``.loom`` file (safetensors layout, no pickle); read it back with
        :func:`loomnet.load_model`."""
        if SAVE.save is None:
            raise RuntimeError("import loomnet to save models")
        SAVE.save(self, path)

    def _require_built(self) -> None:
        if self.params is None:
            raise RuntimeError("the model has no parameters yet; call fit (or build) first")

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{layers}], loss={self.loss.name!r}, optimizer={self.optimizer!r})"


def _check_finite_output(out: Array, dtype: np.dtype) -> Array:
    """Refuse to hand back NaN/inf: finite inputs can still overflow inside the network."""
    if not np.isfinite(out).all():
        row = int(np.argwhere(~np.isfinite(out))[0][0])
        raise ValueError(f"the network output overflowed to NaN/inf at row {row}: the inputs are too large "
                         f"for {dtype.name} arithmetic; scale the data or use dtype='float64'")
    return out


def _has_dropout(layers: Sequence[Layer]) -> bool:
    """Whether any layer, inside containers too, drops units in training (and so needs noise)."""
    return any((isinstance(layer, Dropout) and layer.rate > 0) or _has_dropout(getattr(layer, "layers", ()))
               for layer in layers)
