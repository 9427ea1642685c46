"""scikit-learn's MLP conventions, written as small extensions of the core.

Where scikit-learn's ``MLPClassifier``/``MLPRegressor`` define a quantity differently from the
core engine, the difference lives here, so the estimators can run the core's Sequential and
Trainer unchanged:

- squared loss is ½·mean(err²) with the gradient ``out - y`` (the core's mse is mean(err²));
- multi-label log loss sums over labels (the core's binary cross-entropy averages them);
- SGD momentum is scikit-learn's ``v ← μv - lr·g; p ← p + v``, with Nesterov's look-ahead
  written as scikit-learn writes it (the core's SGD keeps v with the opposite sign);
- Adam folds the bias corrections into the step size, ``lr_t = lr·√(1-β₂ᵗ)/(1-β₁ᵗ)``,
  ``p ← p - lr_t·m/(√v + ε)`` (the core adds ε to the bias-corrected √v̂);
- weights start as scikit-learn's Glorot-uniform draws from a ``RandomState``, biases too.

The L2 term α/(2·n_batch)·ΣW² is applied by the trainer (see ``_training.MLPTrainer``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..engine.layers import Dense
from ..engine.losses import BinaryCrossEntropy, Loss, MeanSquaredError
from ..engine.network import Sequential
from ..engine.optimizers import Adam, Optimizer
from ..engine.schedules import Constant

Array = NDArray[np.floating]


class HalfSquaredError(MeanSquaredError):
    """lᵢ = ½·mean_j (outᵢⱼ - yᵢⱼ)², with scikit-learn's gradient dl/dout = out - y.

    For several outputs scikit-learn's reported loss averages over them while its gradient
    sums them; we keep both, so training follows scikit-learn step for step.
    """

    name = "half_squared_error"

    def per_sample(self, out, y):
        return 0.5 * super().per_sample(out, y)

    def grad_per_sample(self, out, y, grad_out):
        return np.subtract(out, y, out=grad_out)


class SummedBinaryCrossEntropy(BinaryCrossEntropy):
    """Binary cross-entropy summed over labels (scikit-learn's multi-label log loss), from logits."""

    name = "summed_binary_cross_entropy"

    def per_sample(self, out, y):
        return super().per_sample(out, y) * out.shape[1]

    def grad_per_sample(self, out, y, grad_out):
        super().grad_per_sample(out, y, grad_out)
        grad_out *= out.shape[1]
        return grad_out


class SklearnSGD(Optimizer):
    """SGD with scikit-learn's momentum form: v ← μv - lr·g; p ← p + v (Nesterov: p ← p + μv - lr·g).

    Unlike the core SGD, momentum may be 0 with ``nesterov`` on (scikit-learn's default) and 1.
    """

    name = "sklearn_sgd"
    _state_names = ("velocity",)
    takes_scaled_gradient = True

    def __init__(self, learning_rate: float = 0.001, momentum: float = 0.9, nesterov: bool = True):
        super().__init__(learning_rate)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _coefficients(self, lr):
        return lr, self.momentum

    def _update(self, params, grad, scratch, state, coef):
        self._update_scaled(params, np.multiply(grad, coef[0], out=scratch), scratch, state, coef)

    def _update_scaled(self, params, grad, scratch, state, coef):
        # ``grad`` holds lr·g (possibly in ``scratch``: read before scratch is reused)
        momentum = coef[1]
        velocity = state["velocity"]
        velocity *= momentum
        velocity -= grad
        if self.nesterov:
            params -= grad
            np.multiply(velocity, momentum, out=scratch)
            params += scratch
        else:
            params += velocity

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class SklearnAdam(Adam):
    """Adam as scikit-learn writes it: p ← p - lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m/(√v + ε).

    Same scaled state as :class:`loomnet.Adam` (M = m/(1-β₁), V = v/(1-β₂)):
    m/(√v + ε) = (1-β₁)/√(1-β₂) · M/(√V + ε/√(1-β₂)).
    """

    name = "sklearn_adam"

    def _coefficients(self, lr):
        t = self.iterations
        root = math.sqrt(1.0 - self.beta_2)
        step = lr * math.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t) * (1.0 - self.beta_1) / root
        return self.beta_1, self.beta_2, self.epsilon / root, step, 1.0


class MutableRate(Constant):
    """A learning rate the estimator changes between epochs (invscaling, adaptive)."""


def glorot_uniform_like_sklearn(model: Sequential, random_state: np.random.RandomState, logistic: bool) -> None:
    """Draw every Dense layer's W then b from U(-r, r), r = √(f/(fan_in+fan_out)), f = 2 (logistic) or 6.

    Same draws in the same order as scikit-learn's ``_init_coef``, so one ``random_state`` gives
    the same starting weights in both libraries.
    """
    factor = 2.0 if logistic else 6.0
    for layer, views in zip(model.layers, model.layer_params, strict=True):
        if not isinstance(layer, Dense):
            continue
        bound = np.sqrt(factor / (layer.n_in + layer.n_out))
        views["W"][...] = random_state.uniform(-bound, bound, (layer.n_in, layer.n_out))
        views["b"][...] = random_state.uniform(-bound, bound, layer.n_out)


class HalfPoissonDeviance(Loss):
    """lᵢ = Σⱼ y·log(y/μ) - y + μ with μ = exp(z) (scikit-learn's 'poisson' loss); dl/dz = μ - y."""

    name = "half_poisson_deviance"

    def per_sample(self, out, y):
        z = out.astype(np.float64, copy=False)
        mu = np.exp(z)
        return (xlogy(y, y) - y * z - y + mu).sum(axis=1)

    def grad_per_sample(self, out, y, grad_out):
        np.exp(out, out=grad_out)
        grad_out -= y
        return grad_out

    def transform(self, out):
        return np.exp(out)


def xlogy(x: Array, y: Array) -> Array:
    """x·log(y), defined as 0 where x == 0."""
    x = np.asarray(x, dtype=np.float64)
    safe = np.where(x == 0, 1.0, y)
    return np.where(x == 0, 0.0, x * np.log(safe))
