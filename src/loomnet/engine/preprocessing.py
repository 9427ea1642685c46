"""Preprocessing fitted on training data only: scalers, label and one-hot encoders, splits.

Every transformer stores its fitted state as plain arrays and lists (``to_dict``/``from_dict``)
so a model file carries exactly the transform used in training, with no pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .moments import column_moments
from .scalers import (
    SCALERS,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
    Transformer,
    get_scaler,
    scaler_from_dict,
)

Array = NDArray[np.floating]
__all__ = ["SCALERS", "LabelEncoder", "MinMaxScaler", "OneHotEncoder", "RobustScaler", "StandardScaler", "Transformer",
           "column_moments", "get_scaler", "one_hot", "scaler_from_dict", "train_test_split", "train_val_test_split"]


class LabelEncoder:
    """Map arbitrary labels (numbers or strings) to 0..k-1 in sorted order, and back.

    Attributes
    ----------
    classes_ : ndarray of shape (k,)
        The sorted distinct labels seen by ``fit``.

    Raises
    ------
    ValueError
        ``fit`` on empty or 2-D labels; ``transform`` of a label not seen by ``fit`` (naming it).

    Examples
    --------
    >>> from loomnet.engine.preprocessing import LabelEncoder
    >>> enc = LabelEncoder().fit(["cat", "dog", "cat", "bird"])
    >>> enc.classes_.tolist(), enc.transform(["dog", "bird"]).tolist()
    (['bird', 'cat', 'dog'], [2, 0])
    >>> enc.inverse_transform([1]).tolist()
    ['cat']
    """

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
    """Rows of a (n, n_classes) identity picked by integer labels.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        Class indices in [0, n_classes).
    n_classes : int
        The number of columns.
    dtype : numpy dtype, default float32
        The output's type.

    Returns
    -------
    ndarray of shape (n, n_classes)

    Raises
    ------
    ValueError
        A label outside [0, n_classes).

    Examples
    --------
    >>> from loomnet.engine.preprocessing import one_hot
    >>> one_hot([2, 0], 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


class OneHotEncoder:
    """One-hot encode labels: fit learns the categories, transform gives a (n, k) 0/1 matrix.

    Attributes
    ----------
    categories_ : ndarray of shape (k,)
        The sorted categories seen by ``fit``; column j of the output is ``categories_[j]``.

    Raises
    ------
    ValueError
        ``transform`` of a category not seen by ``fit``. (Tables are encoded by
        :class:`loomnet.io.encoder.TableEncoder`, which maps unseen categories to an unknown slot.)

    Examples
    --------
    >>> from loomnet.engine.preprocessing import OneHotEncoder
    >>> enc = OneHotEncoder().fit(["red", "blue", "red"])
    >>> enc.categories_.tolist(), enc.transform(["red"]).tolist()
    (['blue', 'red'], [[0.0, 1.0]])
    >>> enc.inverse_transform([[1.0, 0.0]]).tolist()
    ['blue']
    """

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


def train_test_split(
    *arrays: ArrayLike,
    test_size: float | int = 0.25,
    stratify: ArrayLike | None = None,
    seed: int | None = 0,
    shuffle: bool = True,
) -> list[NDArray]:
    """Split arrays into train and test parts: [a_train, a_test, b_train, b_test, ...].

    With ``stratify`` (labels), each class keeps its proportion in both parts, and every class
    keeps at least one training row.

    Parameters
    ----------
    *arrays : array-like
        Arrays with the same number of rows.
    test_size : float or int
        Fraction (0 < f < 1) or number of rows for the test part.
    stratify : array-like or None
        Labels to stratify on.
    seed : int or None
        Seed of the shuffle.
    shuffle : bool
        Shuffle before splitting (False: the last rows are the test part).

    Returns
    -------
    list of ndarray
        Two arrays per input: its training rows, then its test rows.

    Raises
    ------
    ValueError
        If no array is given, the arrays' lengths differ or ``test_size`` leaves a part empty.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet import train_test_split
    >>> X, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y)
    >>> X_train.shape, sorted(y_test.tolist())
    ((8, 2), [0, 1])
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
    """Three-way split: [a_train, a_val, a_test, ...], stratified when labels are given.

    Parameters
    ----------
    *arrays : array-like
        Arrays with the same number of rows, split alike.
    val_size, test_size : float or int
        Fractions of all rows (in (0, 1)) or row counts, for the validation and test parts.
    stratify : array-like, optional
        Labels whose proportions each part keeps; every class keeps a training row.
    seed : int or None, default 0
        The shuffle's seed (None: fresh entropy).

    Returns
    -------
    list of ndarray
        Three parts per input array, in the order train, validation, test.

    Raises
    ------
    ValueError
        Arrays of different lengths, or sizes that leave a part empty.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.engine.preprocessing import train_val_test_split
    >>> X, y = np.arange(40).reshape(20, 2), np.arange(20) % 2
    >>> X_tr, X_val, X_te, y_tr, y_val, y_te = train_val_test_split(X, y, val_size=0.2, test_size=0.2, stratify=y)
    >>> len(y_tr), len(y_val), len(y_te), int(y_te.sum())
    (12, 4, 4, 2)
    """
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
