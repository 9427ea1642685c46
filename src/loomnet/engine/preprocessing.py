"""Preprocessing fitted on training data only: scalers, label and one-hot encoders, splits.

Every transformer stores its fitted state as plain arrays and lists (``to_dict``/``from_dict``)
so a model file carries exactly the transform used in training, with no pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_array

Array = NDArray[np.floating]
_ROW_BLOCK = 4096


class Transformer:
    """Base class: ``fit`` on training data, then ``transform`` any data the same way."""

    kind = "transformer"

    def fit(self, X: ArrayLike) -> Transformer:
        raise NotImplementedError

    def transform(self, X: ArrayLike, dtype: Any = None) -> Array:
        """Apply the fitted transform; ``dtype`` (default: X's float type) is the output's."""
        raise NotImplementedError

    def fit_transform(self, X: ArrayLike) -> Array:
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> Array:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit on training data first")

    def _check_width(self, X: Array, n: int) -> None:
        if X.shape[1] != n:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} was fitted on {n}")

    def _map_rows(self, X: Array, fn: Any, dtype: Any) -> Array:
        """``fn`` (float64 math) over blocks of rows into one array of ``dtype``.

        Why: the whole-array expression would hold a float64 copy of X (twice a float32 dataset)
        on top of the result; blocks keep the extra memory to a few MB.
        """
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        out = np.empty(X.shape, dtype=dtype)
        for start in range(0, X.shape[0], _ROW_BLOCK):
            out[start:start + _ROW_BLOCK] = fn(X[start:start + _ROW_BLOCK])
        return out

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class StandardScaler(Transformer):
    """Standardisation z = (x - mean) / std; constant columns get std 1 so they map to 0."""

    kind = "standard"

    def fit(self, X):
        X = check_array(X, name="X")
        with np.errstate(over="ignore", invalid="ignore"):
            self.mean_, std = column_moments(X)
        if not (np.isfinite(self.mean_).all() and np.isfinite(std).all()):
            # Squares (or sums) of values beyond ~1e154 overflow float64: rescale by each column's peak.
            peak = np.abs(X).max(axis=0).astype(np.float64)
            peak[peak == 0] = 1.0
            scaled = X / peak
            self.mean_ = scaled.mean(axis=0) * peak
            std = scaled.std(axis=0) * peak
        return self._set_moments(self.mean_, std)

    @classmethod
    def from_moments(cls, mean: ArrayLike, std: ArrayLike) -> StandardScaler:
        """A fitted scaler from column means and standard deviations computed elsewhere (e.g. in chunks)."""
        return cls()._set_moments(np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))

    def _set_moments(self, mean: NDArray[np.float64], std: NDArray[np.float64]) -> StandardScaler:
        self.mean_ = mean
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        self.fitted_ = True
        return self

    def transform(self, X, dtype=None):
        self._check_fitted()
        X = check_array(X, name="X")
        self._check_width(X, self.mean_.shape[0])
        return self._map_rows(X, lambda block: (block - self.mean_) / self.scale_, dtype)

    def inverse_transform(self, X):
        self._check_fitted()
        X = np.asarray(X)
        return (X * self.scale_ + self.mean_).astype(X.dtype, copy=False)

    def to_dict(self):
        self._check_fitted()
        return {"kind": self.kind, "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StandardScaler:
        obj = cls()
        obj.mean_, obj.scale_ = _stored_vectors(d, "mean", "scale")
        if (obj.scale_ <= 0).any():
            raise ValueError("stored scaler field 'scale' must be positive")
        obj.fitted_ = True
        return obj

    @property
    def n_features_in_(self) -> int:
        return int(self.mean_.shape[0])


class MinMaxScaler(Transformer):
    """Min-max normalisation to ``feature_range`` (default [0, 1]); constant columns map to the low end."""

    kind = "minmax"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        low, high = feature_range
        if not low < high:
            raise ValueError(f"feature_range must satisfy low < high, got {feature_range}")
        self.feature_range = (float(low), float(high))

    def fit(self, X):
        X = check_array(X, name="X")
        self.min_ = X.min(axis=0).astype(np.float64)
        span = X.max(axis=0).astype(np.float64) - self.min_
        self.span_ = np.where(span > 0, span, 1.0)
        self.fitted_ = True
        return self

    def transform(self, X, dtype=None):
        self._check_fitted()
        X = check_array(X, name="X")
        self._check_width(X, self.min_.shape[0])
        low, high = self.feature_range
        return self._map_rows(X, lambda block: (block - self.min_) / self.span_ * (high - low) + low, dtype)

    def inverse_transform(self, X):
        self._check_fitted()
        X = np.asarray(X)
        low, high = self.feature_range
        return ((X - low) / (high - low) * self.span_ + self.min_).astype(X.dtype, copy=False)

    def to_dict(self):
        self._check_fitted()
        return {"kind": self.kind, "feature_range": list(self.feature_range),
                "min": self.min_.tolist(), "span": self.span_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MinMaxScaler:
        obj = cls(tuple(d["feature_range"]))
        obj.min_, obj.span_ = _stored_vectors(d, "min", "span")
        if (obj.span_ <= 0).any():
            raise ValueError("stored scaler field 'span' must be positive")
        obj.fitted_ = True
        return obj

    @property
    def n_features_in_(self) -> int:
        return int(self.min_.shape[0])


def column_moments(
    X: NDArray, rows: NDArray[np.int64] | None = None, chunk: int = 512
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Column means and standard deviations of X (or of X[rows]) in float64, a block of rows at a time.

    Blocks are merged with Chan et al.'s update, so the extra memory is one float64 block, not a
    float64 copy of X (a model search fits one scaler per fold on rows of one shared matrix).
    """
    n_rows = X.shape[0] if rows is None else len(rows)
    count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, n_rows, chunk):
        part = X[start:start + chunk] if rows is None else X[rows[start:start + chunk]]
        block = part.astype(np.float64)  # a copy: centred and squared in place below
        n_b, mean_b = len(block), block.mean(axis=0)
        block -= mean_b
        np.square(block, out=block)
        delta, total = mean_b - mean, count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + block.sum(axis=0) + delta**2 * (count * n_b / total)
        count = total
    return mean, np.sqrt(m2 / max(count, 1))


class LabelEncoder:
    """Map arbitrary labels to 0..k-1 (sorted order) and back."""

    kind = "label"

    def fit(self, y: ArrayLike) -> LabelEncoder:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {y.shape}")
        if y.size == 0:
            raise ValueError("cannot fit a label encoder on empty labels")
        self.classes_ = np.unique(y)
        return self

    def transform(self, y: ArrayLike) -> NDArray[np.int64]:
        y = np.asarray(y)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unknown = self.classes_[idx] != y
        if np.any(unknown):
            bad = np.unique(y[unknown])[:5].tolist()
            raise ValueError(f"labels {bad} were not seen in training; known labels: {self.classes_.tolist()}")
        return idx.astype(np.int64)

    def fit_transform(self, y: ArrayLike) -> NDArray[np.int64]:
        return self.fit(y).transform(y)

    def inverse_transform(self, idx: ArrayLike) -> NDArray:
        return self.classes_[np.asarray(idx)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": self.classes_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelEncoder:
        obj = cls()
        obj.classes_ = np.asarray(d["classes"])
        return obj


def one_hot(labels: ArrayLike, n_classes: int, dtype: Any = np.float32) -> Array:
    """Rows of a (n, n_classes) identity picked by integer labels."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


class OneHotEncoder:
    """One-hot encode labels: fit learns the categories, transform gives a (n, k) 0/1 matrix."""

    kind = "onehot"

    def fit(self, y: ArrayLike) -> OneHotEncoder:
        self._labels = LabelEncoder().fit(y)
        self.categories_ = self._labels.classes_
        return self

    def transform(self, y: ArrayLike) -> Array:
        return one_hot(self._labels.transform(y), len(self.categories_))

    def fit_transform(self, y: ArrayLike) -> Array:
        return self.fit(y).transform(y)

    def inverse_transform(self, Y: ArrayLike) -> NDArray:
        return self.categories_[np.asarray(Y).argmax(axis=1)]


SCALERS: dict[str, type[Transformer]] = {"standard": StandardScaler, "minmax": MinMaxScaler}


def get_scaler(value: str | Transformer | None) -> Transformer | None:
    """Scaler by name ('standard', 'minmax'), instance, or None for no scaling."""
    if value is None or isinstance(value, Transformer):
        return value
    if isinstance(value, str) and value.lower() in SCALERS:
        return SCALERS[value.lower()]()
    if isinstance(value, str) and value.lower() == "none":
        return None
    raise ValueError(f"unknown preprocessing {value!r}; valid choices are: none, {', '.join(sorted(SCALERS))}")


def _stored_vectors(d: dict[str, Any], *names: str) -> list[Array]:
    """Fitted per-feature vectors read back from a dict: 1-D, finite, all the same length, or ValueError."""
    vectors = []
    for name in names:
        try:
            vector = np.asarray(d[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"stored scaler field {name!r} is not a list of numbers") from None
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise ValueError(f"stored scaler field {name!r} must be a 1-D list of finite numbers")
        vectors.append(vector)
    if len({v.shape[0] for v in vectors}) != 1:
        raise ValueError(f"stored scaler fields {', '.join(names)} differ in length")
    return vectors


def scaler_from_dict(d: dict[str, Any] | None) -> Transformer | None:
    if d is None:
        return None
    cls = SCALERS.get(d.get("kind"))
    if cls is None:
        raise ValueError(f"unknown scaler kind {d.get('kind')!r}")
    return cls.from_dict(d)


def train_test_split(
    *arrays: ArrayLike,
    test_size: float | int = 0.25,
    stratify: ArrayLike | None = None,
    seed: int | None = 0,
    shuffle: bool = True,
) -> list[NDArray]:
    """Split arrays into train and test parts: [a_train, a_test, b_train, b_test, ...].

    With ``stratify`` (labels), each class keeps its proportion in both parts.
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    arrays = tuple(np.asarray(a) for a in arrays)
    n = arrays[0].shape[0]
    for a in arrays[1:]:
        if a.shape[0] != n:
            raise ValueError(f"arrays have different lengths: {n} and {a.shape[0]}")
    n_test = _split_count(n, test_size)
    rng = np.random.default_rng(seed)
    if stratify is not None:
        test_idx = _stratified_test_indices(np.asarray(stratify), n_test, rng)
    elif shuffle:
        test_idx = rng.permutation(n)[:n_test]
    else:
        test_idx = np.arange(n - n_test, n)
    is_test = np.zeros(n, bool)
    is_test[test_idx] = True
    train_idx = np.flatnonzero(~is_test)
    test_idx = np.flatnonzero(is_test)
    if shuffle:
        train_idx, test_idx = rng.permutation(train_idx), rng.permutation(test_idx)
    out: list[NDArray] = []
    for a in arrays:
        out.extend((a[train_idx], a[test_idx]))
    return out


def train_val_test_split(
    *arrays: ArrayLike,
    val_size: float = 0.1,
    test_size: float = 0.2,
    stratify: ArrayLike | None = None,
    seed: int | None = 0,
) -> list[NDArray]:
    """Three-way split: [a_train, a_val, a_test, ...], stratified when labels are given."""
    first = train_test_split(*arrays, test_size=test_size, stratify=stratify, seed=seed)
    rest = first[0::2]
    strat_rest = None
    if stratify is not None:
        strat_rest = train_test_split(np.asarray(stratify), test_size=test_size, stratify=stratify, seed=seed)[0]
    n_rest = rest[0].shape[0]
    val_count = _split_count(len(np.asarray(arrays[0])), val_size)
    second = train_test_split(*rest, test_size=min(val_count, n_rest - 1), stratify=strat_rest, seed=seed)
    out: list[NDArray] = []
    for i in range(len(arrays)):
        out.extend((second[2 * i], second[2 * i + 1], first[2 * i + 1]))
    return out


def _split_count(n: int, size: float | int) -> int:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1:
        count = int(size)
    elif isinstance(size, (float, int)) and 0 < size < 1:
        count = int(round(n * size))
    else:
        raise ValueError(f"split size must be a fraction in (0, 1) or a count >= 1, got {size!r}")
    if not 1 <= count < n:
        raise ValueError(f"a split of {size!r} leaves an empty part of {n} samples")
    return count


def _stratified_test_indices(labels: NDArray, n_test: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Pick about n_test indices with each class's share as close to its proportion as rounding allows,
    leaving at least one row of every class on the training side."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(labels) != inverse.shape[0]:
        raise ValueError("stratify labels must have one entry per sample")
    exact = counts * n_test / counts.sum()
    take = np.floor(exact).astype(int)
    remainder = n_test - take.sum()
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:remainder]] += 1
    take = np.minimum(take, counts - 1)  # every class keeps a training row: a rare class never vanishes from it
    chosen = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        chosen.append(rng.permutation(members)[: take[k]])
    return np.concatenate(chosen)
