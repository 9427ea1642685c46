"""Built-in datasets shipped with loomnet (no download) and synthetic generators."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np
from numpy.typing import NDArray

_BUNDLED = {
    "digits": "8×8 handwritten digits, 1797 samples, 64 features, 10 classes",
    "iris": "iris flowers, 150 samples, 4 features, 3 classes",
    "wine": "wine cultivars, 178 samples, 13 features, 3 classes",
    "breast_cancer": "breast-cancer diagnosis, 569 samples, 30 features, 2 classes",
    "diabetes": "diabetes progression (regression), 442 samples, 10 features",
}


@dataclass
class Dataset:
    """Features X, targets y, and their names; ``task`` is 'classification' or 'regression'."""

    name: str
    X: NDArray
    y: NDArray
    task: str
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)


def available() -> dict[str, str]:
    """Name → one-line description of every built-in dataset."""
    return {
        **_BUNDLED,
        "xor": "the XOR truth table, 4 samples, 2 features, 2 classes",
        "classification": "synthetic classification (n_samples, n_features, n_classes chosen)",
        "regression": "synthetic regression (n_samples, n_features chosen)",
    }


def load(name: str, **kwargs) -> Dataset:
    """Load a built-in dataset by name (``'breast-cancer'`` and ``'breast_cancer'`` both work)."""
    key = name.lower().replace("-", "_")
    if key == "xor":
        return xor()
    if key == "classification":
        return make_classification(**kwargs)
    if key == "regression":
        return make_regression(**kwargs)
    if key not in _BUNDLED:
        raise ValueError(f"unknown dataset {name!r}; built-in datasets are: {', '.join(sorted(available()))}")
    with resources.files("loomnet").joinpath(f"data/{key}.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        X, y = data["X"].astype(np.float64), data["y"]
        features, targets = data["feature_names"].tolist(), data["target_names"].tolist()
    task = "regression" if key == "diabetes" else "classification"
    return Dataset(key, X, y, task, features, targets)


def load_digits() -> tuple[NDArray, NDArray]:
    """The 8×8 digits: X (1797, 64) with pixel values 0..16, y in 0..9."""
    d = load("digits")
    return d.X, d.y


def xor() -> Dataset:
    """The XOR truth table the article trains on."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    return Dataset("xor", X, np.array([0, 1, 1, 0]), "classification", ["x1", "x2"], ["0", "1"])


def make_classification(
    n_samples: int = 1000, n_features: int = 20, n_classes: int = 3, n_informative: int | None = None,
    noise: float = 1.0, seed: int = 0,
) -> Dataset:
    """Gaussian clusters around random class centres in the first ``n_informative`` features."""
    rng = np.random.default_rng(seed)
    n_informative = min(n_features, n_informative or max(2, n_features // 2))
    centres = rng.normal(0, 2.0, size=(n_classes, n_informative))
    y = rng.integers(0, n_classes, size=n_samples)
    X = rng.normal(0, noise, size=(n_samples, n_features))
    X[:, :n_informative] += centres[y]
    return Dataset("classification", X, y, "classification", [f"x{i}" for i in range(n_features)],
                   [str(c) for c in range(n_classes)])


def make_regression(
    n_samples: int = 1000, n_features: int = 10, noise: float = 0.1, seed: int = 0
) -> Dataset:
    """y = a smooth non-linear function of the first features plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    w = rng.normal(size=n_features)
    y = X @ w + np.sin(2 * X[:, 0]) + 0.5 * X[:, min(1, n_features - 1)] ** 2
    y += rng.normal(0, noise, size=n_samples)
    return Dataset("regression", X, y, "regression", [f"x{i}" for i in range(n_features)], [])
