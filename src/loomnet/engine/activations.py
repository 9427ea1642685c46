"""Activation functions a = f(z), each with its exact derivative.

Every activation computes into an optional ``out`` buffer and keeps nothing between calls.
Those whose derivative can be written from the output alone (``grad_from_output``) let the
dense layer overwrite z with a in place, halving the memory a forward pass holds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._registry import lookup

Array = NDArray[np.floating]


class Activation:
    """Base class: ``forward(z) -> a`` and ``backward(da, z, a) -> dz``."""

    name = "activation"
    grad_from_output = True
    backward_scratch = False  # True: backward can use a caller's buffer (a's shape) instead of allocating

    def forward(self, z: Array, out: Array | None = None) -> Array:
        raise NotImplementedError

    def backward(
        self, da: Array, z: Array | None, a: Array, out: Array | None = None, scratch: Array | None = None
    ) -> Array:
        """Return dL/dz given dL/da; ``out`` may alias ``da``; ``scratch`` (a's shape) is free to overwrite."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Identity(Activation):
    """f(z) = z."""

    name = "identity"

    def forward(self, z, out=None):
        if out is None:
            return z.copy()
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(self, da, z, a, out=None, scratch=None):
        if out is None:
            return da.copy()
        if out is not da:
            np.copyto(out, da)
        return out


class Sigmoid(Activation):
    """f(z) = 1 / (1 + e^-z), in place: e^-z overflows to inf for z < -709 and f to 0, as it should,
    and nothing cancels, so small probabilities keep their precision ((1 + tanh(z/2))/2 rounds to 0
    below z ≈ -38 in float64)."""

    name = "sigmoid"
    backward_scratch = True

    def forward(self, z, out=None):
        out = np.negative(z, out=out)
        with np.errstate(over="ignore"):
            np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        # f'(z) = a (1 - a)
        grad = np.subtract(1.0, a, out=scratch)
        grad *= a
        return np.multiply(da, grad, out=out)


class Tanh(Activation):
    """f(z) = tanh(z); f'(z) = 1 - a²."""

    name = "tanh"
    backward_scratch = True

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        grad = np.square(a, out=scratch)
        np.subtract(1.0, grad, out=grad)
        return np.multiply(da, grad, out=out)


class ReLU(Activation):
    """f(z) = max(z, 0); f'(z) = [z > 0]."""

    name = "relu"
    backward_scratch = True

    def forward(self, z, out=None):
        return np.maximum(z, _zeros_like(z), out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        return np.multiply(da, np.greater(a, 0, out=scratch), out=out)  # mask as 1.0/0.0: same product


class LeakyReLU(Activation):
    """f(z) = z for z > 0, alpha·z otherwise."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        if not 0 < alpha < 1:
            raise ValueError(f"LeakyReLU alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)

    def forward(self, z, out=None):
        scaled = np.multiply(z, self.alpha)
        return np.maximum(z, scaled, out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        slope = np.where(a > 0, 1.0, self.alpha).astype(da.dtype, copy=False)
        return np.multiply(da, slope, out=out)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


class ELU(Activation):
    """f(z) = z for z > 0, alpha·(e^z - 1) otherwise; f'(z) = 1 or a + alpha."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"ELU alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, z, out=None):
        negative = np.minimum(z, 0)
        np.expm1(negative, out=negative)
        negative *= self.alpha  # zero wherever z > 0
        out = np.maximum(z, 0, out=out)
        out += negative
        return out

    def backward(self, da, z, a, out=None, scratch=None):
        slope = np.where(a > 0, 1.0, a + self.alpha).astype(da.dtype, copy=False)
        return np.multiply(da, slope, out=out)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}


_GELU_C = math.sqrt(2.0 / math.pi)


class GELU(Activation):
    """Gaussian error linear unit, tanh form: 0.5·z·(1 + tanh(√(2/π)(z + 0.044715 z³))).

    The tanh form (PyTorch's ``approximate='tanh'``) is used because NumPy has no erf;
    its derivative below is exact for this form.
    """

    name = "gelu"
    grad_from_output = False

    def forward(self, z, out=None):
        inner = np.square(z)
        inner *= 0.044715
        inner += 1.0
        inner *= z
        inner *= _GELU_C
        np.tanh(inner, out=inner)
        inner += 1.0
        inner *= 0.5
        return np.multiply(z, inner, out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        z2 = np.square(z)
        t = np.tanh(_GELU_C * (z + 0.044715 * z2 * z))
        dinner = _GELU_C * (1.0 + 3 * 0.044715 * z2)
        grad = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * dinner
        return np.multiply(da, grad.astype(da.dtype, copy=False), out=out)


class Softmax(Activation):
    """Row-wise softmax, shifted by the row maximum (log-sum-exp stable)."""

    name = "softmax"

    def forward(self, z, out=None):
        return softmax(z, out=out)

    def backward(self, da, z, a, out=None, scratch=None):
        # dz = a ⊙ (da - Σ_j da_j a_j)
        dot = np.einsum("ij,ij->i", da, a)[:, None]
        grad = np.subtract(da, dot)
        return np.multiply(grad, a, out=out)


_ZEROS: dict[np.dtype, Array] = {}


def _zeros_like(x: Array) -> Array:
    """A read-only array of zeros shaped like ``x``, shared between calls.

    Why: np.maximum(z, 0) takes NumPy's scalar-operand loop, about 3× slower on large float32
    arrays than the same maximum against an array of zeros (same result, NaN kept)."""
    flat = _ZEROS.get(x.dtype)
    if flat is None or flat.size < x.size:
        flat = np.zeros(max(x.size, 4096), dtype=x.dtype)
        flat.flags.writeable = False
        _ZEROS[x.dtype] = flat
    return flat[: x.size].reshape(x.shape)


def softmax(z: Array, out: Array | None = None) -> Array:
    """Row-wise softmax of logits ``z``; never overflows."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: Array) -> Array:
    """Row-wise log-softmax, computed as z - max - log Σ exp(z - max)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def sigmoid(z: Array) -> Array:
    """Logistic function without overflow."""
    return Sigmoid().forward(np.asarray(z))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softmax)
}
_ALIASES = {"linear": Identity, "logistic": Sigmoid, "none": Identity}


def get_activation(value: str | Activation | None) -> Activation:
    """Activation from a name (``"relu"``), an instance, or None (identity)."""
    if value is None:
        return Identity()
    if isinstance(value, dict):
        cfg = dict(value)
        cls = get_activation(cfg.pop("name"))
        return type(cls)(**cfg)
    return lookup("activation", {**ACTIVATIONS, **_ALIASES}, value, Activation)
