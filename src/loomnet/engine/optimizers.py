"""Optimisers that update one flat parameter array in place from one flat gradient.

One vectorised update covers every layer; state arrays (momentum, moments) are flat too, so
checkpoints, Allreduce and Hogwild all see a single buffer. Conventions follow PyTorch, except
that SGD keeps its velocity in parameter units (classic momentum, as Keras and scikit-learn
write it): then an update is linear in lr·g, and the training loop can hand it a gradient the
backward pass already scaled by the learning rate (``grad_scaled``), saving a pass.

An update that needs a temporary (Adam, or SGD given g rather than lr·g) runs over the flat
arrays block by block (``BLOCK`` elements), so each block stays in cache across its several
NumPy passes and the scratch buffer is one block long. An update without one (momentum SGD
given lr·g, the training loop's usual case) makes each pass over the whole range at once: every
block costs a few microseconds of Python and slicing, more than blocking saves on three passes.
Elementwise math either way, so the result is bit for bit the same.
"""

from __future__ import annotations

import math

import numpy as np

from ._registry import lookup
from .optimizer_base import BLOCK, STATE_FORM, THREAD_BLOCK, Optimizer, StepUpdate, clip_by_global_norm
from .schedules import Constant, Schedule, get_schedule

__all__ = ["BLOCK", "OPTIMIZERS", "SGD", "STATE_FORM", "THREAD_BLOCK", "Adagrad", "Adam", "AdamW", "Optimizer",
           "RMSprop", "StepUpdate", "clip_by_global_norm", "get_optimizer"]


class SGD(Optimizer):
    """Plain, momentum or Nesterov SGD with classic momentum (Sutskever et al., 2013):
    v ← μv + lr·g; p ← p - v (Nesterov: p ← p - (lr·g + μv)).

    With a constant learning rate this is PyTorch's SGD step for step (PyTorch keeps v/lr); when
    a schedule changes lr, a new rate applies to new gradients only, as in Keras and scikit-learn.
    Keeping v in parameter units makes the update linear in lr·g: given a gradient the backward
    pass already scaled (``grad_scaled``), momentum SGD is three passes over the flat arrays.

    Parameters
    ----------
    learning_rate : float or Schedule
        Step size, constant or a schedule (:mod:`loomnet.schedules`).
    momentum : float
        μ in [0, 1); 0 is plain SGD.
    nesterov : bool
        Nesterov's look-ahead momentum (needs ``momentum > 0``).
    clip_norm : float, optional
        Rescale each step's gradient to at most this global L2 norm.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(16, "relu"), ln.Dense(3)], optimizer=ln.SGD(0.05, momentum=0.9), seed=0)
    >>> model.fit(iris.X, iris.y, epochs=30, batch_size=16).records[-1]["loss"] < 0.3
    True
    """

    name = "sgd"
    takes_scaled_gradient = True

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, clip_norm=None):
        super().__init__(learning_rate, clip_norm)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._state_names = ("velocity",) if momentum > 0 else ()

    def _coefficients(self, lr):
        return lr, self.momentum

    def _upgrade_form_1(self, arrays):
        if "velocity" not in arrays:
            return arrays
        if not isinstance(self.schedule, Constant):
            raise ValueError("this optimiser state was saved by loomnet 0.1, whose SGD kept its momentum in "
                             "gradient units; under a learning-rate schedule it cannot be converted exactly "
                             "(start from the saved parameters without the optimiser state instead)")
        arrays["velocity"] *= self.schedule.learning_rate  # PyTorch's buffer v → lr·v
        return arrays

    def _update(self, params, grad, scratch, state, coef):
        self._update_scaled(params, np.multiply(grad, coef[0], out=scratch), scratch, state, coef)

    def _uses_scratch(self, grad_scaled):
        return self.nesterov or not grad_scaled

    def _update_scaled(self, params, grad, scratch, state, coef):
        # ``grad`` holds lr·g here; it may be ``scratch`` itself (from _update), so it is read
        # before scratch is written.
        if self.momentum == 0.0:
            params -= grad
            return
        momentum = coef[1]
        v = state["velocity"]
        v *= momentum
        v += grad
        if self.nesterov:
            params -= grad
            np.multiply(v, momentum, out=scratch)
            params -= scratch
        else:
            params -= v

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam: m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², p ← p - lr·m̂/(√v̂ + ε).

    The state keeps the moments divided by (1-β): M = m/(1-β₁) and V = v/(1-β₂), updated as
    M ← β₁M + g and V ← β₂V + g², one multiplication fewer each; the constants move into the
    step size and ε (``_coefficients``). Ten passes over the flat arrays per step instead of
    thirteen, for the same update up to rounding.

    Parameters
    ----------
    learning_rate : float or Schedule
        Step size, constant or a schedule (:mod:`loomnet.schedules`).
    beta_1, beta_2 : float
        Decay rates of the first and second moments, in [0, 1).
    epsilon : float
        Added to √v̂ for numerical stability.
    clip_norm : float, optional
        Rescale each step's gradient to at most this global L2 norm.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.schedules import CosineDecay
    >>> opt = ln.Adam(learning_rate=CosineDecay(3e-3, epochs=20))
    >>> model = ln.Sequential([ln.Dense(32, "relu"), ln.Dense(10)], optimizer=opt)
    >>> model.optimizer is opt
    True
    """

    name = "adam"
    _state_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, clip_norm=None):
        super().__init__(learning_rate, clip_norm)
        if not (0 <= beta_1 < 1 and 0 <= beta_2 < 1) or epsilon <= 0:
            raise ValueError(f"Adam needs 0 <= beta < 1 and epsilon > 0, got {beta_1}, {beta_2}, {epsilon}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _coefficients(self, lr):
        # m̂ = (1-β₁)M/(1-β₁ᵗ) and √v̂ = c·√V with c = √((1-β₂)/(1-β₂ᵗ)), so
        # lr·m̂/(√v̂ + ε) = [lr·(1-β₁)/((1-β₁ᵗ)·c)] · M/(√V + ε/c)
        t = self.iterations
        c = math.sqrt((1.0 - self.beta_2) / (1.0 - self.beta_2**t))
        step = lr * (1.0 - self.beta_1) / ((1.0 - self.beta_1**t) * c)
        return self.beta_1, self.beta_2, self.epsilon / c, step, self._decay_factor(lr)

    def _decay_factor(self, lr: float) -> float:
        """p ← p·factor before the step: 1 here (no decoupled weight decay); AdamW overrides."""
        return 1.0

    def _upgrade_form_1(self, arrays):
        if "m" in arrays:
            arrays["m"] /= 1.0 - self.beta_1
        if "v" in arrays:
            arrays["v"] /= 1.0 - self.beta_2
        return arrays

    def _update(self, params, grad, scratch, state, coef):
        beta_1, beta_2, epsilon, step, decay = coef
        if decay != 1:
            params *= decay
        m, v = state["m"], state["v"]
        m *= beta_1
        m += grad
        v *= beta_2
        np.multiply(grad, grad, out=scratch)
        v += scratch
        np.sqrt(v, out=scratch)
        scratch += epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= step
        params -= scratch

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: p ← p·(1 - lr·λ) before the Adam step (Loshchilov & Hutter).

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon, clip_norm
        As for :class:`Adam`.
    weight_decay : float
        λ ≥ 0, applied to every parameter, scaled by the learning rate.

    Raises
    ------
    ValueError
        If ``weight_decay`` is negative.

    Examples
    --------
    >>> import loomnet as ln
    >>> ln.AdamW(1e-3, weight_decay=0.05).weight_decay
    0.05
    """

    name = "adamw"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 weight_decay: float = 0.01, clip_norm=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, clip_norm)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.weight_decay = float(weight_decay)

    def _decay_factor(self, lr):
        return 1.0 - lr * self.weight_decay

    def _hyper(self):
        return {**super()._hyper(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """RMSprop: s ← ρs + (1-ρ)g², p ← p - lr·g/(√s + ε).

    Parameters
    ----------
    learning_rate : float or Schedule
        Step size.
    rho : float
        Decay rate of the squared-gradient average, in [0, 1).
    epsilon : float
        Added to √s for numerical stability.
    clip_norm : float, optional
        Rescale each step's gradient to at most this global L2 norm.

    Examples
    --------
    >>> import loomnet as ln
    >>> ln.Sequential([ln.Dense(2)], optimizer=ln.RMSprop(1e-3, rho=0.95)).optimizer.rho
    0.95
    """

    name = "rmsprop"
    _state_names = ("square_avg",)

    def __init__(self, learning_rate=0.001, rho: float = 0.9, epsilon: float = 1e-8, clip_norm=None):
        super().__init__(learning_rate, clip_norm)
        if not 0 <= rho < 1 or epsilon <= 0:
            raise ValueError(f"RMSprop needs 0 <= rho < 1 and epsilon > 0, got {rho}, {epsilon}")
        self.rho, self.epsilon = float(rho), float(epsilon)

    def _coefficients(self, lr):
        return lr, self.rho, 1.0 - self.rho, self.epsilon

    def _update(self, params, grad, scratch, state, coef):
        lr, rho, one_minus_rho, epsilon = coef
        s = state["square_avg"]
        s *= rho
        np.multiply(grad, grad, out=scratch)
        scratch *= one_minus_rho
        s += scratch
        np.sqrt(s, out=scratch)
        scratch += epsilon
        np.divide(grad, scratch, out=scratch)
        scratch *= lr
        params -= scratch

    def _hyper(self):
        return {"rho": self.rho, "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """Adagrad: s ← s + g², p ← p - lr·g/(√s + ε).

    Parameters
    ----------
    learning_rate : float or Schedule
        Step size.
    epsilon : float
        Added to √s for numerical stability.
    clip_norm : float, optional
        Rescale each step's gradient to at most this global L2 norm.

    Examples
    --------
    >>> import loomnet as ln
    >>> ln.Sequential([ln.Dense(2)], optimizer=ln.Adagrad(0.05)).optimizer.name
    'adagrad'
    """

    name = "adagrad"
    _state_names = ("sum_sq",)

    def __init__(self, learning_rate=0.01, epsilon: float = 1e-10, clip_norm=None):
        super().__init__(learning_rate, clip_norm)
        if epsilon <= 0:
            raise ValueError(f"Adagrad needs epsilon > 0, got {epsilon}")
        self.epsilon = float(epsilon)

    def _coefficients(self, lr):
        return lr, self.epsilon

    def _update(self, params, grad, scratch, state, coef):
        lr, epsilon = coef
        s = state["sum_sq"]
        np.multiply(grad, grad, out=scratch)
        s += scratch
        np.sqrt(s, out=scratch)
        scratch += epsilon
        np.divide(grad, scratch, out=scratch)
        scratch *= lr
        params -= scratch

    def _hyper(self):
        return {"epsilon": self.epsilon}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)
}


def get_optimizer(value: str | Optimizer | dict, learning_rate: float | Schedule | None = None) -> Optimizer:
    """An optimiser from a name, a config dict (as ``get_config`` writes) or an instance.

    Parameters
    ----------
    value : str, dict or Optimizer
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` or ``"adagrad"`` (default
        hyperparameters); a dict with ``"name"`` and the constructor's arguments; or an
        optimiser, returned as it is.
    learning_rate : float or Schedule, optional
        Replaces the optimiser's learning rate (not for dicts, which carry their own).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid ones).

    Examples
    --------
    >>> from loomnet.engine.optimizers import get_optimizer
    >>> get_optimizer("sgd", learning_rate=0.5)
    SGD(learning_rate=0.5, momentum=0.0, nesterov=False)
    >>> get_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9})
    SGD(learning_rate=0.1, momentum=0.9, nesterov=False)
    """
    if isinstance(value, dict):
        cfg = dict(value)
        name = cfg.pop("name", None)
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; valid optimizers are: {', '.join(sorted(OPTIMIZERS))}")
        cfg["learning_rate"] = get_schedule(cfg.get("learning_rate", 0.01))
        return OPTIMIZERS[name](**cfg)
    optimizer = lookup("optimizer", OPTIMIZERS, value, Optimizer)
    if learning_rate is not None:
        optimizer.schedule = get_schedule(learning_rate)
    return optimizer
