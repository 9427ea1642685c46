"""Loss functions L = Σᵢ wᵢ·lᵢ / N with their exact gradients dL/d(output).

``N`` (the normaliser) defaults to Σ wᵢ, a weighted mean. Passing the whole batch's N while
computing on a slice of it lets micro-batch gradients be summed into the batch gradient.
Cross-entropies take logits: the fused gradient softmax(z) - onehot(y) is exact and stable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._registry import lookup
from .activations import get_activation, log_softmax, sigmoid, softmax

Array = NDArray[np.floating]


class Loss:
    """Base class. ``task`` says how targets are encoded: 'regression', 'multiclass' or 'binary'."""

    name = "loss"
    task = "regression"

    def per_sample(self, out: Array, y: NDArray) -> Array:
        """lᵢ for each row, as float64."""
        raise NotImplementedError

    def grad_per_sample(self, out: Array, y: NDArray, grad_out: Array) -> Array:
        """Write ∂lᵢ/∂outᵢ into grad_out (unweighted) and return it."""
        raise NotImplementedError

    def forward_backward(
        self,
        out: Array,
        y: NDArray,
        sample_weight: Array | None = None,
        normalizer: float | None = None,
        grad_out: Array | None = None,
    ) -> float:
        """Return L and write dL/d(out) into ``grad_out`` (allocated if None)."""
        if grad_out is None:
            grad_out = np.empty_like(out)
        losses = self.per_sample(out, y)
        self.grad_per_sample(out, y, grad_out)
        if sample_weight is None:
            norm = float(out.shape[0]) if normalizer is None else float(normalizer)
            total = float(losses.sum())
            grad_out *= 1.0 / norm
        else:
            norm = float(sample_weight.sum()) if normalizer is None else float(normalizer)
            total = float(np.dot(losses, sample_weight))
            grad_out *= (sample_weight / norm).astype(grad_out.dtype, copy=False)[:, None]
        return total / norm

    def value(self, out: Array, y: NDArray, sample_weight: Array | None = None) -> float:
        """Weighted mean loss, without the gradient."""
        losses = self.per_sample(out, y)
        if sample_weight is None:
            return float(losses.mean())
        return float(np.dot(losses, sample_weight) / sample_weight.sum())

    def transform(self, out: Array) -> Array:
        """Map network outputs to predictions (probabilities for classification losses)."""
        return out

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """lᵢ = mean_j (outᵢⱼ - yᵢⱼ)²."""

    name = "mse"

    def per_sample(self, out, y):
        diff = out - y
        return np.einsum("ij,ij->i", diff, diff, dtype=np.float64) / out.shape[1]

    def grad_per_sample(self, out, y, grad_out):
        np.subtract(out, y, out=grad_out)
        grad_out *= 2.0 / out.shape[1]
        return grad_out


class MeanAbsoluteError(Loss):
    """lᵢ = mean_j |outᵢⱼ - yᵢⱼ|; the gradient at a tie is 0."""

    name = "mae"

    def per_sample(self, out, y):
        return np.abs(out - y).mean(axis=1, dtype=np.float64)

    def grad_per_sample(self, out, y, grad_out):
        np.subtract(out, y, out=grad_out)
        np.sign(grad_out, out=grad_out)
        grad_out *= 1.0 / out.shape[1]
        return grad_out


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy from logits z, per output: max(z,0) - z·y + log(1 + e^-|z|).

    Gradient: (sigmoid(z) - y) / k. Used for two classes (one output) and multi-label targets.
    """

    name = "binary_cross_entropy"
    task = "binary"

    def per_sample(self, out, y):
        z = out.astype(np.float64, copy=False)
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return loss.mean(axis=1)

    def grad_per_sample(self, out, y, grad_out):
        np.subtract(sigmoid(out), y, out=grad_out)
        grad_out *= 1.0 / out.shape[1]
        return grad_out

    def transform(self, out):
        return sigmoid(out)


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits z and integer labels: lᵢ = log Σⱼ e^zᵢⱼ - zᵢ,yᵢ.

    Fused gradient dl/dz = softmax(z) - onehot(y), exact and free of overflow.
    """

    name = "softmax_cross_entropy"
    task = "multiclass"

    def per_sample(self, out, y):
        logp = log_softmax(out.astype(np.float64, copy=False))
        return -logp[np.arange(out.shape[0]), y]

    def grad_per_sample(self, out, y, grad_out):
        softmax(out, out=grad_out)
        grad_out[np.arange(out.shape[0]), y] -= 1.0
        return grad_out

    def forward_backward(self, out, y, sample_weight=None, normalizer=None, grad_out=None):
        # Works on a class-major copy z (k, n): with few classes, reductions along a row of k
        # cost several times more than the same reductions across k contiguous rows of n.
        if grad_out is None:
            grad_out = np.empty_like(out)
        n, k = out.shape
        z = np.empty((k, n), dtype=out.dtype)
        np.copyto(z, out.T)
        shift = np.maximum.reduce(z, axis=0)
        z -= shift
        target = np.asarray(y).astype(np.intp, copy=False) * n  # flat positions of the true classes in z
        target += np.arange(n)
        target_logit = z.take(target)
        np.exp(z, out=z)
        sums = np.add.reduce(z, axis=0)
        losses = np.log(sums, dtype=np.float64) - target_logit
        z /= sums
        target_grad = z.take(target)
        target_grad -= 1.0
        z.put(target, target_grad)
        if sample_weight is None:
            norm = float(n) if normalizer is None else float(normalizer)
            np.multiply(z.T, 1.0 / norm, out=grad_out)
            return float(losses.sum()) / norm
        norm = float(sample_weight.sum()) if normalizer is None else float(normalizer)
        z *= (sample_weight / norm).astype(z.dtype, copy=False)
        np.copyto(grad_out, z.T)
        return float(np.dot(losses, sample_weight)) / norm

    def transform(self, out):
        return softmax(out)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (MeanSquaredError, MeanAbsoluteError, BinaryCrossEntropy, SoftmaxCrossEntropy)
}
_ALIASES = {
    "mean_squared_error": MeanSquaredError,
    "squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "absolute_error": MeanAbsoluteError,
    "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
    "categorical_cross_entropy": SoftmaxCrossEntropy,
    "categorical_crossentropy": SoftmaxCrossEntropy,
    "log_loss": SoftmaxCrossEntropy,
}


def get_loss(value: str | Loss) -> Loss:
    """Loss from a name (``"mse"``, ``"cross_entropy"``) or an instance."""
    if isinstance(value, dict):
        return get_loss(value["name"])
    return lookup("loss", {**LOSSES, **_ALIASES}, value, Loss)


_LOSS_OUTPUTS = {"binary": "sigmoid", "multiclass": "softmax"}  # what each cross-entropy applies to the logits


def fuse_output_activation(layers: list[Any], loss: Loss) -> str | None:
    """A Keras-style output activation the loss already applies (sigmoid before binary cross-entropy,
    softmax before cross-entropy) is taken into the loss: the last layer outputs logits, the loss
    and ``predict_proba`` apply the function once. The other cross-entropy's output function is refused.
    Returns the name of the fused activation, or None."""
    last = layers[-1]
    activation = getattr(last, "activation", None)
    expected = _LOSS_OUTPUTS.get(loss.task)
    if activation is None or expected is None or activation.name not in _LOSS_OUTPUTS.values():
        return None
    if activation.name != expected:
        raise ValueError(f"the output layer applies {activation.name}, but the loss {loss.name!r} applies {expected} "
                         f"to the logits: end with Dense(units) (no activation) or Dense(units, {expected!r})")
    last.activation = get_activation("identity")  # the loss applies it: never twice
    return expected
