"""Scalers fitted on training data only: standard, min-max and robust (median, quantile range,
smooth clipping). Each stores its fitted state as plain lists (``to_dict``/``from_dict``) so a
model file carries exactly the transform used in training, with no pickle."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_array
from .moments import column_moments

Array = NDArray[np.floating]

_ROW_BLOCK = 4096


class Transformer:
    """The base class of loomnet's scalers: ``fit`` on training rows, then ``transform`` any rows the
    same way; ``to_dict``/``from_dict`` carry the fitted state as plain lists (model files, no pickle).

    ``Sequential(preprocess=...)`` accepts any instance and fits it inside ``fit`` on the training
    rows only, after the validation rows are set aside.

    Examples
    --------
    >>> import loomnet as ln
    >>> scaler = ln.StandardScaler().fit([[1.0], [3.0]])
    >>> isinstance(scaler, ln.engine.preprocessing.Transformer), scaler.transform([[2.0]]).tolist()
    (True, [[0.0]])
    """

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
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, naming the row
            for start in range(0, X.shape[0], _ROW_BLOCK):
                out[start:start + _ROW_BLOCK] = fn(X[start:start + _ROW_BLOCK])
        if not np.isfinite(out).all() and np.isfinite(X).all():  # one pass when all is well
            row, col = (int(i) for i in np.argwhere(~np.isfinite(out))[0])
            raise ValueError(f"scaling row {row}, column {col} overflows {np.dtype(dtype).name}: the value or the "
                             f"fitted scaling is too large; scale the data or use dtype='float64'")
        return out

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class StandardScaler(Transformer):
    """Standardisation z = (x - mean) / std; constant columns get std 1 so they map to 0.

    Moments are computed in float64 a block of rows at a time (no float64 copy of a float32 X), and
    values too large to square are rescaled first, so the fit never overflows.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_features,)
        The fitted column means and standard deviations (1 for constant columns).

    Raises
    ------
    ValueError
        From ``fit``/``transform``: NaN or infinity in X (with its row and column), a different
        number of columns than in ``fit``.
    RuntimeError
        ``transform`` before ``fit``.

    Examples
    --------
    >>> import loomnet as ln
    >>> scaler = ln.StandardScaler().fit([[0.0, 5.0], [2.0, 5.0]])
    >>> scaler.mean_.tolist(), scaler.scale_.tolist()
    ([1.0, 5.0], [1.0, 1.0])
    >>> scaler.transform([[4.0, 5.0]]).tolist()
    [[3.0, 0.0]]
    >>> scaler.inverse_transform([[3.0, 0.0]]).tolist()
    [[4.0, 5.0]]
    """

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
    """Min-max normalisation to ``feature_range`` (default [0, 1]); constant columns map to the low end.

    Parameters
    ----------
    feature_range : (float, float)
        The (low, high) the training minimum and maximum map to.

    Raises
    ------
    ValueError
        If low is not below high.

    Examples
    --------
    >>> from loomnet import MinMaxScaler
    >>> MinMaxScaler((-1, 1)).fit([[0.0], [5.0], [10.0]]).transform([[5.0]]).tolist()
    [[0.0]]
    """

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


class RobustScaler(Transformer):
    """Robust scaling with smooth clipping, as RealMLP does (Holzmüller et al., 2024): z = (x - median)
    / scale, where scale is the 25-75 % quantile range (half the min-max range where that is 0), then
    z / sqrt(1 + (z/3)²), which keeps the middle of the data linear and pulls outliers in smoothly.

    Heavy-tailed columns (incomes, prices, lot sizes) then reach the network on the scale of the rest.
    It is what ``preprocess="robust"`` and the tabular recipe use.

    Attributes
    ----------
    center_, scale_ : ndarray of shape (n_features,)
        The fitted medians and quantile ranges.

    Raises
    ------
    ValueError
        NaN or infinity in X, or a different number of columns than in ``fit``.
    RuntimeError
        ``transform`` before ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.engine.preprocessing import RobustScaler
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> z = RobustScaler().fit(X).transform(X)
    >>> np.round(z.ravel(), 2).tolist()                 # the outlier is pulled in, the middle stays linear
    [-0.95, -0.49, 0.0, 0.49, 3.0]
    """

    kind = "robust"

    def fit(self, X):
        X = check_array(X, name="X").astype(np.float64)
        q25, median, q75 = np.quantile(X, [0.25, 0.5, 0.75], axis=0)
        spread = q75 - q25
        half_range = (X.max(axis=0) - X.min(axis=0)) / 2
        scale = np.where(spread > 0, spread, np.where(half_range > 0, half_range, 1.0))
        return self._set(median, scale)

    def _set(self, center: NDArray[np.float64], scale: NDArray[np.float64]) -> RobustScaler:
        self.center_, self.scale_ = center, scale
        self.fitted_ = True
        return self

    def transform(self, X, dtype=None):
        self._check_fitted()
        X = check_array(X, name="X")
        self._check_width(X, self.center_.shape[0])

        def scale(block: Array) -> Array:
            z = (block - self.center_) / self.scale_
            return z / np.sqrt(1.0 + (z / 3.0) ** 2)

        return self._map_rows(X, scale, dtype)

    def slope(self, X: ArrayLike) -> Array:
        """∂(transform)/∂x elementwise at X: explanations carry gradients through the smooth clip."""
        self._check_fitted()
        z = (check_array(X, name="X").astype(np.float64) - self.center_) / self.scale_
        return (1.0 + (z / 3.0) ** 2) ** -1.5 / self.scale_

    def to_dict(self):
        self._check_fitted()
        return {"kind": self.kind, "center": self.center_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustScaler:
        center, scale = _stored_vectors(d, "center", "scale")
        if (scale <= 0).any():
            raise ValueError("stored scaler field 'scale' must be positive")
        return cls()._set(center, scale)

    @property
    def n_features_in_(self) -> int:
        return int(self.center_.shape[0])


SCALERS: dict[str, type[Transformer]] = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def get_scaler(value: str | Transformer | None) -> Transformer | None:
    """Scaler by name ('standard', 'minmax', 'robust'), instance, or None for no scaling.

    Parameters
    ----------
    value : str, Transformer or None
        A name (case-insensitive; 'none' means no scaling), an instance (returned as is), or None.

    Returns
    -------
    Transformer or None
        A fresh, unfitted scaler for a name.

    Raises
    ------
    ValueError
        An unknown name, listing the valid ones.

    Examples
    --------
    >>> from loomnet.engine.preprocessing import get_scaler
    >>> get_scaler("Robust"), get_scaler("none")
    (<loomnet.engine.scalers.RobustScaler object at ...>, None)
    """
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
    """A fitted scaler back from its ``to_dict()`` (as stored in model files, which are untrusted).

    Parameters
    ----------
    d : dict or None
        ``{"kind": ..., <fitted vectors>}``; None gives None (no scaling).

    Returns
    -------
    Transformer or None

    Raises
    ------
    ValueError
        An unknown kind, vectors that are not finite 1-D lists of one length, or a non-positive scale.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.engine.preprocessing import scaler_from_dict
    >>> stored = ln.StandardScaler().fit([[1.0], [3.0]]).to_dict()
    >>> scaler_from_dict(stored).transform([[3.0]]).tolist()
    [[1.0]]
    """
    if d is None:
        return None
    cls = SCALERS.get(d.get("kind"))
    if cls is None:
        raise ValueError(f"unknown scaler kind {d.get('kind')!r}")
    return cls.from_dict(d)
