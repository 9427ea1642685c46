"""Input checks that turn bad data into one clear ValueError/TypeError instead of a silent NaN."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def check_array(
    X: ArrayLike,
    *,
    name: str = "X",
    ndim: int | None = 2,
    dtype: Any = None,
    allow_nan: bool = False,
) -> NDArray:
    """Return X as a numeric ndarray, rejecting empty, wrongly shaped or non-finite input.

    ``dtype=None`` keeps float32/float64 input as it is and converts the rest to float64.
    """
    if X is None:
        raise TypeError(f"{name} must be an array, got None")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric, got values of dtype {arr.dtype}") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex numbers")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float64)
    if ndim == 2 and arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (samples × features), got a 1-D array of shape {arr.shape}; "
            "reshape with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
        )
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample is required")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif arr.dtype not in (np.float32, np.float64) and arr.dtype.kind != "i" and arr.dtype.kind != "u":
        arr = arr.astype(np.float64)
    if not allow_nan and arr.dtype.kind == "f" and not all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = f"row {bad[0]}" + (f", column {bad[1]}" if len(bad) > 1 else "")
        raise ValueError(f"{name} contains NaN or infinity (first at {where})")
    return arr


def all_finite(arr: NDArray, block_bytes: int = 1 << 24) -> bool:
    """``np.isfinite(arr).all()`` without a boolean temporary as large as ``arr``: checked in
    blocks of rows, so validating a 2 GB array costs no extra 0.5 GB."""
    if arr.ndim < 2 or arr.nbytes <= block_bytes:
        return bool(np.isfinite(arr).all())
    rows = max(1, block_bytes // max(1, arr[0].nbytes))
    return all(bool(np.isfinite(arr[i:i + rows]).all()) for i in range(0, arr.shape[0], rows))


def check_positive(value: Any, name: str, *, integer: bool = False) -> Any:
    """Reject non-positive (or non-integer, when asked) hyperparameters with their name."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_consistent_length(X: NDArray, y: NDArray, name_y: str = "y") -> None:
    if np.ndim(y) == 0:
        raise ValueError(f"{name_y} must hold one target per sample, got a scalar {y!r}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but {name_y} has {y.shape[0]}")


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first frame outside loomnet: the user's line."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level
