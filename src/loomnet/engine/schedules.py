"""Learning-rate schedules: lr as a function of (epoch, iteration), plus reduce-on-plateau.

A schedule is called once per optimiser step; ``observe`` receives the monitored loss at the
end of each epoch (only reduce-on-plateau uses it).
"""

from __future__ import annotations

import math
from typing import Any

from ._registry import lookup


class Schedule:
    """Base class: ``schedule(epoch, iteration) -> learning rate``."""

    name = "schedule"

    def __init__(self, learning_rate: float = 0.01):
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)) or learning_rate <= 0:
            raise ValueError(f"learning rate must be a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)

    def __call__(self, epoch: int, iteration: int) -> float:
        raise NotImplementedError

    def observe(self, epoch: int, value: float) -> None:
        """Receive the monitored loss at the end of an epoch."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    name = "constant"

    def __call__(self, epoch, iteration):
        return self.learning_rate


class StepDecay(Schedule):
    """lr · gamma^⌊epoch / step_size⌋."""

    name = "step"

    def __init__(self, learning_rate: float = 0.01, step_size: int = 10, gamma: float = 0.5):
        super().__init__(learning_rate)
        if step_size < 1 or not 0 < gamma <= 1:
            raise ValueError(f"step schedule needs step_size >= 1 and 0 < gamma <= 1, got {step_size}, {gamma}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, epoch, iteration):
        return self.learning_rate * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """lr · gamma^epoch."""

    name = "exponential"

    def __init__(self, learning_rate: float = 0.01, gamma: float = 0.95):
        super().__init__(learning_rate)
        if not 0 < gamma <= 1:
            raise ValueError(f"exponential schedule needs 0 < gamma <= 1, got {gamma}")
        self.gamma = float(gamma)

    def __call__(self, epoch, iteration):
        return self.learning_rate * self.gamma**epoch


class CosineDecay(Schedule):
    """min_lr + (lr - min_lr)·(1 + cos(π·epoch/epochs))/2, flat at min_lr after ``epochs``."""

    name = "cosine"

    def __init__(self, learning_rate: float = 0.01, epochs: int = 100, min_learning_rate: float = 0.0):
        super().__init__(learning_rate)
        if epochs < 1 or min_learning_rate < 0:
            raise ValueError(
                f"cosine schedule needs epochs >= 1 and min_learning_rate >= 0, got {epochs}, {min_learning_rate}"
            )
        self.epochs, self.min_learning_rate = int(epochs), float(min_learning_rate)

    def __call__(self, epoch, iteration):
        progress = min(epoch, self.epochs) / self.epochs
        return self.min_learning_rate + (self.learning_rate - self.min_learning_rate) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )


class InverseScaling(Schedule):
    """lr / (iteration + 1)^power_t, decaying with every step (scikit-learn's 'invscaling')."""

    name = "invscaling"

    def __init__(self, learning_rate: float = 0.01, power_t: float = 0.5):
        super().__init__(learning_rate)
        self.power_t = float(power_t)

    def __call__(self, epoch, iteration):
        return self.learning_rate / (iteration + 1) ** self.power_t


class ReduceOnPlateau(Schedule):
    """Multiply lr by ``factor`` when the monitored loss has not improved by ``min_delta``
    for ``patience`` epochs; never below ``min_learning_rate``."""

    name = "plateau"

    def __init__(
        self,
        learning_rate: float = 0.01,
        factor: float = 0.5,
        patience: int = 5,
        min_delta: float = 1e-4,
        min_learning_rate: float = 1e-6,
    ):
        super().__init__(learning_rate)
        if not 0 < factor < 1 or patience < 0:
            raise ValueError(f"plateau schedule needs 0 < factor < 1 and patience >= 0, got {factor}, {patience}")
        self.factor, self.patience = float(factor), int(patience)
        self.min_delta, self.min_learning_rate = float(min_delta), float(min_learning_rate)
        self._current = self.learning_rate
        self._best = math.inf
        self._wait = 0

    def __call__(self, epoch, iteration):
        return self._current

    def observe(self, epoch, value):
        if value < self._best - self.min_delta:
            self._best, self._wait = value, 0
            return
        self._wait += 1
        if self._wait > self.patience:
            self._current = max(self._current * self.factor, self.min_learning_rate)
            self._wait = 0

    def state_dict(self):
        return {"current": self._current, "best": self._best, "wait": self._wait}

    def load_state_dict(self, state):
        self._current, self._best, self._wait = float(state["current"]), float(state["best"]), int(state["wait"])


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay, InverseScaling, ReduceOnPlateau)
}


def get_schedule(value: float | str | Schedule, learning_rate: float | None = None) -> Schedule:
    """Schedule from a number (constant), a name, a config dict or an instance."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict):
        cfg = dict(value)
        cls = SCHEDULES.get(cfg.pop("name", None))
        if cls is None:
            raise ValueError(f"unknown schedule {value!r}; valid schedules are: {', '.join(sorted(SCHEDULES))}")
        return cls(**cfg)
    if isinstance(value, bool):
        raise TypeError("learning rate must be a number or a schedule, got bool")
    if isinstance(value, (int, float)):
        return Constant(float(value))
    schedule = lookup("schedule", SCHEDULES, value, Schedule)
    if learning_rate is not None:
        schedule = type(schedule)(learning_rate)
    return schedule
