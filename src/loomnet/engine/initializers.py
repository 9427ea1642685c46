"""Weight initialisers: fill a (fan_in, fan_out) array from a seeded Generator, never global state."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Initializer = Callable[[NDArray[np.floating], np.random.Generator], None]


def glorot_uniform(w: NDArray[np.floating], rng: np.random.Generator) -> None:
    """U(-l, l) with l = √(6 / (fan_in + fan_out)); keeps variance steady for tanh/sigmoid."""
    fan_in, fan_out = w.shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w[...] = rng.uniform(-limit, limit, size=w.shape)


def glorot_normal(w: NDArray[np.floating], rng: np.random.Generator) -> None:
    """N(0, σ²) with σ = √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = w.shape
    w[...] = rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=w.shape)


def he_uniform(w: NDArray[np.floating], rng: np.random.Generator) -> None:
    """U(-l, l) with l = √(6 / fan_in); keeps variance steady for ReLU-like units."""
    limit = math.sqrt(6.0 / w.shape[0])
    w[...] = rng.uniform(-limit, limit, size=w.shape)


def he_normal(w: NDArray[np.floating], rng: np.random.Generator) -> None:
    """N(0, σ²) with σ = √(2 / fan_in)."""
    w[...] = rng.normal(0.0, math.sqrt(2.0 / w.shape[0]), size=w.shape)


def zeros(w: NDArray[np.floating], rng: np.random.Generator) -> None:
    """All zeros (biases; a symmetric start for weights, which hidden units cannot break)."""
    w[...] = 0.0


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
}


def get_initializer(name: str) -> Initializer:
    """Initialiser function by name; unknown names list the valid ones."""
    key = str(name).lower()
    if key not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; valid initializers are: "
                         + ", ".join(sorted(INITIALIZERS)))
    return INITIALIZERS[key]


def default_initializer(activation_name: str) -> str:
    """He for rectifiers, Glorot for everything else."""
    return "he_uniform" if activation_name in {"relu", "leaky_relu", "elu", "gelu"} else "glorot_uniform"
